// bingobox status screen: live state over server-sent events, operator actions with a session + CSRF token.
// Everything from the server is written with textContent (never parsed as HTML).
"use strict";

let csrf = null;
let operator = null;
let mayRefund = false;
let last = null;
// refunds whose outcome is not known yet, by charge: retried with the same request id (so never refunded twice)
const pendingRefunds = new Map();

const $ = (id) => document.getElementById(id);
// the store's identifiers (counters, flags, alarms, review causes) in words, in the screen's language (/api/words;
// ?lang=zh_Hans or ?lang=en on the page's address for another); an identifier without words is shown as it is
let words = {};
const w = (id) => words[id] || id;
const ws = (ids) => ids.map(w).join(", ");
function cellWord(tr, id) { const td = cell(tr, w(id)); td.title = id; return td; }
async function loadWords() {
  const lang = new URLSearchParams(location.search).get("lang");
  try {
    const r = await fetch("/api/words" + (lang ? `?lang=${encodeURIComponent(lang)}` : ""));
    const body = await r.json();
    words = body.words || {};
    document.documentElement.lang = body.lang === "zh_Hans" ? "zh-Hans" : "en";
  } catch (e) { words = {}; }
  if (last) render(last);
}
loadWords();
const fen = (n) => (n / 100).toFixed(2) + " CNY";
const ago = (t) => { const s = Math.max(0, Date.now() / 1000 - t); return s < 90 ? `${s.toFixed(0)} s ago` : `${(s / 60).toFixed(0)} min ago`; };

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "—" : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function fill(id, rows, build) {
  const body = $(id);
  body.replaceChildren();
  for (const r of rows) {
    const tr = document.createElement("tr");
    build(tr, r);
    body.appendChild(tr);
  }
}

function button(label, action, args, confirmText) {
  const b = document.createElement("button");
  b.textContent = label;
  b.className = "row";
  b.disabled = !operator;
  b.addEventListener("click", () => act(action, args, confirmText));
  return b;
}

function say(text, ok) {
  const m = $("message");
  m.textContent = text;
  m.className = "message " + (ok === null ? "unknown" : ok ? "ok" : "error");
}

// A request id for a refund: random, and works without a secure context (crypto.randomUUID needs https).
function requestId() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// Runs an action; says its outcome: done (200), failed (4xx/5xx) or unknown (202: it may still happen).
async function act(action, args, confirmText) {
  if (confirmText && !window.confirm(confirmText)) return null;
  let r;
  try {
    r = await fetch(`/api/actions/${action}`, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf || "" },
      body: JSON.stringify(args || {}),
    });
  } catch (e) {
    say(`${action}: no answer from the store (${e.message}): the outcome is unknown`, null);
    return null;
  }
  const body = await r.json().catch(() => ({}));
  if (r.status === 401) setOperator(null, null, false);
  const detail = body.detail || (body.error && body.error.message) || r.statusText;
  const ok = r.status === 202 ? null : r.ok;
  say(`${action}: ${ok === null ? "outcome unknown — " : ""}${detail}`, ok);
  return ok;
}

async function refund(ch) {
  let p = pendingRefunds.get(ch.charge_id);
  if (p) {
    if (!window.confirm(`The refund of ${fen(p.amount_fen)} on ${ch.charge_id} has no known outcome yet. Ask again ` +
                        "(the same request: it is never paid twice)?")) return;
  } else {
    const amount = window.prompt(`Refund how many fen of ${ch.charge_id}? (at most ${ch.amount_fen})`, String(ch.amount_fen));
    if (amount === null) return;
    const reason = window.prompt("Reason", "operator refund") || "operator refund";
    p = { charge_id: ch.charge_id, amount_fen: Number(amount), reason, request_id: requestId() };
    pendingRefunds.set(ch.charge_id, p);
  }
  const ok = await act("refund", p);
  if (ok !== null) pendingRefunds.delete(ch.charge_id);  // a known outcome: a new refund gets a new id
}

