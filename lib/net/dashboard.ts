/**
 * The instructor's live dashboard, served by the HTTP side at `GET /`: one
 * self-contained page (inline CSS and script, no external resource of any
 * kind, so it works offline and on a lab network with no internet) that
 * shows every group's walk on the seven-colour rainbow, live from the
 * server's `/events` stream.
 *
 * What the page reads (the contract with `lib/net/http.ts`):
 * - `GET /api/status`: the object of `udpjwt status --json` plus
 *   `keys: [{group, alg, fingerprint}]` and `errors: {GROUP: {CODE: n}}`
 *   (totals since the start; `""` for requests of no verified group).
 * - `GET /events` (Server-Sent Events): `hello` (the same object, on each
 *   connection), `group` (`{group, state, colour, walks, lastActivity,
 *   registration}` after each accepted step that changed something the row
 *   shows: the state, the walks, or a group's first request, at RED) and
 *   `summary` (each second: `{at, totals, perSecond, errors, health}`;
 *   `totals` and `perSecond` by outcome: `ok`, `replayed`, `no_action`,
 *   `dropped…`, or an error code).
 * - A `?token=T` in the page's address is passed on to both requests.
 * - It runs under `Content-Security-Policy: default-src 'none'; script-src
 *   'sha256-…' (its one inline script); style-src 'unsafe-inline';
 *   connect-src 'self'; img-src data:`: no inline handlers, no `eval`.
 *
 * Group names, registrations and the `sub`s of unknown groups are typed by
 * students: the script puts them in the page only through `textContent` and
 * properties, never as markup.
 *
 * @example
 * ```ts
 * import { DASHBOARD_HTML } from "./dashboard.ts";
 * DASHBOARD_HTML.startsWith("<!doctype html>"); // true
 * ```
 *
 * @module
 */

