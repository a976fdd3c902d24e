/**
 * The inspector page: one self-contained document (inline CSS and script under a per-response nonce, no CDN,
 * no font, no library). Every value from a payload reaches the DOM through `textContent` or a constant
 * attribute name; nothing is ever parsed as HTML, so `<script>`, `</textarea>` or `javascript:` in a payload
 * is only text.
 */

const STYLE = `
:root { color-scheme: light dark; --fg: #1d2330; --muted: #667085; --bg: #fff; --line: #e4e7ec; --sel: #eef4ff;
  --ok: #067647; --bad: #b42318; --warn: #b54708; --info: #175cd3; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e9ef; --muted: #98a2b3; --bg: #13161c; --line: #2a303b;
  --sel: #1d2a44; --ok: #47cd89; --bad: #f97066; --warn: #fdb022; --info: #84adff; } }
* { box-sizing: border-box; }
body { margin: 0; font: 13px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 8px; align-items: center; padding: 8px 12px; border-bottom: 1px solid var(--line);
  flex-wrap: wrap; }
header h1 { font-size: 15px; margin: 0 12px 0 0; }
header .live { color: var(--muted); margin-left: auto; }
select, input, button { font: inherit; color: inherit; background: var(--bg); border: 1px solid var(--line);
  border-radius: 4px; padding: 3px 6px; }
button { cursor: pointer; }
main { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); height: calc(100vh - 46px); }
#list { overflow: auto; border-right: 1px solid var(--line); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid var(--line); white-space: nowrap;
  overflow: hidden; text-overflow: ellipsis; max-width: 150px; }
td.wide { max-width: 200px; }
header select { max-width: 200px; }
th { position: sticky; top: 0; background: var(--bg); color: var(--muted); font-weight: 600; }
#rows tr { cursor: pointer; }
#rows tr:hover, #rows tr.selected { background: var(--sel); }
.mono, td.mono { font-family: ui-monospace, monospace; font-size: 12px; }
.v { font-weight: 600; }
.v-stored, .v-verify-answered { color: var(--ok); }
.v-rejected, .v-failed, .v-verify-refused { color: var(--bad); }
.v-quarantined { color: var(--warn); }
.v-not-found, .v-method-not-allowed { color: var(--muted); }
#detail { overflow: auto; padding: 10px 14px; }
#detail h2 { font-size: 14px; margin: 0 0 6px; }
#detail h3 { font-size: 12px; text-transform: uppercase; color: var(--muted); margin: 14px 0 4px; }
pre { margin: 0; padding: 8px; background: var(--sel); border-radius: 4px; overflow: auto; max-height: 50vh;
  white-space: pre-wrap; word-break: break-all; font: 12px/1.4 ui-monospace, monospace; }
.reason { color: var(--bad); font-weight: 600; }
.muted { color: var(--muted); }
.ok { color: var(--ok); }
#webhook-health p { margin: 2px 0 10px; font: 12px/1.4 ui-monospace, monospace; }
.actions { display: flex; gap: 6px; margin: 8px 0; flex-wrap: wrap; }
.more { padding: 8px; color: var(--muted); }
[hidden] { display: none !important; }
.tabs button[aria-pressed="true"] { background: var(--sel); font-weight: 600; }
#fleet { overflow: auto; height: calc(100vh - 46px); padding: 10px 14px; }
#fleet h2 { font-size: 14px; margin: 0 0 6px; }
#chart { display: block; width: 100%; max-width: 960px; height: 160px; margin-bottom: 14px; }
#chart .bar { fill: var(--info); }
#chart .axis { stroke: var(--line); }
#chart text { fill: var(--muted); font-size: 10px; }
.silent { color: var(--warn); font-weight: 600; }
`;

