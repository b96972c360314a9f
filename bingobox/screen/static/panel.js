// A door panel: shows its door's latest message as the store decides (server-sent events) and plays its sound cue.
// It holds no words of its own: the server sends them in the door's language. No external assets, no login.
"use strict";
const door = decodeURIComponent(location.pathname.split("/")[2] || "");
const played = []; // the cues played and the messages shown, for whoever checks the panel (tests, a technician's
const shown = []; //  console): the last 50 of each
window.bingoboxPanel = { played, shown };
let lastSeq = 0;
let labels = {};
let lang = new URLSearchParams(location.search).get("lang"); // the door's language unless the URL asks (?lang=en)
let audio = null;

// Short tones made in the page (no sound files to fetch): accepted rises, refused is low, show-code is three
// short beeps, alert a repeating two-tone.
const TONES = {
  accepted: [[660, 0.12], [880, 0.18]],
  refused: [[320, 0.22], [0, 0.08], [260, 0.3]],
  show_code: [[620, 0.1], [0, 0.08], [620, 0.1], [0, 0.08], [620, 0.1]],
  alert: [[880, 0.25], [660, 0.25], [880, 0.25], [660, 0.25]],
};

function play(cue) {
  const tones = TONES[cue];
  if (!tones) return;
  played.push(cue);
  if (played.length > 50) played.shift();
  document.body.dataset.played = cue;
  try {
    audio = audio || new AudioContext();
    if (audio.state === "suspended") audio.resume();
    let t = audio.currentTime + 0.02;
    for (const [freq, dur] of tones) {
      if (freq > 0) {
        const osc = audio.createOscillator();
        const gain = audio.createGain();
        osc.type = cue === "refused" ? "square" : "sine";
        osc.frequency.value = freq;
        gain.gain.setValueAtTime(0.0001, t);
        gain.gain.exponentialRampToValueAtTime(0.3, t + 0.01);
        gain.gain.exponentialRampToValueAtTime(0.0001, t + dur);
        osc.connect(gain).connect(audio.destination);
        osc.start(t);
        osc.stop(t + dur + 0.02);
      }
      t += dur;
    }
  } catch (e) {
    console.warn("panel: no sound", e);
  }
}

function show(m, withSound) {
  if (!m || m.seq <= lastSeq) return;
  lastSeq = m.seq;
  document.body.dataset.cue = m.cue;
  document.body.dataset.key = m.key;
  const text = (m.text && m.text[lang]) || m;
  shown.push({ key: m.key, cue: m.cue, title: text.title, detail: text.detail });
  if (shown.length > 50) shown.shift();
  document.getElementById("title").textContent = text.title;
  document.getElementById("detail").textContent = text.detail;
  if (withSound && m.cue !== "none") play(m.cue);
}

function connected(yes) {
  document.body.dataset.connected = String(yes);
  const off = document.getElementById("offline");
  off.textContent = labels.offline || "";
  off.hidden = yes;
}

function listen() {
  const es = new EventSource(`/panel/${encodeURIComponent(door)}/events`);
  es.onopen = () => connected(true);
  es.onmessage = (e) => show(JSON.parse(e.data), true); // (the latest, already shown, is skipped by its seq)
  es.onerror = () => connected(false); // EventSource reconnects by itself ("retry" from the server)
}

async function start() {
  const r = await fetch(`/panel/${encodeURIComponent(door)}/state`, { cache: "no-store" });
  if (!r.ok) {
    document.getElementById("title").textContent = `no panel ${door}`;
    return;
  }
  const st = await r.json();
  if (!lang || !st.labels[lang]) lang = st.lang;
  labels = st.labels[lang];
  document.documentElement.lang = lang === "zh_Hans" ? "zh-Hans" : lang;
  document.getElementById("role").textContent = labels[st.role] || st.role;
  show(st.message, false);
  listen();
}

start().catch((e) => { connected(false); console.error(e); });
