"use strict";
// The mock wallet app: plain DOM, no build step, no external assets. State comes from /app/api/*; every change
// sends the session's CSRF token in X-CSRF-Token.

const $ = (id) => document.getElementById(id);
let csrf = null;
let me = null;
let code = null;          // {code, jti, expires_at, purpose, store_id, now}
let purpose = "entry";
let skew = 0;             // server time - local time (s)
let timers = [];
let waiting = false;      // a store has not answered a data request yet: My data is refreshed until it has
const shown = new Map();  // visit key -> JSON last rendered (a receipt is redrawn only when it changed)

const cny = (fen) => (fen / 100).toFixed(2) + " CNY";

// the phone's language: the English texts are the message ids; a catalog (gettext .po, served as JSON) translates
// them, and a text it lacks stays English — never a key
let T = {};
const N_ = (text) => text;  // a message id translated later, where it is used
function pickLanguage() {
  for (const l of navigator.languages || [navigator.language || "en"]) {
    const x = String(l).toLowerCase();
    if (x.startsWith("zh")) return "zh_Hans";
    if (x.startsWith("en")) return "en";
  }
  return "en";
}
function t(text, params) {
  let s = T[text] || text;
  if (params) s = s.replace(/%\((\w+)\)s/g, (m, k) => (k in params ? String(params[k]) : m));
  return s;
}
async function loadLanguage() {
  const lang = pickLanguage();
  document.documentElement.lang = lang === "zh_Hans" ? "zh-Hans" : "en";
  if (lang !== "en") {
    try {
      const r = await fetch(`/app/i18n/${lang}.json`, {credentials: "same-origin"});
      if (r.ok) T = (await r.json()).messages || {};
    } catch (e) { T = {}; }
  }
  for (const n of document.querySelectorAll("[data-i18n]")) n.textContent = t(n.textContent.trim());
}
const when = (t) => t ? new Date(t * 1000).toLocaleString() : "";
const now = () => Date.now() / 1000 + skew;

function say(text, ok = true) {
  const m = $("message");
  m.textContent = text;
  m.className = ok ? "ok" : "bad";
}

async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
  const r = await fetch("/app/api/" + path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body),
                                             credentials: "same-origin"});
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (!r.ok) {
    const err = (data && data.error) || {};
    const e = new Error(err.message || ("HTTP " + r.status));
    e.status = r.status;
    throw e;
  }
  return data;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v; else if (v !== null && v !== undefined) e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

// signed in / out ------------------------------------------------------------------------------
function signedIn(data) {
  me = data;
  if (data.csrf) csrf = data.csrf;
  $("signed-out").hidden = true;
  $("signed-in").hidden = false;
  $("who").textContent = data.account.real_name;
  $("balance").textContent = cny(data.account.balance_fen);
  $("face-consent").checked = !!data.account.face_consent;
  const adult = data.account.adult_from;  // (from the ID number at sign-up: only the day its holder is 18 is kept)
  $("age").textContent = !adult ? t("Age not verified: cabinets of age-restricted goods will not open for you.")
    : adult <= new Date().toISOString().slice(0, 10) ? t("Age verified: adult.")
    : t("Age verified: adult from %(date)s.", {date: adult});
  if (document.activeElement !== $("door-name")) $("door-name").value = data.account.door_name || "";
  showVisit(data.visit);
}

function signedOut() {
  me = null; csrf = null; code = null;
  timers.forEach(clearInterval); timers = [];
  shown.clear();
  $("receipts").replaceChildren(el("p", {class: "small", text: "No visits yet."}));
  $("signed-in").hidden = true;
  $("signed-out").hidden = false;
  $("who").textContent = "";
}

const UNCERTAIN = {
  others_inside: N_("other people are inside"),  // (t() at use: the catalog loads after this runs)
  takes_unattributed: N_("something was taken that the store cannot place yet"),
  shelf_blind: N_("a shelf reader could not see for a while"),
};