/** The page's script: plain DOM, no template literals (it lives inside one). */
const SCRIPT = String.raw`
'use strict';
var VERDICTS = ['stored', 'rejected', 'quarantined', 'verify-answered', 'verify-refused', 'failed', 'not-found',
  'method-not-allowed'];
var MAX_ROWS = 500;
var entries = [];
var ids = new Set();
var selected = null;
var pending = false;

function el(tag, cls, text) {
  var e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function $(id) { return document.getElementById(id); }
function time(iso) { var d = new Date(iso); return isNaN(d) ? String(iso) : d.toLocaleTimeString(); }

function add(list) {
  var fresh = list.filter(function (e) { return !ids.has(e.id); });
  fresh.forEach(function (e) { ids.add(e.id); });
  if (fresh.length === 1 && (!entries.length || fresh[0].at >= entries[0].at)) entries.unshift(fresh[0]);
  else {
    entries = fresh.concat(entries);
    entries.sort(function (a, b) { return a.at < b.at ? 1 : a.at > b.at ? -1 : 0; });
  }
  schedule();
}
function schedule() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(function () { pending = false; render(); });
}
function options(select, values, label) {
  var current = select.value;
  select.replaceChildren(el('option', null, label));
  select.firstChild.value = '';
  values.forEach(function (v) { var o = el('option', null, v); o.value = v; select.append(o); });
  select.value = values.indexOf(current) >= 0 ? current : '';
}
function distinct(key) {
  var s = new Set();
  entries.forEach(function (e) { if (e[key]) s.add(e[key]); });
  return Array.from(s).sort();
}
function render() {
  options($('f-type'), distinct('eventType'), 'all event types');
  options($('f-vehicle'), distinct('vehicleId'), 'all vehicles');
  var fv = $('f-verdict').value, ft = $('f-type').value, fveh = $('f-vehicle').value;
  var q = $('f-text').value.toLowerCase();
  var shown = entries.filter(function (e) {
    if (fv && e.verdict !== fv) return false;
    if (ft && e.eventType !== ft) return false;
    if (fveh && e.vehicleId !== fveh) return false;
    if (q) {
      var hay = [e.eventId, e.vehicleId, e.eventType, e.reason, e.mode, e.path, e.preview, e.status].join(' ');
      if (hay.toLowerCase().indexOf(q) < 0) return false;
    }
    return true;
  });
  var rows = document.createDocumentFragment();
  shown.slice(0, MAX_ROWS).forEach(function (e) {
    var tr = el('tr');
    tr.dataset.id = e.id;
    if (e.id === selected) tr.className = 'selected';
    tr.append(
      el('td', 'mono', time(e.at)),
      el('td', 'v v-' + e.verdict, e.verdict + (e.replayOf ? ' (replay)' : '')),
      el('td', 'mono', e.status),
      el('td', e.reason ? 'reason wide' : 'muted wide', e.reason || e.preview),
      el('td', null, e.eventType || '—'),
      el('td', 'mono', e.eventId || '—'),
      el('td', 'mono', e.vehicleId || '—'),
      el('td', null, e.mode || '—'),
      el('td', 'mono', e.ms + ' ms')
    );
    tr.addEventListener('click', function () { open(e.id); });
    rows.append(tr);
  });
  $('rows').replaceChildren(rows);
  if (shown.length && !performance.getEntriesByName('inspector-rows').length) performance.mark('inspector-rows');
  $('more').textContent = shown.length > MAX_ROWS
    ? (shown.length - MAX_ROWS) + ' more match: narrow the filters to see them'
    : shown.length === 0 ? 'No requests yet: send one to the callback URL.' : '';
  $('count').textContent = shown.length + ' of ' + entries.length;
}

function table(head, rows) {
  var t = el('table'), h = el('tr');
  head.forEach(function (c) { h.append(el('th', null, c)); });
  t.append(h);
  rows.forEach(function (r) {
    var tr = el('tr');
    r.forEach(function (c) { tr.append(el('td', 'mono', c)); });
    t.append(tr);
  });
  return t;
}
function signalRows(json) {
  var signals = json && json.data && Array.isArray(json.data.signals) ? json.data.signals : [];
  return signals.map(function (s) {
    var body = s && typeof s.body === 'object' && s.body ? s.body : {};
    var value = 'value' in body ? body.value : body;
    var meta = s && s.meta ? s.meta : {};
    var at = typeof meta.oemUpdatedAt === 'number' ? new Date(meta.oemUpdatedAt).toISOString() : meta.oemUpdatedAt;
    return [s && s.code, typeof value === 'object' ? JSON.stringify(value) : value, body.unit || '', at || ''];
  });
}
function copyButton(label, text) {
  var b = el('button', null, label);
  b.addEventListener('click', function () {
    if (navigator.clipboard) navigator.clipboard.writeText(text).then(function () { b.textContent = 'Copied'; },
      function () { b.textContent = 'Select the text below'; });
  });
  return b;
}
function open(id) {
  selected = id;
  schedule();
  fetch('/_inspector/requests/' + encodeURIComponent(id)).then(function (r) {
    if (!r.ok) throw new Error('HTTP ' + r.status);
    return r.json();
  }).then(function (d) { if (selected === id) showDetail(d.entry, d.commands); })
    .catch(function (err) { $('detail').replaceChildren(el('p', 'reason', 'Could not load the entry: ' + err.message)); });
}
function showDetail(e, commands) {
  var d = $('detail');
  var parts = [el('h2', 'v v-' + e.verdict, e.verdict + ' · HTTP ' + e.status)];
  parts.push(el('div', 'muted', e.at + ' · ' + e.method + ' ' + e.path + ' · ' + e.ms + ' ms · ' + e.bodyBytes + ' bytes'));
  if (e.replayOf) parts.push(el('div', 'muted', 'replay of ' + e.replayOf));
  if (e.reason) parts.push(el('div', 'reason', e.reason));
  var actions = el('div', 'actions');
  var replay = el('button', null, 'Replay');
  replay.id = 'replay';
  replay.addEventListener('click', function () {
    replay.disabled = true;
    fetch('/_inspector/requests/' + encodeURIComponent(e.id) + '/replay', { method: 'POST', headers: { 'x-inspector': 'replay' } })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(function (d2) { add([d2.entry]); open(d2.entry.id); })
      .catch(function (err) { replay.disabled = false; replay.textContent = 'Replay failed: ' + err.message; });
  });
  actions.append(replay, copyButton('Copy as curl', commands.curl));
  if (commands.sendEvent) actions.append(copyButton('Copy send-event', commands.sendEvent));
  parts.push(actions);
  parts.push(el('h3', null, 'Request headers'));
  parts.push(table(['header', 'value'], Object.keys(e.headers).map(function (k) { return [k, e.headers[k]]; })));
  var json = null;
  if (e.bodyEncoding === 'utf8') { try { json = JSON.parse(e.body); } catch (_) { json = null; } }
  var sig = signalRows(json);
  if (sig.length) {
    parts.push(el('h3', null, 'Signals'));
    parts.push(table(['code', 'value', 'unit', 'oemUpdatedAt'], sig));
  }
  parts.push(el('h3', null, 'Body' + (json !== null ? ' (pretty-printed; Replay sends the exact bytes)' : e.bodyEncoding === 'base64' ? ' (base64: not UTF-8)' : '')));
  var body = el('pre', null, json !== null ? JSON.stringify(json, null, 2) : e.body);
  body.id = 'body';
  parts.push(body);
  parts.push(el('h3', null, 'Our response'));
  parts.push(el('pre', null, 'HTTP ' + e.response.status + '\n' + JSON.stringify(e.response.body, null, 2)));
  parts.push(el('h3', null, 'As commands'));
  parts.push(el('pre', null, commands.curl + (commands.sendEvent ? '\n\n' + commands.sendEvent : '')));
  d.replaceChildren.apply(d, parts);
}

// The fleet view: the lake read through DuckDB on each visit (npm run fleet's table) and deliveries per hour.
var SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, text) {
  var e = document.createElementNS(SVG, tag);
  Object.keys(attrs).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
  if (text !== undefined) e.textContent = String(text);
  return e;
}
function chart(hours) {
  var W = 960, H = 160, left = 36, bottom = 20, top = 8;
  var max = Math.max(1, Math.max.apply(null, hours.map(function (h) { return h.deliveries; })));
  var step = (W - left) / hours.length;
  var s = svg('svg', { id: 'chart', viewBox: '0 0 ' + W + ' ' + H, role: 'img' });
  s.append(svg('title', {}, 'Deliveries per hour, last ' + hours.length + ' hours (UTC)'));
  s.append(svg('line', { 'class': 'axis', x1: left, y1: H - bottom, x2: W, y2: H - bottom }));
  s.append(svg('text', { x: left - 4, y: top + 8, 'text-anchor': 'end' }, max));
  s.append(svg('text', { x: left - 4, y: H - bottom, 'text-anchor': 'end' }, 0));
  hours.forEach(function (h, i) {
    var x = left + i * step;
    if (h.deliveries > 0) {
      var height = Math.max(1, (H - bottom - top) * h.deliveries / max);
      var bar = svg('rect', { 'class': 'bar', x: x + 1, y: H - bottom - height, width: Math.max(1, step - 2), height: height });
      bar.append(svg('title', {}, h.hour + ':00Z · ' + h.deliveries + ' deliveries'));
      s.append(bar);
    }
    var last = i === hours.length - 1;
    if (i % 6 === 0 || last)
      s.append(svg('text', { x: last ? W : x + step / 2, y: H - 6, 'text-anchor': last ? 'end' : 'middle' },
        h.hour.slice(5, 10) + ' ' + h.hour.slice(11) + 'h'));
  });
  return s;
}
function showFleet(d) {
  var rows = d.vehicles.map(function (v) {
    return [v.vehicle_id, v.mode, [v.make, v.model].filter(Boolean).join(' ') || '—', v.last_seen, v.deliveries,
      v.headline.stateOfCharge || '—', v.headline.odometer || '—', v.headline.location || '—',
      v.open_errors.join(', ') || '—', v.silent ? 'SILENT' : 'ok'];
  });
  var t = table(['vehicle', 'mode', 'make / model', 'last delivery (UTC)', 'deliveries', 'state of charge', 'odometer',
    'location', 'open errors', 'silent?'], rows);
  t.id = 'fleet-table';
  Array.prototype.forEach.call(t.querySelectorAll('tr'), function (tr) {
    if (tr.lastChild.textContent === 'SILENT') tr.lastChild.className = 'silent';
  });
  // The webhook first: a fleet that went silent all at once is most often a webhook disabled or moved.
  var hooks = el('div', null);
  hooks.id = 'webhook-health';
  (d.webhooks || []).forEach(function (w) {
    hooks.append(el('p', w.healthy === true ? 'ok' : 'reason', w.line));
  });
  if (!d.webhooks || d.webhooks.length === 0)
    hooks.append(el('p', 'muted', 'No webhook health check yet: npm run reconcile -- --dry-run checks the webhook first.'));
  var allSilent = d.vehicles.length > 0 && d.vehicles.every(function (v) { return v.silent; });
  $('fleet-body').replaceChildren(
    el('h2', null, 'Webhook health'), hooks,
    allSilent ? el('p', 'reason', 'Every vehicle is silent: check the webhook first.') : el('span', null, ''),
    el('h2', null, 'Deliveries per hour (last ' + d.hours.length + ' hours, UTC)'), chart(d.hours),
    el('h2', null, d.vehicles.length + ' vehicles'),
    d.vehicles.length ? t : el('p', 'muted', 'No vehicles in the lake yet: deliveries reach it within the batch window.'));
}
function loadFleet() {
  $('fleet-body').replaceChildren(el('p', 'muted', 'Reading the lake…'));
  fetch('/_inspector/fleet').then(function (r) {
    return r.json().then(function (d) { if (!r.ok) throw new Error(d.error || 'HTTP ' + r.status); return d; });
  }).then(showFleet).catch(function (err) {
    $('fleet-body').replaceChildren(el('p', 'reason', err.message));
  });
}
function tab(fleet) {
  $('tab-requests').setAttribute('aria-pressed', String(!fleet));
  $('tab-fleet').setAttribute('aria-pressed', String(fleet));
  ['requests', 'f-verdict', 'f-type', 'f-vehicle', 'f-text', 'count'].forEach(function (id) { $(id).hidden = fleet; });
  $('fleet').hidden = !fleet;
  if (fleet) loadFleet();
}
$('tab-requests').addEventListener('click', function () { tab(false); });
$('tab-fleet').addEventListener('click', function () { tab(true); });
$('fleet-refresh').addEventListener('click', loadFleet);

VERDICTS.forEach(function (v) { var o = el('option', null, v); o.value = v; $('f-verdict').append(o); });
['f-verdict', 'f-type', 'f-vehicle'].forEach(function (id) { $(id).addEventListener('change', schedule); });
$('f-text').addEventListener('input', schedule);
var source = new EventSource('/_inspector/events');
source.addEventListener('request', function (m) { add([JSON.parse(m.data)]); });
source.addEventListener('open', function () { $('live').textContent = '● live'; });
source.addEventListener('error', function () { $('live').textContent = '○ reconnecting…'; });
// The newest first (a screenful at once), then the whole log for the filters.
function load(query) { return fetch('/_inspector/requests' + query).then(function (r) { return r.json(); }).then(function (d) { add(d.entries); }); }
load('?limit=' + MAX_ROWS).then(function () { return load(''); });
`;