/** The style sheet: large type for a projector, light and dark palettes. */
const STYLE = `
:root {
  color-scheme: light dark;
  --bg: #f4f5f7; --fg: #14171c; --muted: #5d6673; --card: #fff;
  --line: #d8dce2; --bad: #c62828; --bad-bg: #fdeaea; --good: #2e7d32;
  --warn: #b26a00;
  --c0: #e53935; --c1: #fb8c00; --c2: #fdd835; --c3: #43a047;
  --c4: #1e88e5; --c5: #3949ab; --c6: #8e24aa;
  --t2: #9a7d00; --t5: var(--c5); --t6: var(--c6);
  font-size: clamp(14px, 0.9vw + 8px, 28px);
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0e1116; --fg: #eef1f5; --muted: #9aa4b2; --card: #171b22;
    --line: #2b313b; --bad: #ff6b6b; --bad-bg: #3b1719; --good: #66bb6a;
    --warn: #ffb74d; --t2: var(--c2); --t5: #8c9eff; --t6: #ce93d8;
  }
}
* { box-sizing: border-box; }
html, body { height: 100%; margin: 0; }
body {
  display: flex; flex-direction: column; background: var(--bg);
  color: var(--fg); font-family: system-ui, -apple-system, "Segoe UI",
  Roboto, "DejaVu Sans", sans-serif; font-variant-numeric: tabular-nums;
}
header {
  display: flex; align-items: center; gap: 1em; flex-wrap: wrap;
  padding: 0.5em 1em; border-bottom: 1px solid var(--line);
}
h1 { font-size: 1.5em; margin: 0; letter-spacing: 0.02em; }
h1 span, #clock { color: var(--muted); font-weight: 400; }
#totals { display: flex; gap: 1em; margin-left: auto; color: var(--muted); }
#totals b { color: var(--fg); }
.badge {
  padding: 0.2em 0.7em; border-radius: 1em; font-weight: 600;
  background: var(--line);
}
.badge.good { background: var(--good); color: #fff; }
.badge.bad { background: var(--bad); color: #fff; }
[hidden] { display: none !important; }
main { flex: 1; overflow: auto; padding: 0 1em; }
body.offline main { opacity: 0.55; }
.row {
  display: grid; align-items: center; gap: 0 1em;
  grid-template-columns: minmax(6em, 1.1fr) 12.5em 4em minmax(10em, 1.5fr)
    minmax(7em, 1.1fr) minmax(9em, 1.4fr);
  padding: 0.45em 0.6em; border-bottom: 1px solid var(--line);
  border-left: 0.35em solid transparent;
}
.row.head {
  position: sticky; top: 0; background: var(--bg); z-index: 1;
  color: var(--muted); font-size: 0.8em; text-transform: uppercase;
  letter-spacing: 0.06em; padding: 0.7em 0.75em 0.4em;
}
.name { font-size: 1.3em; font-weight: 700; overflow-wrap: anywhere; }
.what { overflow-wrap: anywhere; }
.small { display: block; font-size: 0.7rem; font-weight: 400;
  color: var(--muted); overflow-wrap: anywhere; }
.bar { display: flex; gap: 0.15em; }
.seg { flex: 1; height: 1.3em; border-radius: 0.2em; opacity: 0.14; }
.seg.past { opacity: 0.4; }
.seg.on { opacity: 1; transform: scaleY(1.3);
  box-shadow: 0 0 0 0.12em var(--fg); }
.seg:nth-child(1) { background: var(--c0); }
.seg:nth-child(2) { background: var(--c1); }
.seg:nth-child(3) { background: var(--c2); }
.seg:nth-child(4) { background: var(--c3); }
.seg:nth-child(5) { background: var(--c4); }
.seg:nth-child(6) { background: var(--c5); }
.seg:nth-child(7) { background: var(--c6); }
.colour { font-size: 0.8em; font-weight: 600; margin-top: 0.3em; }
.s0 { color: var(--c0); } .s1 { color: var(--c1); } .s2 { color: var(--t2); }
.s3 { color: var(--c3); } .s4 { color: var(--c4); } .s5 { color: var(--t5); }
.s6 { color: var(--t6); }
.walks { font-size: 1.5em; font-weight: 700; text-align: right; }
.members b { font-size: 1.2em; }
.chip {
  display: inline-block; margin: 0.1em 0.3em 0.1em 0; padding: 0 0.4em;
  border: 1px solid var(--line); border-radius: 0.3em; font-size: 0.75em;
}
.chip.hot { border-color: var(--bad); color: var(--bad); font-weight: 700; }
.row.stuck { background: var(--bad-bg); border-left-color: var(--bad); }
.row.stuck .what { color: var(--bad); font-weight: 700; }
.row.done { animation: done 2.5s ease-out; }
@keyframes done { from { background: var(--c3); } }
.none { color: var(--muted); }
#empty { color: var(--muted); font-size: 1.2em; padding: 1em 0.6em; }
#strangers { color: var(--muted); padding: 0.6em; font-size: 0.85em; }
footer { border-top: 1px solid var(--line); padding: 0.4em 1em 0.6em; }
#legend { display: flex; gap: 1.2em; font-size: 0.85em; align-items: center; }
#legend i { display: inline-block; width: 0.8em; height: 0.8em;
  border-radius: 0.15em; margin-right: 0.3em; vertical-align: -0.05em; }
#legend .title { font-weight: 600; margin-right: auto; }
.plot { position: relative; height: 7.5em; margin: 0.3em 0 1.1em; }
.plot svg { width: 100%; height: 100%; display: block;
  border-left: 1px solid var(--line); border-bottom: 1px solid var(--line); }
.axis { position: absolute; font-size: 0.7em; color: var(--muted); }
.k-ok { fill: var(--good); background: var(--good); }
.k-other { fill: var(--c4); background: var(--c4); }
.k-error { fill: var(--bad); background: var(--bad); }
.k-dropped { fill: var(--warn); background: var(--warn); }
.grid { stroke: var(--line); stroke-dasharray: 4 4;
  vector-effect: non-scaling-stroke; }
`;

/**
 * The script. Plain JavaScript for any current browser, no modules, no
 * template literals (this is itself a template literal), and never
 * `innerHTML`: every piece of server data goes through `textContent`.
 */