function showVisit(v) {
  $("visit-now").textContent = v ? t("You are in %(store)s (since %(since)s).", {store: v.store_id, since: when(v.updated_at)}) : "";
  showBasket(v && v.basket);
}

function showBasket(b) {
  // what the store attributes to you now; the exit decides what you pay (the receipt is the record)
  const box = $("basket");
  box.hidden = !b;
  if (!b) return;
  const key = JSON.stringify([b.lines, b.total_fen, b.certain, b.why]);
  if (box.dataset.shown === key) return;  // redrawn only when it changed (a screen reader hears changes only)
  box.dataset.shown = key;
  $("basket-lines").replaceChildren(...(b.lines.length ? b.lines.map((li) => el("li", {"data-sku": li.sku,
    text: `${li.qty} × ${li.name} — ${cny(li.amount_fen)}`})) : [el("li", {text: t("Nothing yet.")})]));
  $("basket-total").textContent = t("So far: %(amount)s", {amount: cny(b.total_fen)});
  $("basket-note").textContent = b.certain
    ? t("Put something back and it leaves your basket. You pay as you walk out.")
    : t("Not certain yet: the exit decides what you pay (%(why)s).", {why: b.why.map((w) => t(UNCERTAIN[w] || w)).join("; ")});
  box.dataset.certain = b.certain ? "yes" : "no";
}

async function start() {
  try { signedIn(await api("GET", "me")); } catch (e) { signedOut(); return; }
  await newCode();
  timers.push(setInterval(tick, 1000));
  timers.push(setInterval(checkCode, 1000));  // (also the live basket while inside)
  timers.push(setInterval(refresh, 3000));
  refresh();
  myData();
  privacy();
}

// the code -------------------------------------------------------------------------------------
async function newCode() {
  try {
    const companions = purpose === "entry" ? Number($("companions").value) : 0;
    code = await api("POST", "codes", {purpose, companions});
    skew = code.now - Date.now() / 1000;
    const img = $("code-img");
    img.src = code.qr_png;
    img.dataset.faceBilling = code.face_consent ? "on" : "off";
    const until = new Date(code.expires_at * 1000).toLocaleTimeString();
    img.alt = purpose === "entry" ? t("entry code for %(store)s, valid until %(until)s", {store: code.store_id, until})
                                  : `exit code for ${code.store_id} (scan it at the exit), valid until ${until}`;
    $("code-purpose").textContent = purpose === "entry" ? t("Show this at the entrance") : t("Show this at the exit");
    img.dataset.group = String(code.group || 1);
    $("code-group").textContent = code.group > 1
      ? t("For %(n)s people: show it once for each of you at the entrance. You pay for what the group takes.", {n: code.group})
      : "";
    tick();
  } catch (e) {
    say(e.message, false);
  }
}

function tick() {
  if (!code) return;
  const left = Math.max(0, Math.round(code.expires_at - now()));
  $("countdown").textContent = t("renews in %(s)s s", {s: Math.max(0, left - 10)});
  if (left <= 10) newCode();  // refreshed before it expires
}

async function checkCode() {
  if (!code) return;
  try {
    const st = await api("GET", "codes/" + encodeURIComponent(code.jti));
    showVisit(st.visit);
    if (st.used) {  // a used code is replaced at once
      say(t("Code used at %(store)s.", {store: st.store_id}));
      await newCode();
    }
  } catch (e) {
    if (e.status === 401) signedOut();
  }
}

// receipts -------------------------------------------------------------------------------------
function decidedText(s) {
  const id = s.identified;
  let how = t("not identified at the exit (yet)");
  if (id && id.by === "face") {
    how = t("recognised by face (distance %(d)s, margin %(m)s)", {d: Number(id.distance).toFixed(3), m: Number(id.margin).toFixed(3)});
  } else if (id && id.by === "qr") {
    how = t("by the code you scanned at the exit") + (id.recovery ? t(" (the store had lost your visit: checked by staff)") : "");
  }
  let reader = "";
  if (s.exit_reader) {
    reader = t(" The exit reader read %(n)s tag(s)", {n: s.exit_reader.read}) +
      (s.exit_reader.added.length ? t(", %(n)s not seen leaving a shelf", {n: s.exit_reader.added.length}) : "") +
      (s.exit_reader.not_carried_out.length ? t("; %(n)s taken but not carried out (not charged)", {n: s.exit_reader.not_carried_out.length}) : "") + ".";
  }
  return t("Identified %(how)s.", {how}) + reader;
}