function visitLink(id) {
  const a = document.createElement("button");
  a.type = "button";
  a.className = "link-button";
  a.textContent = id;
  a.title = operator ? "show the evidence record" : "log in to see the evidence record";
  a.addEventListener("click", () => showVisit(id));
  return a;
}

async function showVisit(id) {
  const r = await fetch(`/api/visits/${encodeURIComponent(id)}`, { credentials: "same-origin" });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) { say((body.error && body.error.message) || r.statusText, false); return; }
  $("visit-panel").hidden = false;
  $("visit-id").textContent = body.id;
  const total = body.amount_fen === null || body.amount_fen === undefined ? "—" : fen(body.amount_fen);
  $("visit-summary").textContent = `account ${body.account_id} · ${body.state} · amount ${total}` +
    (body.flags && body.flags.length ? ` · flags: ${ws(body.flags)}` : "");
  fill("visit-events", body.events || [], (tr, e) => {
    cell(tr, new Date(e.t * 1000).toLocaleTimeString()); cell(tr, e.kind); cell(tr, JSON.stringify(e.data));
  });
  $("visit-panel").scrollIntoView();
}

function setOperator(name, token, refunds) {
  const changed = operator !== name;
  operator = name;
  csrf = token;
  mayRefund = !!refunds;
  $("login").hidden = !!name;
  $("me").hidden = !name;
  $("me-name").textContent = name || "";
  for (const b of document.querySelectorAll("button.op, button.row")) b.disabled = !name;
  if (changed) reconnect();  // what the stream shows depends on who is logged in
}

function polyline(svg, cls, values, max) {
  const pts = [];
  values.forEach((v, i) => { if (v !== null) pts.push(`${(i / Math.max(1, values.length - 1)) * 300},${100 - (v / max) * 90}`); });
  const p = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  p.setAttribute("points", pts.join(" "));
  p.setAttribute("class", cls);
  svg.appendChild(p);
}

function label(svg, text) {
  const t = document.createElementNS("http://www.w3.org/2000/svg", "text");
  t.setAttribute("x", "2"); t.setAttribute("y", "9"); t.setAttribute("class", "scale");
  t.textContent = text;
  svg.appendChild(t);
}

function charts(history) {
  const traffic = $("chart-traffic");
  const latency = $("chart-latency");
  traffic.replaceChildren();
  latency.replaceChildren();
  if (history.length < 2) return;
  const inside = history.map((h) => h.inside);
  const lastMinute = history.map((h) => h.entries - history[history.findIndex((o) => o.t >= h.t - 60)].entries);
  const tmax = Math.max(1, ...inside, ...lastMinute);
  polyline(traffic, "inside", inside, tmax);
  polyline(traffic, "entries", lastMinute, tmax);
  label(traffic, `max ${tmax}`);
  const e = history.map((h) => h.entry_p99 ?? null);
  const x = history.map((h) => h.exit_p99 ?? null);
  const lmax = Math.max(1, ...e.filter((v) => v !== null), ...x.filter((v) => v !== null));
  polyline(latency, "entries", e, lmax);
  polyline(latency, "exit", x, lmax);
  label(latency, `max ${lmax.toFixed(0)} ms`);
}

