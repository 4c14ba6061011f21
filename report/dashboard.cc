// The dashboard page served at GET / by the admin API: one self-contained
// HTML document (inline CSS and JavaScript, no external assets, so it works
// offline and behind strict CSPs that allow inline code). The script polls
// the admin API and draws everything with DOM text nodes and inline SVG;
// nothing from the API is ever inserted as HTML.
//
// The page itself holds no data. With an admin token configured, every call
// it makes needs a token: the user types the admin or a read-only token into
// the header's field; it is kept in the tab's sessionStorage only, sent as
// `Authorization: Bearer`, and never written into the DOM. A 401/403 on a
// poll says so in the status line.
//
// The admin server prints protos with the protobuf JSON mapping: names in
// lowerCamelCase, int64 as strings, enums as names, default values left out.
// The script's accessors accept lowerCamelCase and snake_case, numbers or
// strings, enum names or numbers, and treat a missing field as its default.
#include <string>

#include "report/report.h"

namespace understudy::report {
namespace {

constexpr char kDashboardHtml[] = R"HTML(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Understudy rollout</title>
<link rel="icon" href="data:,">
<script>
// Runs first so errors anywhere in the page are shown (and tests can see them).
(function () {
  var pending = [];
  function report(msg) {
    var box = document.getElementById('js-errors');
    if (!box) { pending.push(msg); return; }
    var line = document.createElement('div');
    line.textContent = String(msg);
    box.appendChild(line);
    box.hidden = false;
  }
  window.__usReportError = report;
  window.__usFlushErrors = function () { var p = pending; pending = []; p.forEach(report); };
  window.addEventListener('error', function (e) {
    report('error: ' + (e.message || e) + (e.filename ? ' at ' + e.filename + ':' + e.lineno : ''));
  });
  window.addEventListener('unhandledrejection', function (e) {
    report('unhandled rejection: ' + (e.reason && e.reason.stack ? e.reason.stack : e.reason));
  });
  var original = console.error;
  console.error = function () {
    report('console.error: ' + Array.prototype.map.call(arguments, String).join(' '));
    return original.apply(console, arguments);
  };
})();
</script>
<style>
:root{--fg:#1d2330;--muted:#5b6475;--line:#d9dee8;--bg:#f3f5f9;--card:#fff;--prod:#2563eb;--cand:#ea580c;--shadow:#7c3aed;--ok:#1a7f37;--bad:#c62828;--warn:#b26a00}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;align-items:center;gap:16px;padding:12px 24px;background:#101828;color:#fff}
header h1{font-size:18px;margin:0;font-weight:600}
#status{font-size:12px;color:#cbd5e1}
form.auth{margin-left:auto;display:flex;gap:6px;align-items:center}
form.auth input{padding:4px 8px;border:1px solid #475467;border-radius:6px;background:#1d2939;color:#fff;min-width:200px}
form.auth button{padding:4px 10px;border-color:#475467;background:#344054;font-weight:400}
#status.bad{color:#fca5a5}
main{padding:16px 24px 48px;max-width:1400px;margin:0 auto}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px;margin-bottom:12px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 14px}
.card .k{font-size:11px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.card .v{font-size:20px;font-weight:600;margin-top:2px;overflow-wrap:anywhere}
.card .v.small{font-size:13px;font-weight:400}
.phase{display:inline-block;padding:2px 10px;border-radius:999px;font-size:14px}
.phase.shadow,.phase.canary{background:#e8f0fe;color:#1a4fb8}.phase.promoted{background:#e6f4ea;color:var(--ok)}
.phase.rolled_back{background:#fdecea;color:var(--bad)}.phase.paused{background:#fff4e0;color:var(--warn)}.phase.none{background:#eef0f4;color:var(--muted)}
.plan{display:flex;gap:6px;flex-wrap:wrap;margin:4px 0 16px}
.plan span{padding:3px 10px;border-radius:6px;border:1px solid var(--line);background:var(--card);font-size:12px}
.plan span.done{background:#e6f4ea;border-color:#b7dfc2}.plan span.current{background:#101828;color:#fff;border-color:#101828}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 16px;margin-bottom:16px}
section h2{font-size:15px;margin:0 0 8px}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:12px}
.chart{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:8px 10px}
.chart h3{font-size:13px;margin:0 0 4px;font-weight:600}
.chart svg{width:100%;height:auto;display:block}
.legend{font-size:11px;color:var(--muted);display:flex;gap:12px;flex-wrap:wrap}
.legend i{display:inline-block;width:14px;height:3px;margin-right:4px;vertical-align:middle}
table{border-collapse:collapse;width:100%;font-size:12px}
th,td{border-bottom:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{color:var(--muted);font-weight:600}
.gate{display:block;white-space:normal}
td.nw{white-space:nowrap}
td.gates{min-width:420px}
.o{display:inline-block;min-width:38px;text-align:center;border-radius:4px;font-size:11px;font-weight:600;padding:0 4px;margin-right:4px}
.o.pass{background:#e6f4ea;color:var(--ok)}.o.fail{background:#fdecea;color:var(--bad)}.o.inconclusive{background:#fff4e0;color:var(--warn)}
.act-rollback{color:var(--bad);font-weight:600}.act-promote{color:var(--ok);font-weight:600}.act-pause{color:var(--warn);font-weight:600}
.diff{border-top:1px solid var(--line);padding:8px 0}
.diff:first-child{border-top:0}
.muted{color:var(--muted)}
.empty{color:var(--muted);font-style:italic;padding:6px 0}
form.rb{display:flex;gap:8px;flex-wrap:wrap;align-items:center}
form.rb input[type=text],form.rb input[type=password]{padding:6px 8px;border:1px solid var(--line);border-radius:6px;min-width:220px}
button{padding:6px 14px;border-radius:6px;border:1px solid var(--bad);background:var(--bad);color:#fff;font-weight:600;cursor:pointer}
button:disabled{opacity:.5;cursor:default}
#rb-result{font-size:12px;margin-top:6px}
#rb-result.ok{color:var(--ok)}#rb-result.bad{color:var(--bad)}
#js-errors{background:#fdecea;color:var(--bad);border:1px solid #f5c2c0;border-radius:8px;padding:8px 12px;margin-bottom:12px;font:12px monospace;white-space:pre-wrap}
</style>
</head>
<body>
<header><h1>Understudy</h1><span id="models" class="muted"></span>
  <form class="auth" id="auth-form" autocomplete="off">
    <input type="password" id="auth-token" placeholder="API token (if required)" autocomplete="off" aria-label="API token">
    <button type="submit" id="auth-button">Use token</button>
  </form>
  <span id="status">loading…</span></header>
<main>
<div id="js-errors" hidden></div>
<div class="cards">
  <div class="card"><div class="k">Phase</div><div class="v" id="phase"><span class="phase none">–</span></div></div>
  <div class="card"><div class="k">Stage</div><div class="v" id="stage">–</div></div>
  <div class="card"><div class="k">Candidate weight</div><div class="v" id="weight">–</div></div>
  <div class="card"><div class="k">Stage started</div><div class="v small" id="started">–</div></div>
  <div class="card"><div class="k">Version / rollbacks</div><div class="v small" id="version">–</div></div>
  <div class="card" style="grid-column:span 2"><div class="k">Last reason</div><div class="v small" id="reason">–</div></div>
  <div class="card" style="grid-column:span 2"><div class="k">Judge holding</div><div class="v small" id="hold">–</div></div>
</div>
<div class="plan" id="plan"></div>
<section><h2>Over the last hour</h2><div class="charts" id="charts"></div></section>
<section><h2>Current health (since stage start)</h2><div id="health"></div></section>
<section><h2>When to revisit</h2><div id="revisit"></div></section>
<section><h2>Recent decisions</h2><div id="decisions"></div></section>
<section><h2>Recent major differences</h2><div id="diffs"></div></section>
<section><h2>Manual rollback</h2>
  <form class="rb" id="rb-form" autocomplete="off">
    <input type="text" id="rb-reason" placeholder="reason (required)" maxlength="500">
    <input type="text" id="rb-actor" placeholder="your name (actor)" maxlength="100">
    <input type="password" id="rb-token" placeholder="admin token (if set)" autocomplete="off">
    <label class="muted"><input type="checkbox" id="rb-remember"> keep token for this tab</label>
    <button type="submit" id="rb-button">Roll back to production</button>
  </form>
  <div id="rb-result"></div>
</section>
</main>
<script>
(function () {
'use strict';
window.__usFlushErrors();

// ---------------------------------------------------------- accessors --
function snake(name) { return name.replace(/[A-Z]/g, function (c) { return '_' + c.toLowerCase(); }); }
// f reads a field by its lowerCamelCase name, or its snake_case name.
function f(obj, name) {
  if (obj === null || obj === undefined || typeof obj !== 'object') return undefined;
  if (Object.prototype.hasOwnProperty.call(obj, name)) return obj[name];
  var s = snake(name);
  if (Object.prototype.hasOwnProperty.call(obj, s)) return obj[s];
  return undefined;
}
// n reads a number (int64 may come as a string); missing -> dflt (0).
function n(obj, name, dflt) {
  var v = f(obj, name);
  if (v === undefined || v === null || v === '') return dflt === undefined ? 0 : dflt;
  var x = typeof v === 'number' ? v : Number(v);
  return isFinite(x) ? x : (dflt === undefined ? 0 : dflt);
}
function s(obj, name) { var v = f(obj, name); return v === undefined || v === null ? '' : String(v); }
function arr(obj, name) { var v = f(obj, name); return Array.isArray(v) ? v : []; }
function o(obj, name) { var v = f(obj, name); return v && typeof v === 'object' ? v : {}; }
// enumName maps "PHASE_CANARY" or 2 to "canary".
function enumName(v, prefix, names) {
  if (v === undefined || v === null || v === '') return names[0];
  if (typeof v === 'number' || /^[0-9]+$/.test(String(v))) return names[Number(v)] || String(v);
  var t = String(v);
  if (t.indexOf(prefix) === 0) t = t.slice(prefix.length);
  return t.toLowerCase();
}
var PHASES = ['unspecified', 'shadow', 'canary', 'paused', 'promoted', 'rolled_back'];
var GATES = ['unspecified', 'pass', 'fail', 'inconclusive'];
var VERDICTS = ['unspecified', 'equivalent', 'minor_diff', 'major_diff', 'candidate_error',
                'production_error', 'both_error'];
var ACTIONS = ['unspecified', 'promote', 'rollback', 'pause', 'resume', 'set_weight', 'hold'];
function phaseOf(state) { return enumName(f(state, 'phase'), 'PHASE_', PHASES); }
function actionOf(decision) { return enumName(f(decision, 'action'), 'ACTION_', ACTIONS); }

// ------------------------------------------------------------ helpers --
function el(tag, attrs, children) {
  var e = document.createElement(tag);
  if (attrs) Object.keys(attrs).forEach(function (k) {
    if (k === 'text') e.textContent = attrs[k]; else if (k === 'cls') e.className = attrs[k];
    else e.setAttribute(k, attrs[k]);
  });
  (children || []).forEach(function (c) {
    if (c === null || c === undefined) return;
    e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
  });
  return e;
}
function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
function setText(id, text) { document.getElementById(id).textContent = text; }
function pad(x) { return (x < 10 ? '0' : '') + x; }
function fmtTime(micros) {
  if (!micros) return '–';
  var d = new Date(micros / 1000);
  return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate()) + ' ' +
         pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes()) + ':' + pad(d.getUTCSeconds()) + 'Z';
}
function fmtClock(ms) {
  var d = new Date(ms);
  return pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes()) + ':' + pad(d.getUTCSeconds());
}
function fmtNum(v) {
  if (v === null || v === undefined || !isFinite(v)) return 'n/a';
  var a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1000) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 0.01) return v.toFixed(3);
  return v.toPrecision(3);
}
function fmtPct(v, digits) { return isFinite(v) ? (100 * v).toFixed(digits === undefined ? 2 : digits) + '%' : 'n/a'; }
function weightText(bp) { return (bp % 100 === 0 ? (bp / 100).toFixed(0) : (bp / 100).toFixed(2)) + '%'; }
function truncate(t, max) { t = String(t); return t.length > max ? t.slice(0, max) + '…' : t; }

// -------------------------------------------------------------- charts --
var SVGNS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs) {
  var e = document.createElementNS(SVGNS, tag);
  Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
  return e;
}
// chart draws series [{name,color,dash,points:[[ms,value|null],...]}] and
// markers [{t, label, color}] as an inline SVG line chart.
function chart(title, series, markers, opts) {
  opts = opts || {};
  var W = 560, H = 190, L = 52, R = 10, T = 10, B = 24;
  var box = el('div', {cls: 'chart'}, [el('h3', {text: title})]);
  var root = svg('svg', {viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': title});
  var t0 = Infinity, t1 = -Infinity, vmax = -Infinity, vmin = Infinity, any = false;
  series.forEach(function (sr) {
    sr.points.forEach(function (p) {
      t0 = Math.min(t0, p[0]); t1 = Math.max(t1, p[0]);
      if (p[1] !== null && isFinite(p[1])) { any = true; vmax = Math.max(vmax, p[1]); vmin = Math.min(vmin, p[1]); }
    });
  });
  (markers || []).forEach(function (m) { if (any) { t0 = Math.min(t0, m.t); t1 = Math.max(t1, m.t); } });
  if (!any) {
    root.appendChild(svg('rect', {x: L, y: T, width: W - L - R, height: H - T - B, fill: '#fafbfd', stroke: '#d9dee8'}));
    var msg = svg('text', {x: W / 2, y: H / 2, 'text-anchor': 'middle', fill: '#5b6475', 'font-size': 13});
    msg.textContent = 'no data yet';
    root.appendChild(msg);
    box.appendChild(root);
    return box;
  }
  if (t1 - t0 < 60000) { var mid = (t0 + t1) / 2; t0 = mid - 30000; t1 = mid + 30000; }
  var lo = opts.min !== undefined ? opts.min : Math.min(0, vmin);
  var hi = opts.max !== undefined ? Math.max(opts.max, vmax) : vmax;
  if (!(hi > lo)) hi = lo + (lo === 0 ? 1 : Math.abs(lo));
  hi = opts.max !== undefined && hi === opts.max ? hi : hi * 1.1;
  function x(t) { return L + (t - t0) / (t1 - t0) * (W - L - R); }
  function y(v) { return T + (1 - (v - lo) / (hi - lo)) * (H - T - B); }
  var fmt = opts.format || fmtNum;
  for (var i = 0; i <= 4; i++) {
    var v = lo + (hi - lo) * i / 4, yy = y(v);
    root.appendChild(svg('line', {x1: L, x2: W - R, y1: yy, y2: yy, stroke: i ? '#eef0f4' : '#9aa3b2', 'stroke-width': 1}));
    var lab = svg('text', {x: L - 4, y: yy + 4, 'text-anchor': 'end', fill: '#5b6475', 'font-size': 10});
    lab.textContent = fmt(v);
    root.appendChild(lab);
  }
  [t0, (t0 + t1) / 2, t1].forEach(function (t, k) {
    var lab = svg('text', {x: x(t), y: H - 6, 'text-anchor': ['start', 'middle', 'end'][k], fill: '#5b6475', 'font-size': 10});
    lab.textContent = fmtClock(t);
    root.appendChild(lab);
  });
  (markers || []).forEach(function (m) {
    var g = svg('g', {'class': 'marker'});
    var xx = x(m.t);
    g.appendChild(svg('line', {x1: xx, x2: xx, y1: T, y2: H - B, stroke: m.color, 'stroke-width': 1.5, 'stroke-dasharray': '4 3'}));
    g.appendChild(svg('circle', {cx: xx, cy: T + 4, r: 4, fill: m.color}));
    var tip = svg('title', {});
    tip.textContent = m.label;
    g.appendChild(tip);
    root.appendChild(g);
  });
  var legend = el('div', {cls: 'legend'});
  series.forEach(function (sr) {
    var d = '', pen = false, dots = [];
    var prev = null;
    sr.points.forEach(function (p) {
      if (p[1] === null || !isFinite(p[1])) { pen = false; prev = null; return; }
      // A step series holds its value until the next point.
      if (sr.step && pen && prev !== null) d += ' L ' + x(p[0]).toFixed(1) + ' ' + y(prev).toFixed(1);
      d += (pen ? ' L ' : ' M ') + x(p[0]).toFixed(1) + ' ' + y(p[1]).toFixed(1);
      pen = true;
      prev = p[1];
      dots.push(p);
    });
    if (!d) return;
    var attrs = {d: d.trim(), fill: 'none', stroke: sr.color, 'stroke-width': 2, 'stroke-linejoin': 'round', 'class': 'series'};
    if (sr.dash) attrs['stroke-dasharray'] = sr.dash;
    var path = svg('path', attrs);
    var tip = svg('title', {});
    tip.textContent = sr.name;
    path.appendChild(tip);
    root.appendChild(path);
    if (dots.length === 1) root.appendChild(svg('circle', {cx: x(dots[0][0]), cy: y(dots[0][1]), r: 3, fill: sr.color}));
    var last = dots[dots.length - 1];
    legend.appendChild(el('span', null, [el('i', {style: 'background:' + sr.color}), sr.name + ' ' + fmt(last[1])]));
  });
  box.appendChild(root);
  box.appendChild(legend);
  return box;
}

// ------------------------------------------------------------ renderers --
var state = {rollout: null, rolloutError: null, health: [], decisions: [], diffs: [], errors: {}};

function renderRollout() {
  var r = state.rollout, st = o(r, 'state'), phase = r ? phaseOf(st) : 'unspecified';
  var phaseBox = clear(document.getElementById('phase'));
  var none = !r || phase === 'unspecified';
  phaseBox.appendChild(el('span', {cls: 'phase ' + (none ? 'none' : phase), text: none ? 'no rollout yet' : phase.replace('_', ' ')}));
  var stages = arr(r, 'stages').map(Number);
  var idx = n(st, 'stageIndex');
  if (none) {
    setText('stage', '–'); setText('weight', '–'); setText('started', '–'); setText('version', '–');
    setText('reason', state.rolloutError ? state.rolloutError : 'No rollout state yet.');
    setText('hold', '–');
  } else {
    var pct = stages.length > idx ? (stages[idx] === 0 ? 'shadow' : stages[idx] + '%') : '?';
    setText('stage', (idx + 1) + ' of ' + (stages.length || '?') + ' (' + pct + ')');
    setText('weight', weightText(n(st, 'weightBasisPoints')));
    setText('started', fmtTime(n(st, 'stageStartedUnixMicros')));
    setText('version', 'v' + n(st, 'version') + ' · ' + n(st, 'rollbacks') + ' rollback(s)');
    var reason = s(st, 'pausedReason') || s(st, 'lastReason') || '–';
    setText('reason', reason);
    // Why the latest tick held and what would unblock it (HealthSnapshot.hold_reason).
    var health = o(r, 'health'), hold = s(health, 'holdReason');
    setText('hold', !hold || hold === 'HOLD_NONE' ? 'not holding'
        : hold.replace('HOLD_', '').toLowerCase().replace(/_/g, ' ') + (s(health, 'unblock') ? ': ' + s(health, 'unblock') : ''));
  }
  var plan = clear(document.getElementById('plan'));
  stages.forEach(function (p, i) {
    var cls = none ? '' : i < idx || phase === 'promoted' ? 'done' : i === idx ? 'current' : '';
    plan.appendChild(el('span', {cls: cls, text: p === 0 ? 'shadow' : p + '%'}));
  });
  renderHealthTable(o(r, 'health'));
}

function armRow(name, a) {
  var req = n(a, 'requests');
  return el('tr', null, [
    el('td', {text: name}), el('td', {text: String(req)}),
    el('td', {text: req ? fmtPct(n(a, 'errorRate')) : 'n/a'}),
    el('td', {text: req && n(a, 'latencyP95Ms') ? fmtNum(n(a, 'latencyP95Ms')) + ' ms' : 'n/a'}),
    el('td', {text: n(a, 'ttftP95Ms') ? fmtNum(n(a, 'ttftP95Ms')) + ' ms' : 'n/a'}),
    el('td', {text: n(a, 'feedbackCount') ? fmtNum(n(a, 'satisfactionMean')) + ' (' + n(a, 'feedbackCount') + ')' : 'n/a'}),
    el('td', {text: n(a, 'costSamples') ? fmtNum(n(a, 'costPerRequest')) : 'n/a'}),
    el('td', {text: n(a, 'comparisons') ? fmtPct(n(a, 'agreementRate'), 1) + ' of ' + n(a, 'comparisons') : 'n/a'})
  ]);
}

function renderHealthTable(h) {
  var box = clear(document.getElementById('health'));
  if (!h || !Object.keys(h).length) { box.appendChild(el('div', {cls: 'empty', text: 'No health data yet.'})); return; }
  var head = el('tr', null, ['arm', 'requests', 'error rate', 'latency p95', 'TTFT p95', 'satisfaction (n)', 'cost/request', 'agreement']
    .map(function (t) { return el('th', {text: t}); }));
  var rows = [armRow('production', o(h, 'production')), armRow('candidate (live)', o(h, 'candidate'))];
  if (n(o(h, 'shadow'), 'requests') > 0) rows.push(armRow('candidate (shadow)', o(h, 'shadow')));
  box.appendChild(el('table', null, [el('thead', null, [head]), el('tbody', null, rows)]));
}

var ACTION_COLORS = {rollback: '#c62828', promote: '#1a7f37', pause: '#b26a00', resume: '#2563eb', set_weight: '#7c3aed'};

function renderCharts() {
  var box = clear(document.getElementById('charts'));
  var snaps = state.health.slice().sort(function (a, b) { return n(a, 'timeUnixMicros') - n(b, 'timeUnixMicros'); });
  function t(sn) { return n(sn, 'timeUnixMicros') / 1000; }
  // Weight over time, a step function: the snapshots' weights plus each
  // decision's from -> to at its time.
  var weight = snaps.map(function (sn) { return [t(sn), n(o(sn, 'state'), 'weightBasisPoints') / 100, 1]; });
  state.decisions.forEach(function (d) {
    var tt = n(d, 'timeUnixMicros') / 1000;
    weight.push([tt, n(o(d, 'from'), 'weightBasisPoints') / 100, 0]);
    weight.push([tt, n(o(d, 'to'), 'weightBasisPoints') / 100, 2]);
  });
  var current = state.rollout && o(state.rollout, 'state');
  var nowT = n(o(state.rollout, 'health'), 'timeUnixMicros') / 1000;
  if (current && phaseOf(current) !== 'unspecified' && weight.length && nowT > 0) {
    weight.push([nowT, n(current, 'weightBasisPoints') / 100, 3]);
  }
  // Same time: the decision's "from" first, then "to", then snapshots.
  weight.sort(function (a, b) { return a[0] - b[0] || a[2] - b[2]; });
  weight = weight.map(function (p) { return [p[0], p[1]]; });
  var t0 = snaps.length ? t(snaps[0]) : -Infinity;
  var markers = state.decisions.filter(function (d) { return n(d, 'timeUnixMicros') / 1000 >= t0 - 1; })
    .map(function (d) {
      var act = actionOf(d);
      return {t: n(d, 'timeUnixMicros') / 1000, color: ACTION_COLORS[act] || '#5b6475',
              label: fmtTime(n(d, 'timeUnixMicros')) + ' ' + act + ' by ' + s(d, 'actor') + ': ' + s(d, 'reason')};
    });
  box.appendChild(chart('Candidate weight (%) and decisions', [{name: 'weight', color: '#101828', step: true, points: weight}], markers,
    {min: 0, max: 100, format: function (v) { return v.toFixed(0) + '%'; }}));

  function arms(get, needs) {
    var defs = [['production', 'production', 'productionRecent', '#2563eb', null],
                ['candidate', 'candidate', 'candidateRecent', '#ea580c', null],
                ['candidate (shadow)', 'shadow', 'shadowRecent', '#7c3aed', '5 4']];
    return defs.map(function (d) {
      return {name: d[0], color: d[3], dash: d[4], points: snaps.map(function (sn) {
        var a = o(sn, d[1]), recent = o(sn, d[2]);
        return [t(sn), needs(a, recent) ? get(a, recent) : null];
      })};
    }).filter(function (sr) { return sr.points.some(function (p) { return p[1] !== null; }); });
  }
  var errorRate = arms(function (a, r) { return n(r, 'requests') > 0 ? n(r, 'errors') / n(r, 'requests') : n(a, 'errorRate'); },
                       function (a, r) { return n(r, 'requests') > 0 || n(a, 'requests') > 0; });
  box.appendChild(chart('Error rate (recent window)', errorRate, markers, {min: 0, format: function (v) { return fmtPct(v, 1); }}));
  box.appendChild(chart('Latency p95 (ms)', arms(function (a) { return n(a, 'latencyP95Ms'); }, function (a) { return n(a, 'latencyP95Ms') > 0; }), markers, {min: 0}));
  box.appendChild(chart('Time to first token p95 (ms)', arms(function (a) { return n(a, 'ttftP95Ms'); }, function (a) { return n(a, 'ttftP95Ms') > 0; }), markers, {min: 0}));
  box.appendChild(chart('Satisfaction (mean feedback score)', arms(function (a) { return n(a, 'satisfactionMean'); }, function (a) { return n(a, 'feedbackCount') > 0; }), markers, {min: 0, max: 1}));
  box.appendChild(chart('Cost per request', arms(function (a) { return n(a, 'costPerRequest'); }, function (a) { return n(a, 'costSamples') > 0; }), markers, {min: 0}));
}

function gateLine(g) {
  var outcome = enumName(f(g, 'outcome'), 'GATE_', GATES);
  var text = s(g, 'gate') + ': candidate ' + fmtNum(n(g, 'candidateValue')) + ' vs production ' +
             fmtNum(n(g, 'productionValue')) + ', threshold ' + fmtNum(n(g, 'threshold'));
  if (s(g, 'statistic')) text += '; ' + s(g, 'statistic') + ' ' + fmtNum(n(g, 'statisticValue')) + ' / bound ' + fmtNum(n(g, 'bound'));
  text += ' (n ' + n(g, 'productionSamples') + '/' + n(g, 'candidateSamples') +
          ', clusters ' + n(g, 'productionClusters') + '/' + n(g, 'candidateClusters') +
          (n(g, 'designEffect') > 0 ? ', design effect ' + fmtNum(n(g, 'designEffect')) : '') + ')';
  var line = el('span', {cls: 'gate'}, [el('span', {cls: 'o ' + outcome, text: outcome}), text]);
  if (s(g, 'detail')) line.title = s(g, 'detail');
  return line;
}

function renderDecisions() {
  var box = clear(document.getElementById('decisions'));
  var list = state.decisions.slice().sort(function (a, b) { return n(b, 'timeUnixMicros') - n(a, 'timeUnixMicros'); });
  if (!list.length) { box.appendChild(el('div', {cls: 'empty', text: state.errors.decisions || 'No decisions yet.'})); return; }
  var head = el('tr', null, ['time', 'actor', 'action', 'weight', 'reason', 'gates'].map(function (t) { return el('th', {text: t}); }));
  var rows = list.map(function (d) {
    var act = actionOf(d);
    return el('tr', {'class': 'decision'}, [
      el('td', {cls: 'nw', text: fmtTime(n(d, 'timeUnixMicros'))}),
      el('td', {cls: 'nw', text: s(d, 'actor')}),
      el('td', {cls: 'nw act-' + act, text: act}),
      el('td', {cls: 'nw', text: weightText(n(o(d, 'from'), 'weightBasisPoints')) + ' → ' + weightText(n(o(d, 'to'), 'weightBasisPoints'))}),
      el('td', {text: s(d, 'reason')}),
      el('td', {cls: 'gates'}, arr(d, 'gates').map(gateLine))
    ]);
  });
  box.appendChild(el('table', null, [el('thead', null, [head]), el('tbody', null, rows)]));
}

// The revisit triggers fired now (GET /v1/rollout "revisit", docs/drift.md),
// each with what to do next.
function renderRevisit() {
  var box = clear(document.getElementById('revisit'));
  var list = arr(state.rollout, 'revisit');
  if (!list.length) { box.appendChild(el('div', {cls: 'empty', text: 'No revisit trigger has fired.'})); return; }
  var head = el('tr', null, ['trigger', 'what happened', 'what to do next'].map(function (t) { return el('th', {text: t}); }));
  var rows = list.map(function (t) {
    return el('tr', {'class': 'revisit'}, [
      el('td', {cls: 'nw', text: s(t, 'kind')}),
      el('td', {text: s(t, 'detail')}),
      el('td', {text: s(t, 'action')})
    ]);
  });
  box.appendChild(el('table', null, [el('thead', null, [head]), el('tbody', null, rows)]));
}

function renderDiffs() {
  var box = clear(document.getElementById('diffs'));
  if (!state.diffs.length) { box.appendChild(el('div', {cls: 'empty', text: state.errors.diffs || 'No major differences.'})); return; }
  state.diffs.forEach(function (c) {
    var scores = arr(c, 'scores').filter(function (x) { return f(x, 'applicable'); })
      .map(function (x) { return s(x, 'name') + ' ' + n(x, 'score').toFixed(2); }).join(', ');
    var verdict = enumName(f(c, 'verdict'), 'VERDICT_', VERDICTS);
    var div = el('div', {cls: 'diff'}, [
      el('div', null, [el('strong', {text: s(c, 'requestId')}), ' ',
        el('span', {cls: 'muted', text: fmtTime(n(c, 'timeUnixMicros')) + ' · ' + verdict + ' · ' +
          s(c, 'productionModel') + ' vs ' + s(c, 'candidateModel') + (scores ? ' · ' + scores : '')})])
    ]);
    var findings = arr(c, 'findings');
    if (findings.length) {
      var head = el('tr', null, ['finding', 'path', 'production', 'candidate', 'message'].map(function (t) { return el('th', {text: t}); }));
      var rows = findings.map(function (x) {
        return el('tr', {'class': 'finding'}, [
          el('td', {text: s(x, 'kind') + (f(x, 'major') ? ' (major)' : '') + (f(x, 'noiseExplained') ? ' (noise)' : '')}),
          el('td', {text: truncate(s(x, 'path'), 120)}),
          el('td', {text: truncate(s(x, 'production'), 300)}),
          el('td', {text: truncate(s(x, 'candidate'), 300)}),
          el('td', {text: truncate(s(x, 'message'), 300)})
        ]);
      });
      div.appendChild(el('table', null, [el('thead', null, [head]), el('tbody', null, rows)]));
    }
    box.appendChild(div);
  });
}

function render() {
  [renderRollout, renderCharts, renderRevisit, renderDecisions, renderDiffs].forEach(function (fn) {
    try { fn(); } catch (e) { window.__usReportError('render ' + fn.name + ': ' + (e && e.stack ? e.stack : e)); }
  });
}

// ------------------------------------------------------------- polling --
var params = new URLSearchParams(location.search);
var intervalMs = Math.max(1000, Number(params.get('refresh') || 5) * 1000);

// ---------------------------------------------------------------- auth --
// The token for every call (admin or read-only), from this tab's
// sessionStorage; never put into the DOM.
var API_TOKEN_KEY = 'understudy.apiToken';
var apiToken = '';
try { apiToken = sessionStorage.getItem(API_TOKEN_KEY) || ''; } catch (e) { apiToken = ''; }
var authRefused = false;  // a call of the current poll got 401 or 403

function showTokenState() {
  document.getElementById('auth-token').placeholder =
    apiToken ? 'token in use (this tab); replace or clear' : 'API token (if required)';
}
showTokenState();

document.getElementById('auth-form').addEventListener('submit', function (ev) {
  ev.preventDefault();
  var input = document.getElementById('auth-token');
  apiToken = input.value.trim();
  input.value = '';
  try {
    if (apiToken) sessionStorage.setItem(API_TOKEN_KEY, apiToken);
    else sessionStorage.removeItem(API_TOKEN_KEY);
  } catch (e) { /* storage disabled: keep it in memory only */ }
  showTokenState();
  poll();
});

function getJson(path) {
  var headers = {Accept: 'application/json'};
  if (apiToken) headers.Authorization = 'Bearer ' + apiToken;
  return fetch(path, {headers: headers, cache: 'no-store'}).then(function (res) {
    if (res.status === 401 || res.status === 403) authRefused = true;
    return res.text().then(function (body) {
      var data = null;
      try { data = body ? JSON.parse(body) : null; } catch (e) { data = null; }
      if (!res.ok) {
        var msg = data && f(data, 'error') ? s(f(data, 'error'), 'message') : '';
        throw new Error('HTTP ' + res.status + (msg ? ': ' + msg : ''));
      }
      return data || {};
    });
  });
}

var polling = false;
var pollAgain = false;  // asked for while a poll was running (a new token)
var timer = null;
function poll() {
  if (polling) { pollAgain = true; return; }
  clearTimeout(timer);  // one chain of polls, however poll() was called
  polling = true;
  authRefused = false;
  var jobs = [
    getJson('v1/rollout').then(function (d) { state.rollout = d; state.rolloutError = null; },
                               function (e) { state.rollout = null; state.rolloutError = 'Rollout: ' + e.message; throw e; }),
    getJson('v1/health?since_seconds=3600').then(function (d) { state.health = arr(d, 'snapshots'); }),
    getJson('v1/decisions?limit=50').then(function (d) { state.decisions = arr(d, 'decisions'); state.errors.decisions = null; },
                                          function (e) { state.errors.decisions = 'Decisions: ' + e.message; throw e; }),
    getJson('v1/comparisons?limit=20&verdict=major_diff').then(function (d) { state.diffs = arr(d, 'comparisons'); state.errors.diffs = null; },
                                                               function (e) { state.errors.diffs = 'Comparisons: ' + e.message; throw e; })
  ];
  Promise.all(jobs.map(function (p) { return p.then(function () { return null; }, function (e) { return e; }); }))
    .then(function (errs) {
      var failed = errs.filter(Boolean);
      var st = document.getElementById('status');
      st.textContent = (authRefused ? (apiToken ? 'token refused: enter the admin or a read-only token · '
                                                : 'the admin API needs a token: enter it above · ') : '') +
                       (failed.length ? failed.length + ' of 4 requests failed (' + failed[0].message + ') · ' : '') +
                       'updated ' + fmtClock(Date.now()) + 'Z · every ' + intervalMs / 1000 + 's';
      st.className = failed.length === jobs.length || authRefused ? 'bad' : '';
      render();
    })
    .then(next, function (e) { window.__usReportError(e); next(); });
}
function next() {
  polling = false;
  if (pollAgain) { pollAgain = false; poll(); return; }
  timer = setTimeout(poll, intervalMs);
}

// ------------------------------------------------------------ rollback --
var TOKEN_KEY = 'understudy.adminToken';
var token = '';
try { token = sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { token = ''; }
if (token) { document.getElementById('rb-token').value = token; document.getElementById('rb-remember').checked = true; }

document.getElementById('rb-form').addEventListener('submit', function (ev) {
  ev.preventDefault();
  var result = document.getElementById('rb-result');
  var reason = document.getElementById('rb-reason').value.trim();
  var actor = document.getElementById('rb-actor').value.trim() || 'dashboard';
  token = document.getElementById('rb-token').value;
  try {
    if (document.getElementById('rb-remember').checked && token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch (e) { /* storage disabled: keep it in memory only */ }
  // No admin token typed here: try the page's token (it may be the admin one).
  if (!token) token = apiToken;
  if (!reason) { result.className = 'bad'; result.textContent = 'A reason is required.'; return; }
  if (!window.confirm('Roll back: send all traffic to production?\nReason: ' + reason)) return;
  var button = document.getElementById('rb-button');
  button.disabled = true;
  var headers = {'Content-Type': 'application/json'};
  if (token) headers.Authorization = 'Bearer ' + token;
  fetch('v1/rollout/rollback', {method: 'POST', headers: headers, body: JSON.stringify({actor: actor, reason: reason})})
    .then(function (res) {
      return res.text().then(function (body) {
        var data = null;
        try { data = JSON.parse(body); } catch (e) { data = null; }
        if (res.ok) {
          result.className = 'ok';
          result.textContent = 'Rolled back: ' + s(f(data, 'decision'), 'reason');
        } else {
          result.className = 'bad';
          var err = data && f(data, 'error');
          result.textContent = 'Rollback refused (HTTP ' + res.status + ')' + (err ? ': ' + s(err, 'message') : '') +
            (res.status === 401 ? ' — check the admin token.' :
             res.status === 403 ? ' — a read-only token cannot roll back; enter the admin token.' : '');
        }
      });
    }, function (e) { result.className = 'bad'; result.textContent = 'Rollback failed: ' + e.message; })
    .then(function () { button.disabled = false; poll(); });
});

render();
poll();
})();
</script>
</body>
</html>
)HTML";

}  // namespace

std::string DashboardHtml() { return kDashboardHtml; }

}  // namespace understudy::report