function receipt(r) {
  const s = r.record.summary || {};
  const key = r.store_id + "/" + r.visit_id;
  const art = el("article", {class: "receipt", "data-visit": r.visit_id, "aria-label": `visit ${when(s.entered_at || r.updated_at)} at ${r.store_id}`});
  art.append(el("h3", {text: `${r.store_id} · ${when(s.left_at || s.entered_at || r.updated_at)} · ${r.state}`}));
  const table = el("table", {}, el("tr", {}, el("th", {text: t("Item")}), el("th", {text: t("Qty")}), el("th", {text: t("Amount")}),
                                          el("th", {text: t("Seen taken by")})));
  for (const li of s.lines || []) {
    const by = Object.entries(li.seen_by || {}).map(([k, n]) => `${k} ×${n}`).join(", ");
    table.append(el("tr", {}, el("td", {text: li.name}), el("td", {text: li.qty}), el("td", {text: cny(li.amount_fen)}),
                    el("td", {text: by})));
  }
  art.append(table);
  art.append(el("p", {class: "total", text: t("Total %(amount)s", {amount: cny(s.total_fen || 0)})}));
  if (s.review) {
    const amount = cny(s.review.amount_fen || 0);
    const what = {charge: t("charged %(amount)s more", {amount}), refund: t("refunded %(amount)s", {amount}),
                  close: t("nothing more to pay")}[s.review.decision] || s.review.decision;
    art.append(el("p", {class: "review", text: t("Checked by the store: %(what)s — %(reason)s", {what, reason: s.review.reason})}));
  }
  if (s.group && s.group.people > 1) {
    art.append(el("p", {class: "group", text: t("A group of %(n)s on your code: you paid for what the group took", {n: s.group.people}) +
      (s.group.left_first ? t(" (%(n)s left before you, with what they carried).", {n: s.group.left_first}) : ".")}));
  }
  art.append(el("p", {class: "how", text: decidedText(s)}));
  for (const ch of r.charges) {
    let t = `Charge ${ch.id}: ${ch.status} ${cny(ch.amount_fen)}` + (ch.failure_reason ? ` (${ch.failure_reason})` : "");
    for (const rf of ch.refunds) t += ` · refunded ${cny(rf.amount_fen)} (${rf.reason || ""})`;
    art.append(el("p", {class: "charge", text: t}));
  }
  if (!r.charges.length && r.final) art.append(el("p", {class: "charge", text: (s.total_fen ? t("Charge on its way.") : t("Nothing to pay."))}));
  for (const d of r.disputes) {
    const t = d.state === "open" ? `Dispute ${d.id}: open (${cny(d.claimed_fen)} claimed)` :
      `Dispute ${d.id}: ${d.state} by the store — ${d.reason}` + (d.refund_fen ? ` · refunded ${cny(d.refund_fen)}` : "");
    art.append(el("p", {class: "dispute " + d.state, text: t}));
  }
  const rec = el("details", {}, el("summary", {text: t("The store's record")}),
                 el("pre", {text: JSON.stringify(r.record, null, 1)}));
  art.append(rec);
  const succeeded = r.charges.some((c) => c.status === "succeeded" && c.refunded_fen < c.amount_fen);
  if (succeeded && !r.disputes.some((d) => d.state === "open")) art.append(disputeForm(r, s));
  return [key, art];
}

