"use strict";
// The fleet page: plain DOM, server-sent events, commands with the session's CSRF token.
const $ = (id) => document.getElementById(id);
let csrf = null, operator = null, mayCommand = false, stream = null;

const ago = (t) => { if (!t) return ""; const s = Math.max(0, Date.now() / 1000 - t); return s < 90 ? `${Math.round(s)} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : `${(s / 3600).toFixed(1)} h ago`; };
function cell(tr, text, cls) { const td = document.createElement("td"); td.textContent = text == null ? "" : String(text); if (cls) td.className = cls; tr.appendChild(td); return td; }
function fill(id, rows, build) { const body = $(id); body.replaceChildren(); for (const r of rows) { const tr = document.createElement("tr"); build(tr, r); body.appendChild(tr); } }
function say(text, ok) { const m = $("message"); m.textContent = text; m.className = ok === null ? "unknown" : ok ? "ok" : "error"; }

async function command(store, name, args, confirmText) {
  if (confirmText && !window.confirm(confirmText)) return;
  say(`${name} → ${store}: sent, waiting for the store…`, null);
  const r = await fetch(`/api/commands/${encodeURIComponent(store)}/${name}`, {method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf || ""}, body: JSON.stringify(args || {})});
  const b = await r.json().catch(() => ({}));
  const ok = r.status === 202 ? null : r.ok;
  say(`${name} → ${store}: ${b.detail || (b.error && b.error.message) || r.statusText}`, ok);
}

function btn(label, fn, aria) { const b = document.createElement("button"); b.type = "button"; b.textContent = label; if (aria) b.setAttribute("aria-label", aria); b.disabled = !mayCommand; b.addEventListener("click", fn); return b; }

function render(s) {
  $("n-stores").textContent = s.stores; $("n-online").textContent = s.online; $("n-offline").textContent = s.offline;
  $("n-alarms").textContent = s.open_alarms;
  $("n-reviews").textContent = s.reviews ? s.reviews.open : (s.stores_shown || []).reduce((n, st) => n + (st.reviews_open || 0), 0); $("broker").textContent = s.broker_connected ? "connected" : "DOWN";
  $("delay").textContent = s.delay_ms && s.delay_ms.count ? `${s.delay_ms.p99} ms` : "—";
  $("alarm-count").textContent = s.open_alarms ? `(${s.open_alarms})` : "";
  fill("alarms", s.alarms, (tr, a) => {
    cell(tr, ago(a.t)); cell(tr, a.store_open > 1 ? `${a.store_id} (${a.store_open} open)` : a.store_id); cell(tr, a.kind); cell(tr, a.device); cell(tr, a.late ? "late" : "", "late");
    cell(tr, "").appendChild(btn("Clear", () => command(a.store_id, "clear_alarm", {alarm_id: a.alarm_id}), `Clear alarm ${a.alarm_id} of ${a.store_id}`));
  });
  fill("stores", s.stores_shown, (tr, st) => {
    cell(tr, st.id);
    cell(tr, `${st.online ? "online" : "offline"} since ${ago(st.since)}`, st.online ? "online" : "offline");
    cell(tr, st.state); cell(tr, st.inside);
    cell(tr, Object.entries(st.doors).map(([n, d]) => `${n}: ${d.open ? "open" : "shut"}${d.locked ? "" : " (unlocked)"}`).join(", "));
    cell(tr, st.open_alarms); cell(tr, st.charges_pending);
    cell(tr, st.reviews_open ? `${st.reviews_open} open (rate ${(100 * st.review_rate).toFixed(1)} %)` : `none (rate ${(100 * (st.review_rate || 0)).toFixed(1)} %)`); cell(tr, [...(st.problems || []), ...(st.refused ? [`${st.refused} messages refused (last: ${st.refused_last})`] : [])].join(", "));
    const td = cell(tr, "");
    td.append(btn("Lock down", () => command(st.id, "lock_down", {}, `Lock down ${st.id}? Nobody gets in; exit and charging go on.`), `Lock down ${st.id}`),
              btn("Release", () => command(st.id, "release", {}), `Release ${st.id}`),
              btn("Unlock entrance", () => command(st.id, "unlock", {door: "entrance", seconds: 5}), `Unlock the entrance of ${st.id}`));
  });
  fill("reviews", (s.reviews || {}).oldest || [], (tr, r) => {
    cell(tr, ago(r.opened_at)); cell(tr, r.store_open > 1 ? `${r.store_id} (${r.store_open} open)` : r.store_id);
    const open = document.createElement("button");
    open.type = "button"; open.className = "link-button"; open.textContent = r.visit_id;
    open.setAttribute("aria-label", `Evidence of visit ${r.visit_id} at ${r.store_id}`);
    open.addEventListener("click", () => showEvidence(r.store_id, r.visit_id));
    cell(tr, "").appendChild(open); cell(tr, r.causes.join(", "));
  });
  const restock = (s.stores_shown || []).flatMap((st) => [
    ...(st.off_sale_zones || []).map((z) => ({store: st.id, sku: `zone ${z}: OFF SALE`, count: "—", minimum: "—"})),
    ...(st.restock || []).map((r) => ({store: st.id, ...r}))]);
  fill("restock", restock, (tr, r) => { cell(tr, r.store); cell(tr, r.sku); cell(tr, r.count); cell(tr, r.minimum); });
  fill("audit", s.audit, (tr, a) => { cell(tr, ago(a.t)); cell(tr, a.operator); cell(tr, a.action); cell(tr, JSON.stringify(a.args)); cell(tr, a.outcome); cell(tr, a.detail); });
}

function query() { return new URLSearchParams({q: $("f-text").value, status: $("f-status").value, state: $("f-state").value}).toString(); }

function connect() {
  if (stream) stream.close();
  stream = new EventSource("/api/stream?" + query());
  stream.addEventListener("state", (e) => { $("link").textContent = "live"; $("link").className = "live"; render(JSON.parse(e.data)); });
  stream.onerror = () => { $("link").textContent = "reconnecting"; $("link").className = ""; };
}

function setOperator(b) {
  operator = b ? b.operator : null; csrf = b ? b.csrf : null; mayCommand = !!(b && b.may_command);
  $("login").hidden = !!operator; $("me").hidden = !operator; $("me-name").textContent = operator || ""; $("fleet").hidden = !operator;
  if (operator) connect(); else if (stream) { stream.close(); stream = null; }
}

$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const r = await fetch("/api/login", {method: "POST", credentials: "same-origin", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({name: $("login-name").value, password: $("login-password").value})});
  const b = await r.json().catch(() => ({}));
  $("login-password").value = "";
  if (r.ok) { setOperator(b); say(`logged in as ${b.operator}`, true); } else say((b.error && b.error.message) || r.statusText, false);
});
$("logout").addEventListener("click", async () => { await fetch("/api/logout", {method: "POST", credentials: "same-origin"}); setOperator(null); });
for (const id of ["f-text", "f-status", "f-state"]) $(id).addEventListener("change", connect);
$("f-text").addEventListener("input", connect);
fetch("/api/me", {credentials: "same-origin"}).then(async (r) => { if (r.ok) setOperator(await r.json()); });

// a reviewed visit's evidence, as its store sent it with the review (no shopper named in it)
async function showEvidence(store, visit) {
  const r = await fetch(`/api/reviews/${encodeURIComponent(store)}/${encodeURIComponent(visit)}`, {credentials: "same-origin"});
  const body = await r.json().catch(() => ({}));
  if (!r.ok) { $("evidence").hidden = true; return; }
  const ev = body.evidence || {};
  $("evidence").hidden = false;
  $("evidence-visit").textContent = `${visit} (${store})`;
  $("evidence-summary").textContent = `why: ${(body.causes || []).join(", ")} · state ${ev.state || "?"} · flags ${(ev.flags || []).join(", ") || "none"}` +
    (ev.amount_fen == null ? "" : ` · amount ${(ev.amount_fen / 100).toFixed(2)} CNY`) +
    ((ev.charges || []).length ? ` · charges ${ev.charges.map((c) => `${c.state} ${c.amount_fen}`).join(", ")}` : "") + (ev.cut ? " · (cut to size)" : "");
  fill("evidence-events", ev.events || [], (tr, e) => {
    cell(tr, e.t ? new Date(e.t * 1000).toLocaleTimeString() : ""); cell(tr, e.kind); cell(tr, JSON.stringify(e.data));
  });
}
$("evidence-close").addEventListener("click", () => { $("evidence").hidden = true; });