const SCRIPT = `
"use strict";

// ---- Settings ---------------------------------------------------------
const COLOURS = ["RED", "ORANGE", "YELLOW", "GREEN", "BLUE", "INDIGO", "VIOLET"];
const WINDOW_S = 300; // the chart shows at most five minutes of summaries
const MIN_SPAN_S = 30; // and at least thirty seconds
const STUCK_MS = 120000; // errors this recent, and no progress since: stuck
const STALE_MS = 10000; // no event for this long on an open stream: reconnect
const RETRY_MS = 3000; // after the server refused the stream (e.g. a 401)
const SHOW_MAX = 5; // registrations, codes or names listed before "+N more"
const KINDS = ["ok", "other", "error", "dropped"]; // chart layers, bottom up

// The page's own ?token= goes on every request it makes.
const token = new URLSearchParams(location.search).get("token");
function api(path) {
  return token === null ? path : path + "?token=" + encodeURIComponent(token);
}

// ---- Helpers: data from the server is never trusted to be well-formed ----
function $(id) {
  return document.getElementById(id);
}
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = String(text);
  return e;
}
function num(x, fallback) {
  const n = Number(x);
  return x !== null && x !== "" && Number.isFinite(n) ? n : fallback;
}
function obj(x) {
  return x !== null && typeof x === "object" && !Array.isArray(x) ? x : {};
}
function list(x) {
  return Array.isArray(x) ? x : [];
}
function time(x) {
  const t = typeof x === "string" || typeof x === "number" ? Date.parse(x) : NaN;
  return Number.isFinite(t) ? t : null;
}
function fmt(n) {
  return Math.round(n).toLocaleString("en-US");
}
// "12 s ago", "3 min ago", "2 h ago".
function ago(t) {
  const s = Math.max(0, Math.round((now() - t) / 1000));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.floor(s / 60) + " min ago";
  if (s < 172800) return Math.floor(s / 3600) + " h ago";
  return Math.floor(s / 86400) + " days ago";
}
// A set of numbers in order.
function sorted(set) {
  return Array.from(set).sort(function (a, b) {
    return a - b;
  });
}
// A few items, then "+N more".
function few(items) {
  const shown = items.slice(0, SHOW_MAX).join(", ");
  return items.length > SHOW_MAX ? shown + " +" + (items.length - SHOW_MAX) + " more" : shown;
}
// ok / other / error / dropped, from an outcome name of the summaries.
function kindOf(outcome) {
  if (outcome === "ok") return "ok";
  if (outcome === "replayed" || outcome === "no_action") return "other";
  if (outcome.indexOf("dropped") === 0) return "dropped";
  return "error";
}

// Times are the server's: "12 s ago" is measured on its clock, as learnt
// from each summary's "at", so a projector laptop with a wrong clock agrees.
let clockOffset = 0;
function now() {
  return Date.now() + clockOffset;
}

// ---- The model: one entry per group, each with its row's elements --------
const groups = new Map();
const strangers = new Map(); // errors of names that are no known group
function ensure(name) {
  let g = groups.get(name);
  if (!g) {
    g = {
      name: name, key: null, state: null, colour: "", walks: 0,
      lastActivity: null, members: null, seen: new Set(), missing: new Set(),
      unlisted: new Set(), errors: {}, lastError: null, lastEvent: null,
      seqMax: null,
    };
    g.view = makeRow(g);
    groups.set(name, g);
  }
  return g;
}

// One row: name, rainbow, walks, last event, members, errors.
function makeRow(g) {
  const v = { row: el("div", "row") };
  v.row.dataset.group = g.name;
  const name = el("div", "name", g.name);
  v.key = el("span", "small");
  name.append(v.key);
  const state = el("div");
  v.segs = COLOURS.map(function () {
    return el("span", "seg");
  });
  const bar = el("div", "bar");
  bar.append.apply(bar, v.segs);
  v.colour = el("div", "colour");
  state.append(bar, v.colour);
  v.walks = el("div", "walks");
  const last = el("div");
  v.what = el("span", "what");
  v.when = el("span", "small");
  last.append(v.what, v.when);
  v.members = el("div", "members");
  v.errors = el("div", "errors");
  v.row.append(name, state, v.walks, last, v.members, v.errors);
  return v;
}

// The rows in name order (after a new group appears, or a hello).
function placeRows() {
  const names = Array.from(groups.keys()).sort();
  $("rows").replaceChildren.apply($("rows"), names.map(function (n) {
    return groups.get(n).view.row;
  }));
  $("empty").hidden = names.length > 0;
}

function render(g) {
  const v = g.view;
  v.key.textContent = g.key
    ? g.key.alg + " " + g.key.fingerprint.replace(/^SHA256:/, "").slice(0, 10) + "…"
    : "no key loaded";
  v.key.title = g.key ? g.key.fingerprint : "";
  // Profile v1 groups walk 0..M, not the seven colours: the bar shows how far.
  const v1 = g.seqMax !== null && g.state !== null;
  const lit = v1 ? Math.round(g.state / Math.max(g.seqMax, 1) * 6) : g.state;
  v.segs.forEach(function (seg, i) {
    seg.className = "seg" + (i === lit ? " on" : lit !== null && i < lit ? " past" : "");
  });
  v.colour.textContent = g.state === null
    ? "no request yet"
    : v1 ? "state " + g.state + " of " + g.seqMax : g.state + " " + g.colour;
  v.colour.className = g.state === null || v1 ? "colour" : "colour s" + g.state;
  v.walks.textContent = String(g.walks);
  renderMembers(g);
  renderErrors(g);
  tick(g);
}

function renderMembers(g) {
  const v = g.view;
  const seen = sorted(g.seen);
  const missing = sorted(g.missing);
  const unlisted = sorted(g.unlisted);
  const parts = [];
  if (g.members !== null) {
    parts.push(el("b", "", (seen.length - unlisted.length) + "/" + g.members));
    parts.push(el("span", "small", missing.length ? "missing " + few(missing) : "all seen"));
  } else if (seen.length) {
    parts.push(el("b", "", seen.length));
    parts.push(el("span", "small", few(seen)));
  } else {
    parts.push(el("span", "none", "—"));
  }
  if (unlisted.length) parts.push(el("span", "small", "unlisted " + few(unlisted)));
  v.members.replaceChildren.apply(v.members, parts);
}

function renderErrors(g) {
  const codes = Object.keys(g.errors).filter(function (c) {
    return g.errors[c] > 0;
  }).sort(function (a, b) {
    return g.errors[b] - g.errors[a] || (a < b ? -1 : 1);
  });
  const hot = g.lastError && isStuck(g) ? g.lastError.code : null;
  const chips = codes.slice(0, SHOW_MAX).map(function (c) {
    const chip = el("span", "chip" + (c === hot ? " hot" : ""));
    chip.append(el("b", "", fmt(g.errors[c])), " " + c);
    return chip;
  });
  if (codes.length > SHOW_MAX) chips.push(el("span", "small", "+" + (codes.length - SHOW_MAX) + " more"));
  if (!chips.length) chips.push(el("span", "none", "—"));
  g.view.errors.replaceChildren.apply(g.view.errors, chips);
}

// Its recent answers are errors: an error in the last STUCK_MS, and no
// accepted request since.
function isStuck(g) {
  const e = g.lastError;
  return e !== null && now() - e.at < STUCK_MS &&
    (g.lastActivity === null || e.at > g.lastActivity);
}

// The time-dependent parts of a row: its last event and the stuck mark.
function tick(g) {
  const v = g.view;
  const e = g.lastEvent;
  const x = g.lastError;
  const latest = x && (!e || x.at >= e.at) ? x : e;
  v.what.textContent = latest ? latest.text : "—";
  v.when.textContent = latest ? ago(latest.at) : "";
  const stuck = isStuck(g);
  if (stuck !== v.row.classList.contains("stuck")) {
    v.row.classList.toggle("stuck", stuck);
    renderErrors(g);
  }
}

// ---- Applying the server's messages -------------------------------------
let helloSeen = false;

// The full picture: /api/status, or the hello of each (re)connection.
function applyStatus(s) {
  const before = new Map(groups);
  groups.clear();
  list(s.keys).forEach(function (k) {
    const g = adopt(ensure(String(k.group)), before);
    // A JWK Set lists several keys for one group: the row shows the first.
    if (!g.key) g.key = { alg: String(k.alg), fingerprint: String(k.fingerprint) };
  });
  list(s.groups).forEach(function (x) {
    const g = adopt(ensure(String(x.group)), before);
    g.state = num(x.state, 0);
    g.colour = String(x.colour);
    g.walks = num(x.walks, 0);
    g.lastActivity = time(x.lastActivity);
    g.members = num(x.members, null);
    g.seqMax = num(x.seqMax, null);
    g.seen = new Set();
    g.unlisted = new Set();
    list(x.registrations).forEach(function (r) {
      g.seen.add(num(r.registration, 0));
      if (r.unlisted === true) g.unlisted.add(num(r.registration, 0));
    });
    g.missing = new Set(list(x.missing).map(function (m) {
      return num(m, 0);
    }));
    if (!g.lastEvent && g.lastActivity !== null) {
      g.lastEvent = { text: "at " + g.colour, at: g.lastActivity };
    }
  });
  const errors = obj(s.errors);
  strangers.clear();
  Object.keys(errors).forEach(function (name) {
    const g = groups.get(name);
    if (g) g.errors = counts(errors[name]);
    else strangers.set(name, counts(errors[name]));
  });
  if (s.health !== undefined) renderHealth(s.health);
  groups.forEach(render);
  placeRows();
  renderStrangers();
}

// Keeps what only this page knew (the last event, the last error) of a group
// across a hello.
function adopt(g, before) {
  const old = before.get(g.name);
  if (old && g.lastEvent === null) {
    g.lastEvent = old.lastEvent;
    g.lastError = old.lastError;
  }
  return g;
}

function counts(x) {
  const out = {};
  Object.keys(obj(x)).forEach(function (code) {
    out[code] = num(x[code], 0);
  });
  return out;
}

// One group's state changed.
function applyGroup(d) {
  const isNew = !groups.has(String(d.group));
  const g = ensure(String(d.group));
  const walksBefore = g.walks;
  g.state = num(d.state, 0);
  g.colour = String(d.colour);
  g.walks = num(d.walks, g.walks);
  g.seqMax = num(d.seqMax, g.seqMax);
  g.lastActivity = time(d.lastActivity) || now();
  const r = num(d.registration, null);
  if (r !== null && !g.seen.has(r)) {
    g.seen.add(r);
    if (g.members !== null && !g.missing.has(r)) g.unlisted.add(r);
    g.missing.delete(r);
  }
  let text = g.seqMax !== null ? "→ state " + g.state : "→ " + g.colour;
  if (g.walks > walksBefore) text = "walk " + g.walks + " completed";
  else if (g.state === 0) text = g.seqMax !== null ? "back at 0" : "started at RED";
  g.lastEvent = { text: text, at: g.lastActivity };
  render(g);
  if (isNew) placeRows();
  if (g.walks > walksBefore) flash(g.view.row);
}

// Replays the "walk completed" highlight on a row.
function flash(row) {
  row.classList.remove("done");
  void row.offsetWidth;
  row.classList.add("done");
}

// Each second: health, totals, the chart, and error counts per group.
function applySummary(d) {
  const at = time(d.at);
  if (at !== null) clockOffset = at - Date.now();
  const t = at === null ? now() : at;
  renderHealth(d.health);
  const totals = { ok: 0, other: 0, error: 0, dropped: 0 };
  const totalMap = obj(d.totals);
  Object.keys(totalMap).forEach(function (k) {
    totals[kindOf(k)] += num(totalMap[k], 0);
  });
  KINDS.forEach(function (k) {
    $("t-" + k).textContent = fmt(totals[k]);
  });
  const rate = { at: t, ok: 0, other: 0, error: 0, dropped: 0 };
  const perSecond = obj(d.perSecond);
  Object.keys(perSecond).forEach(function (k) {
    rate[kindOf(k)] += num(perSecond[k], 0);
  });
  addSample(rate);
  const errors = obj(d.errors);
  Object.keys(errors).forEach(function (name) {
    const after = counts(errors[name]);
    const g = groups.get(name);
    if (!g) {
      strangers.set(name, after);
      return;
    }
    // Counts are totals: the code that grew most this second is the news.
    let grew = null;
    let most = 0;
    Object.keys(after).forEach(function (code) {
      const delta = after[code] - (g.errors[code] || 0);
      if (delta > most) {
        most = delta;
        grew = code;
      }
    });
    g.errors = after;
    if (grew) g.lastError = { code: grew, text: "✗ " + grew, at: t };
    renderErrors(g);
    tick(g);
  });
  renderStrangers();
}

function renderHealth(x) {
  const health = obj(x);
  const badge = $("health");
  badge.className = "badge " + (health.ok === true ? "good" : "bad");
  badge.textContent = health.ok === true
    ? "healthy"
    : "unhealthy" + (health.reason ? ": " + String(health.reason) : "");
}

// Errors of names that match no group (a misspelt sub, junk), and of
// requests whose signature matched no key (the name ""): a line below.
function renderStrangers() {
  const items = Array.from(strangers.keys()).map(function (name) {
    const c = strangers.get(name);
    const codes = Object.keys(c).filter(function (code) {
      return c[code] > 0;
    }).sort(function (a, b) {
      return c[b] - c[a];
    });
    let total = 0;
    codes.forEach(function (code) {
      total += c[code];
    });
    const what = codes.map(function (code) {
      return fmt(c[code]) + " " + code;
    }).join(", ");
    return { text: (name === "" ? "" : "“" + name + "”: ") + what, total: total };
  }).filter(function (x) {
    return x.total > 0;
  }).sort(function (a, b) {
    return b.total - a.total;
  });
  const box = $("strangers");
  box.hidden = items.length === 0;
  const shown = items.slice(0, SHOW_MAX).map(function (x) {
    return x.text;
  });
  if (items.length > SHOW_MAX) shown.push("+" + (items.length - SHOW_MAX) + " more");
  box.replaceChildren("Errors of no known group: " + shown.join("; "));
}

// ---- The chart: answers per second by kind, stacked ----------------------
// It spans the summaries received, at least MIN_SPAN_S and at most WINDOW_S,
// so a page opened a minute ago is not a sliver at the right edge.
const samples = [];
function addSample(s) {
  samples.push(s);
  while (samples.length && samples[0].at < s.at - WINDOW_S * 1000) samples.shift();
  drawChart();
}

// 1, 2, 5, 10, 20, 50, ... at or above n.
function niceCeil(n) {
  let step = 1;
  while (true) {
    for (const m of [1, 2, 5]) if (step * m >= n) return step * m;
    step *= 10;
  }
}

function drawChart() {
  const latest = samples.length ? samples[samples.length - 1].at : now();
  let max = 0;
  samples.forEach(function (s) {
    max = Math.max(max, s.ok + s.other + s.error + s.dropped);
  });
  const top = niceCeil(Math.max(max, 1));
  const first = samples.length ? samples[0].at : latest;
  // In whole tens of seconds, for a tidy label.
  const span = Math.min(WINDOW_S, Math.max(MIN_SPAN_S, Math.ceil((latest - first) / 10000) * 10));
  const x = function (s) {
    return ((1 - (latest - s.at) / 1000 / span) * 300).toFixed(2);
  };
  const y = function (v) {
    return (100 - v / top * 100).toFixed(2);
  };
  const below = samples.map(function () {
    return 0;
  });
  KINDS.forEach(function (k) {
    // The area between the layers below and this one.
    const upper = samples.map(function (s, i) {
      return x(s) + "," + y(below[i] + s[k]);
    });
    const lower = samples.map(function (s, i) {
      return x(s) + "," + y(below[i]);
    }).reverse();
    samples.forEach(function (s, i) {
      below[i] += s[k];
    });
    const path = $("p-" + k);
    path.setAttribute("d", samples.length ? "M" + upper.concat(lower).join("L") + "Z" : "");
  });
  $("x-left").textContent = span < 120 ? span + " s ago" : Math.round(span / 60) + " min ago";
  $("y-top").textContent = fmt(top) + "/s";
  $("y-mid").textContent = (top / 2).toLocaleString("en-US") + "/s";
}

// ---- The stream ----------------------------------------------------------
let source = null;
let lastMessage = 0;
let retryTimer = 0;

function setLive(live) {
  $("conn").hidden = live;
  document.body.classList.toggle("offline", !live);
}

// A listener that parses the event's JSON; one bad message is logged and
// skipped, it does not stop the page.
function on(name, apply) {
  source.addEventListener(name, function (e) {
    lastMessage = Date.now();
    try {
      apply(JSON.parse(e.data));
    } catch (err) {
      console.error("udpjwt dashboard: bad " + name + " event", err);
    }
  });
}

function connect() {
  clearTimeout(retryTimer);
  if (source) source.close();
  source = new EventSource(api("/events"));
  lastMessage = Date.now();
  on("hello", function (d) {
    helloSeen = true;
    applyStatus(d);
  });
  on("group", applyGroup);
  on("summary", applySummary);
  source.onopen = function () {
    lastMessage = Date.now();
    setLive(true);
  };
  // EventSource retries a dropped connection by itself; a refused one (an
  // HTTP error) it gives up on, so retry that one here.
  source.onerror = function () {
    setLive(false);
    if (source.readyState === EventSource.CLOSED) retryTimer = setTimeout(connect, RETRY_MS);
  };
}

// Every second: the clock, relative times, stuck marks, and a stream gone
// silent (summaries come each second, so silence means a dead connection).
function everySecond() {
  $("clock").textContent = new Date(now()).toLocaleTimeString("en-GB");
  groups.forEach(tick);
  if (source && source.readyState === EventSource.OPEN && Date.now() - lastMessage > STALE_MS) {
    setLive(false);
    connect();
  }
  if (!samples.length || now() - samples[samples.length - 1].at > 2000) drawChart();
}
everySecond();
setInterval(everySecond, 1000);

// A first picture at once, even if a proxy holds the stream back.
fetch(api("/api/status"), { cache: "no-store" }).then(function (r) {
  return r.ok ? r.json() : null;
}).then(function (s) {
  if (s && !helloSeen) applyStatus(s);
}).catch(function () {});
connect();
`;