function disputeForm(r, s) {
  const f = el("form", {class: "dispute-form"});
  const fs = el("fieldset", {}, el("legend", {text: t("Something wrong? (no item ticked: the whole visit)")}));
  (s.lines || []).forEach((li, i) => {
    const id = `dp-${r.visit_id}-${i}`;
    fs.append(el("label", {class: "inline", for: id}, el("input", {type: "checkbox", id, value: li.sku}), ` Dispute ${li.name}`));
  });
  const noteId = `note-${r.visit_id}`;
  fs.append(el("label", {for: noteId, text: t("What is wrong")}), el("textarea", {id: noteId, maxlength: "500", required: ""}));
  fs.append(el("button", {type: "submit", text: t("Send dispute")}));
  f.append(fs);
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const skus = [...f.querySelectorAll("input[type=checkbox]:checked")].map((c) => c.value);
    try {
      const d = await api("POST", "disputes", {store_id: r.store_id, visit_id: r.visit_id, skus, note: f.querySelector("textarea").value});
      say(t("Dispute %(id)s sent: %(amount)s claimed. The store will answer here.", {id: d.id, amount: cny(d.claimed_fen)}));
      refresh();
    } catch (e) { say(e.message, false); }
  });
  return f;
}

async function refresh() {
  if (!me) return;
  try {
    const [m, rc] = await Promise.all([api("GET", "me"), api("GET", "receipts")]);
    signedIn(m);
    await showCards();
    const box = $("receipts");
    if (!rc.data.length) return;
    if (box.querySelector("p.small")) box.replaceChildren();
    rc.data.forEach((r, i) => {
      const json = JSON.stringify(r);
      const key = r.store_id + "/" + r.visit_id;
      if (shown.get(key) === json) return;
      const [, art] = receipt(r);
      const old = box.querySelector(`article[data-visit="${CSS.escape(r.visit_id)}"]`);
      if (old) old.replaceWith(art); else if (i === 0) box.prepend(art); else box.append(art);
      shown.set(key, json);
    });
    if (waiting || $("my-data-details").open) await myData();  // (the whole export only while someone looks)
  } catch (e) {
    if (e.status === 401) signedOut();
  }
}

// cards ----------------------------------------------------------------------------------------
async function showCards() {
  const d = await api("GET", "cards");
  const list = $("card-list");
  list.replaceChildren();
  for (const c of d.cards) {
    const remove = el("button", {type: "button", text: t("Remove")});
    remove.setAttribute("aria-label", t("Remove the card linked on %(when)s", {when: when(c.created_at)}));
    remove.addEventListener("click", async () => {
      try {
        await api("DELETE", "cards/" + encodeURIComponent(c.id));
        say(t("The card is removed: it stops opening the door within a minute."));
        await showCards();
      } catch (e) { say(e.message, false); }
    });
    list.append(el("li", {}, t("Card linked on %(when)s at %(store)s", {when: when(c.created_at), store: c.store_id}) + " ", remove));
  }
  if (!d.cards.length) list.append(el("li", {class: "small", text: t("No card linked.")}));
  $("card-add").disabled = d.cards.length >= d.max_cards;
  const before = list.dataset.count;
  list.dataset.count = String(d.cards.length);
  if (before !== undefined && Number(before) < d.cards.length) {
    $("card-pairing").hidden = true;
    say(t("Your card is linked."));
  }
}

// my data --------------------------------------------------------------------------------------
async function myData() {
  const d = await api("GET", "my-data");
  $("my-data").textContent = JSON.stringify(d, null, 1);
  const list = $("requests");
  list.replaceChildren();
  waiting = d.store_requests.some((q) => !q.answered_at);
  for (const q of d.store_requests) {
    list.append(el("li", {text: `${q.kind} at ${q.store_id}: ` + (q.answered_at ? `answered ${when(q.answered_at)}` : "waiting for the store")}));
  }
}