// Each chilled zone: its state in words, its last two hours drawn against its limit, and (once its goods are off sale)
// the operator's "back on sale" after the goods were replaced.
function zones(all) {
  const box = $("zones");
  const names = Object.keys(all || {});
  $("zones-section").hidden = !names.length;
  box.replaceChildren();
  for (const name of names) {
    const z = all[name];
    const fig = document.createElement("figure");
    fig.className = "zone" + (z.off_sale ? " off" : z.warm || z.silent ? " warn" : "");
    fig.dataset.zone = name;
    const what = z.silent ? "probe not answering" : z.temp_c === null ? "no reading yet" : `${z.temp_c} °C`;
    const state = z.off_sale ? "OFF SALE" : z.warm ? "too warm" : "ok";
    const cap = document.createElement("figcaption");
    cap.textContent = `${name}: ${what} (limit ${z.max_c} °C) · ${state} · ${Math.round(z.above_s / 60)} of ${Math.round(z.budget_s / 60)} min above`;
    fig.appendChild(cap);
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", "chart"); svg.setAttribute("viewBox", "0 0 300 100");
    svg.setAttribute("preserveAspectRatio", "none"); svg.setAttribute("role", "img");
    const temps = z.history.map((p) => p[1]);
    svg.setAttribute("aria-label", `${name}: ${temps.length} readings over the last two hours, from ${Math.min(...temps, z.max_c)} to ${Math.max(...temps, z.max_c)} °C`);
    const lo = Math.min(0, ...temps), hi = Math.max(z.max_c + 2, ...temps);
    const scaled = (v) => v - lo;
    if (temps.length >= 2) polyline(svg, "exit", temps.map(scaled), hi - lo);
    polyline(svg, "limit", [scaled(z.max_c), scaled(z.max_c)], hi - lo);
    label(svg, `${lo}–${hi.toFixed(0)} °C`);
    fig.appendChild(svg);
    if (z.off_sale) fig.appendChild(button("Back on sale", "clear_zone", { zone: name },
      `Have the goods of ${name} been replaced and is its fridge cold again?`));
    box.appendChild(fig);
  }
}