/**
 * The dashboard page served at `GET /`: a complete HTML document with its
 * style and script inline and no external resource (its favicon is an empty
 * `data:` URL, so the browser asks for nothing else either).
 */
export const DASHBOARD_HTML: string = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>udpjwt — lab</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body class="offline">
<header>
  <h1>udpjwt <span>— lab</span></h1>
  <span id="health" class="badge">health unknown</span>
  <span id="conn" class="badge bad">disconnected</span>
  <span id="clock"></span>
  <div id="totals">
    <span>ok <b id="t-ok">0</b></span>
    <span>repeats <b id="t-other">0</b></span>
    <span>errors <b id="t-error">0</b></span>
    <span>dropped <b id="t-dropped">0</b></span>
  </div>
</header>
<main>
  <div class="row head">
    <span>Group</span><span>State</span><span>Walks</span>
    <span>Last event</span><span>Members</span><span>Errors</span>
  </div>
  <div id="rows"></div>
  <p id="empty">No group yet: waiting for the server.</p>
  <p id="strangers" hidden></p>
</main>
<footer>
  <div id="legend">
    <span class="title">Answers per second</span>
    <span><i class="k-ok"></i>ok</span>
    <span><i class="k-other"></i>repeats</span>
    <span><i class="k-error"></i>errors</span>
    <span><i class="k-dropped"></i>dropped</span>
  </div>
  <div class="plot">
    <svg viewBox="0 0 300 100" preserveAspectRatio="none" aria-label="answers per second">
      <line class="grid" x1="0" x2="300" y1="50" y2="50"></line>
      <path id="p-ok" class="k-ok"></path>
      <path id="p-other" class="k-other"></path>
      <path id="p-error" class="k-error"></path>
      <path id="p-dropped" class="k-dropped"></path>
    </svg>
    <span class="axis" id="y-top" style="top: 0; left: 0.4em">1/s</span>
    <span class="axis" id="y-mid" style="top: 42%; left: 0.4em"></span>
    <span class="axis" id="x-left" style="bottom: -1.3em; left: 0"></span>
    <span class="axis" style="bottom: -1.3em; right: 0">now</span>
  </div>
</footer>
<script>${SCRIPT}</script>
</body>
</html>
`;