export function pageHtml(nonce: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Smartcar webhooks · inspector</title><link rel="icon" href="data:,">
<style nonce="${nonce}">${STYLE}</style></head>
<body>
<header><h1>Webhook inspector</h1>
<span class="tabs"><button id="tab-requests" aria-pressed="true">Requests</button>
<button id="tab-fleet" aria-pressed="false">Fleet</button></span>
<select id="f-verdict" aria-label="verdict"><option value="">all verdicts</option></select>
<select id="f-type" aria-label="event type"></select>
<select id="f-vehicle" aria-label="vehicle"></select>
<input id="f-text" type="search" placeholder="search eventId, vehicle, reason, body…" size="32">
<span id="count" class="muted"></span><span id="live" class="live">○ connecting…</span></header>
<main id="requests"><section id="list"><table><thead><tr><th>time</th><th>verdict</th><th>status</th><th>reason / body</th>
<th>event type</th><th>eventId</th><th>vehicleId</th><th>mode</th><th>ms</th></tr></thead><tbody id="rows"></tbody>
</table><div id="more" class="more"></div></section>
<section id="detail"><p class="muted">Select a request to see its headers, body, signals and our answer.</p></section></main>
<section id="fleet" hidden><div class="actions"><button id="fleet-refresh">Refresh from the lake</button></div>
<div id="fleet-body"></div></section>
<script nonce="${nonce}">${SCRIPT}</script>
</body></html>`;
}