function render(s) {
  last = s;
  zones(s.zones);
  $("public-note").hidden = !s.public;
  $("store-id").textContent = s.store || "";
  const st = $("store-state");
  st.textContent = s.state;
  st.className = "badge " + s.state;
  $("what-works").textContent = (s.open_now === false ? "closed by the opening hours (exit works) · " : "") + (s.what_works || "");
  const probs = $("problems");
  probs.replaceChildren(...(s.problems || []).map((p) => { const e = document.createElement("span"); e.textContent = p; return e; }));
  const ch = s.charges || {};
  const pending = ch.pending_count ? `${ch.pending_count} charge(s) pending (${fen(ch.pending_fen)}, oldest ${ch.oldest_pending_age_s} s)` : "no charges pending";
  const gw = ch.gateway_ok === false ? "wallet gateway unreachable — charges queue" : ch.gateway_ok ? "wallet gateway up" : "wallet gateway not contacted yet";
  $("payments").textContent = `${gw}; ${pending}` + (ch.admission === false ? `; entry stopped: ${ch.admission_reason}` : "");
  $("payments").className = "payments" + (ch.gateway_ok === false || ch.admission === false ? " off" : "");
  const c = s.counts || {};
  fill("counts", Object.entries(c), (tr, [k, v]) => { cellWord(tr, k); cell(tr, v); });
  const devices = Object.values(s.devices || {});
  fill("doors", devices.filter((d) => d.kind === "door"), (tr, d) => {
    cell(tr, d.name); cell(tr, d.state); cell(tr, d.door_open ? "open" : "closed");
    cell(tr, d.lock_engaged === null ? "?" : d.lock_engaged ? "locked" : "unlocked");
    cell(tr, d.online ? "online" : "offline", d.online ? "on" : "off");
    cell(tr, "").appendChild(button("Unlock", "unlock", { door: d.name }, `Unlock ${d.name} for 5 s?`));
  });
  const units = Object.values(s.buses || {}).flatMap((b) => (b.units || []).map((u) => ({ bus: b.name, ...u })));
  fill("units", units, (tr, u) => {
    cell(tr, u.bus); cell(tr, u.unit); cell(tr, u.doors.join(", "));
    cell(tr, u.online ? "answering" : "not answering (breaker open)", u.online ? "on" : "off");
    cell(tr, u.rtt_ms.n ? `${u.rtt_ms.p50} / ${u.rtt_ms.p99} ms` : "—"); cell(tr, u.no_reply);
  });
  fill("devices", devices.filter((d) => d.kind !== "door"), (tr, d) => {
    cell(tr, d.name); cell(tr, d.kind + (d.role ? ` (${d.role})` : ""));
    cell(tr, d.online ? "online" : "offline", d.online ? "on" : "off");
    cell(tr, d.kind === "rfid" ? `${d.tags_present} tags, ${d.rounds} rounds` : d.kind === "nfc" ? `${d.firmware || "not set up"}, ${d.taps} taps (${d.door})`
      : d.kind === "temperature" ? (d.last ? `${d.last.temp_c} °C, ${d.last.rh ?? "—"} %RH (${d.zone})` : `no reading (${d.zone})`)
      : d.fps ? `${d.fps} fps` : d.last_error || "");
  });
  $("inside-count").textContent = `(${s.inside ?? 0})`;
  fill("visits", s.visits || [], (tr, v) => {
    cell(tr, "").appendChild(visitLink(v.visit)); cell(tr, v.account); cell(tr, v.state + (v.flags.length ? ` [${ws(v.flags)}]` : ""));
    cell(tr, v.items); cell(tr, v.face ? "yes" : "no"); cell(tr, `${v.since_s} s`);
  });
  const stock = $("stock");
  stock.replaceChildren();
  for (const [shelf, items] of Object.entries(s.stock || {})) {
    const h = document.createElement("div");
    h.textContent = `${shelf}: ` + (Object.entries(items).map(([p, n]) => `${p} × ${n}`).join(", ") || "empty");
    stock.appendChild(h);
    const health = (s.rfid_health || {})[shelf] || {};
    const notes = [];
    if ((health.weak || []).length) notes.push(`weak tags (read in < 50 % of rounds): ${health.weak.join(", ")}`);
    if ((health.unknown || []).length) notes.push(`tags not in the catalog: ${health.unknown.join(", ")}`);
    if (notes.length) {
      const w = document.createElement("div");
      w.className = "warn";
      w.dataset.testid = `health-${shelf}`;
      w.textContent = notes.join(" · ");
      stock.appendChild(w);
    }
  }
  const cross = Object.entries(s.cross_read || {});
  if (cross.length) {
    const c = document.createElement("div");
    c.className = "warn";
    c.textContent = "read by several shelves: " + cross.map(([e, n]) => `${e} (${n.join(", ")})`).join("; ");
    stock.appendChild(c);
  }
  const alerts = s.stock_alerts || {};
  if ((alerts.restock || []).length) {
    const r = document.createElement("div");
    r.className = "warn"; r.dataset.testid = "restock";
    r.textContent = "restock: " + alerts.restock.map((x) => `${x.sku} (${x.count} of at least ${x.minimum})`).join(", ");
    stock.appendChild(r);
  }
  if ((alerts.misplaced || []).length) {
    const m = document.createElement("div");
    m.className = "warn"; m.dataset.testid = "misplaced";
    m.textContent = "on the wrong shelf: " + alerts.misplaced.map((x) => `${x.sku} ${x.epc.slice(-6)} on ${x.shelf}` + (x.belongs.length ? ` (belongs on ${x.belongs.join(", ")})` : "")).join("; ");
    stock.appendChild(m);
  }
  if ((alerts.expiring || []).length) {
    const x = document.createElement("div");
    x.className = "warn"; x.dataset.testid = "expiring";
    x.textContent = "use by: " + alerts.expiring.map((b) => `${b.sku} lot ${b.lot} ×${b.count} ` +
      (b.expired ? `EXPIRED ${b.expires}: pull it` : `until ${b.expires}` + (b.pct_off ? ` (−${b.pct_off}%)` : ""))).join("; ");
    stock.appendChild(x);
  }
  const shrink = Object.entries((alerts.shrink || {}).by_sku || {});
  if (shrink.length) {
    const x = document.createElement("div");
    x.className = "warn"; x.dataset.testid = "shrink";
    x.textContent = "missing (gone from the shelves, charged to nobody, in no visit under review): " +
      shrink.map(([sku, n]) => `${sku} ×${n}`).join(", ");
    stock.appendChild(x);
  }
  $("alarm-count").textContent = `(${(s.alarms || []).length} open)`;
  fill("alarms", s.alarms || [], (tr, a) => {
    cell(tr, a.id); cell(tr, ago(a.t)); cellWord(tr, a.kind); cell(tr, a.device);
    cell(tr, "").appendChild(button("Clear", "clear_alarm", { alarm_id: a.id }));
  });
  fill("charges", s.recent_charges || [], (tr, ch) => {
    cell(tr, ch.id); cell(tr, "").appendChild(visitLink(ch.visit_id)); cell(tr, ch.account_id); cell(tr, fen(ch.amount_fen));
    cell(tr, ch.state + (ch.reason ? ` (${ch.reason})` : "")); cell(tr, ch.charge_id);
    const td = cell(tr, "");
    if (ch.state === "succeeded" && ch.charge_id && mayRefund) {
      const rb = document.createElement("button");
      rb.textContent = pendingRefunds.has(ch.charge_id) ? "Refund (ask again)" : "Refund";
      rb.className = "row"; rb.disabled = !operator;
      rb.addEventListener("click", () => refund(ch));
      td.appendChild(rb);
    }
  });
  const rv = s.reviews || {};
  $("review-count").textContent = `(${(s.review || []).length} waiting)`;
  $("review-rate").textContent = `Last 24 hours: ${rv.reviews || 0} of ${rv.visits || 0} visits needed a person ` +
    `(review rate ${(100 * (rv.review_rate || 0)).toFixed(1)} %)` +
    (Object.keys(rv.by_cause || {}).length ? ": " + Object.entries(rv.by_cause).map(([k, n]) => `${w(k)} ${n}`).join(", ") : "");
  fill("review", s.review || [], (tr, r) => {
    cell(tr, ago(r.opened_at)); cell(tr, "").appendChild(visitLink(r.visit_id)); cell(tr, r.account_id);
    cell(tr, ws(r.causes)).title = r.causes.join(", "); cell(tr, r.visit_amount_fen === null ? null : fen(r.visit_amount_fen));
    const td = cell(tr, "");
    if (r.causes.includes("charge_failed")) td.appendChild(button("Charge again", "retry_charge", { visit_id: r.visit_id },
      `Charge visit ${r.visit_id} again (once the cause of the refusal is mended)?`));
    const decide = (label, aria, ask) => {
      const b = document.createElement("button");
      b.textContent = label; b.className = "row"; b.disabled = !operator; b.setAttribute("aria-label", aria);
      b.addEventListener("click", ask);
      td.appendChild(b);
    };
    if (mayRefund) {
      decide("Charge…", `Charge items of visit ${r.visit_id}`, () => {
        const items = window.prompt("Charge what they carried out (SKU×quantity, comma-separated, e.g. cola-330×2):", "");
        if (!items) return;
        const parsed = items.split(",").map((x) => x.trim()).filter(Boolean).map((x) => {
          const [sku, qty] = x.split(/[×x*]/).map((y) => y.trim());
          return { sku, qty: Number(qty || 1) };
        });
        const reason = window.prompt("The reason the shopper will read:", "the exit reader saw these leave");
        if (reason) act("decide_review", { visit_id: r.visit_id, decision: "charge", items: parsed, reason });
      });
      decide("Refund…", `Refund visit ${r.visit_id}`, () => {
        const cny = window.prompt("Refund how much (CNY)?", "");
        if (!cny) return;
        const reason = window.prompt("The reason the shopper will read:", "we checked: this was not yours");
        if (reason) act("decide_review", { visit_id: r.visit_id, decision: "refund", amount_fen: Math.round(Number(cny) * 100), reason });
      });
    }
    decide("Close…", `Close visit ${r.visit_id} without a charge`, () => {
      const reason = window.prompt("Close without a charge. The reason the shopper will read:", "checked: nothing more to pay");
      if (reason) act("decide_review", { visit_id: r.visit_id, decision: "close", reason });
    });
  });
  fill("disputes", s.disputes || [], (tr, d) => {
    cell(tr, d.id); cell(tr, "").appendChild(visitLink(d.visit_id)); cell(tr, d.account_id);
    cell(tr, (d.lines || []).map((li) => `${li.name} ×${li.qty}`).join(", ") || "the whole visit");
    cell(tr, fen(d.claimed_fen)); cell(tr, d.note);
    const td = cell(tr, "");
    if (!mayRefund) { td.textContent = "needs a refund grant"; return; }
    const accept = document.createElement("button");
    accept.textContent = "Accept"; accept.className = "row"; accept.disabled = !operator;
    accept.setAttribute("aria-label", `Accept dispute ${d.id}`);
    accept.addEventListener("click", () => {
      const reason = window.prompt(`Accept: refund ${fen(d.claimed_fen)} to the shopper. Reason they will read:`, "we checked: you are right");
      if (reason) act("resolve_dispute", { dispute_id: d.id, decision: "accept", reason });
    });
    const reject = document.createElement("button");
    reject.textContent = "Reject"; reject.className = "row"; reject.disabled = !operator;
    reject.setAttribute("aria-label", `Reject dispute ${d.id}`);
    reject.addEventListener("click", () => {
      const reason = window.prompt("Reject: the reason the shopper will read (what the evidence shows):", "");
      if (reason) act("resolve_dispute", { dispute_id: d.id, decision: "reject", reason });
    });
    td.append(accept, reject);
  });
  const stages = [];
  for (const [path, st] of Object.entries(s.stages_ms || {})) {
    for (const [k, v] of Object.entries(st)) if (v.count) stages.push([`${path}: ${k}`, `${v.p50} · ${v.p99}`]);
  }
  fill("stages", stages, (tr, [k, v]) => { cell(tr, k); cell(tr, v); });
  const lat = s.latency || {};
  fill("latency", Object.entries(lat), (tr, [k, v]) => { cell(tr, k); cell(tr, v.count ? `p50 ${v.p50} · p99 ${v.p99} · n ${v.count}` : "no samples"); });
  fill("audit", s.audit || [], (tr, a) => {
    cell(tr, ago(a.t)); cell(tr, a.operator); cell(tr, a.action); cell(tr, JSON.stringify(a.args)); cell(tr, a.outcome); cell(tr, a.detail);
  });
  charts(s.history || []);
}