async function privacy() {
  const p = await api("GET", "privacy");
  const dl = $("privacy");
  dl.replaceChildren();
  const rows = [["Face billing", p.face], ["Store records", p.store_records], ["ID number", p.id_number],
                ["Kept", Object.entries(p.retention).map(([k, v]) => `${k.replaceAll("_", " ")}: ${v}`).join("; ")],
                ["After deletion", p.kept_after_erasure]];
  for (const [k, v] of rows) dl.append(el("dt", {text: k}), el("dd", {text: v}));
  $("face-text").textContent = p.face;
}

// forms ----------------------------------------------------------------------------------------
$("to-login").addEventListener("click", () => { $("signup-form").hidden = true; $("login-form").hidden = false; });
$("to-signup").addEventListener("click", () => { $("login-form").hidden = true; $("signup-form").hidden = false; });

$("signup-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const d = await api("POST", "signup", {real_name: $("su-name").value, id_number: $("su-id").value, password: $("su-pw").value});
    csrf = d.csrf;
    $("su-pw").value = "";
    say(t("Welcome: your account is open."));
    await start();
  } catch (e) { say(e.message, false); }
});

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const d = await api("POST", "login", {id_number: $("li-id").value, password: $("li-pw").value});
    csrf = d.csrf;
    $("li-pw").value = "";
    say(t("Logged in."));
    await start();
  } catch (e) { say(e.message, false); }
});

$("logout").addEventListener("click", async () => {
  try { await api("POST", "logout"); } finally { signedOut(); say("Logged out."); }
});

$("topup-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const fen = Math.round(Number($("topup-amount").value) * 100);
  try {
    signedIn(await api("POST", "topup", {amount_fen: fen}));
    say(t("Topped up %(amount)s.", {amount: cny(fen)}));
    $("topup-amount").value = "";
  } catch (e) { say(e.message, false); }
});

$("face-consent").addEventListener("change", async (ev) => {
  const on = ev.target.checked;
  try {
    signedIn(await api("POST", "consent", {face_consent: on}));
    say(on ? t("Face billing is on from your next code.") : t("Face billing is off: the store forgets your face now."));
    await newCode();  // the code carries the choice
  } catch (e) { ev.target.checked = !on; say(e.message, false); }
});

$("door-name-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const name = $("door-name").value.trim();
  try {
    signedIn(await api("POST", "door-name", {door_name: name || null}));
    say(name ? t("The door will greet you as %(name)s from your next code.", {name}) : t("The door will greet you without a name."));
    await newCode();  // the code carries the name
  } catch (e) { say(e.message, false); }
});

$("card-add").addEventListener("click", async () => {
  try {
    const p = await api("POST", "cards/pairing");
    $("card-qr").src = p.qr_png;
    $("card-qr").dataset.text = p.text;
    $("card-qr").alt = t("card link code, valid until %(when)s", {when: when(p.expires_at)});
    $("card-pairing-until").textContent = t("Valid until %(when)s.", {when: when(p.expires_at)});
    $("card-pairing").hidden = false;
  } catch (e) { say(e.message, false); }
});

$("code-toggle").addEventListener("click", async () => {
  purpose = purpose === "entry" ? "exit" : "entry";
  $("code-toggle").textContent = purpose === "entry" ? t("Show the exit code") : t("Show the entry code");
  await newCode();
});
$("code-new").addEventListener("click", newCode);
$("companions").addEventListener("change", newCode);  // the code carries the group

$("my-data-details").addEventListener("toggle", () => { if ($("my-data-details").open) myData(); });

$("ask-stores").addEventListener("click", async () => {
  try {
    const d = await api("POST", "data-requests", {kind: "export"});
    say(t("Asked %(n)s store(s) for their records.", {n: d.data.length}));
    await myData();
  } catch (e) { say(e.message, false); }
});

$("delete-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const d = await api("POST", "delete-account", {password: $("del-pw").value, confirm: $("del-confirm").value});
    signedOut();
    say(`Your account is deleted. Kept: ${d.kept}. Stores asked to erase: ${d.stores_asked.join(", ") || "none"}.`);
  } catch (e) { say(e.message, false); }
});

loadLanguage().then(start);