let stream = null;

function reconnect() {
  if (stream) { stream.close(); stream = null; }
  connect();
}

async function connect() {
  if (stream) return;
  const r = await fetch("/api/state", { credentials: "same-origin" });
  if (r.status === 401) { $("link").textContent = "log in to see the store"; return; }
  if (r.ok) render(await r.json());
  const es = new EventSource("/api/stream");
  stream = es;
  es.addEventListener("state", (e) => { $("link").textContent = "live"; $("link").className = "link live"; render(JSON.parse(e.data)); });
  es.onerror = () => {
    $("link").textContent = "reconnecting…";
    $("link").className = "link";
    if (es.readyState === EventSource.CLOSED) { stream = null; setTimeout(connect, 3000); }  // e.g. logged out
  };
}

$("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await fetch("/api/login", {
    method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name: $("login-name").value, password: $("login-password").value }),
  });
  const body = await r.json().catch(() => ({}));
  $("login-password").value = "";
  if (r.ok) { setOperator(body.operator, body.csrf, body.may_refund); say(`logged in as ${body.operator}`, true); }
  else say((body.error && body.error.message) || "login failed", false);
});
$("logout").addEventListener("click", async () => {
  await fetch("/api/logout", { method: "POST", credentials: "same-origin" });
  setOperator(null, null, false);
  say("logged out", true);
});
$("visit-close").addEventListener("click", () => { $("visit-panel").hidden = true; });
for (const b of document.querySelectorAll("button.op")) b.addEventListener("click", () => act(b.dataset.action, {}));

fetch("/api/me", { credentials: "same-origin" }).then(async (r) => {
  if (r.ok) { const b = await r.json(); setOperator(b.operator, b.csrf, b.may_refund); } else { setOperator(null, null, false); connect(); }
}).catch(() => connect());
