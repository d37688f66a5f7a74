// The vmpilot dashboard: plain browser JavaScript, no external assets. It
// signs in with the admin token (kept in sessionStorage, sent as a Bearer
// header), polls the admin API every two seconds and offers drain, halt and
// kill buttons. Pilots and payloads come one page each (the newest 200): the
// server pages its listings, so a large site costs it no more per poll.
'use strict';
(function () {
  var TOKEN_KEY = 'vmpilot-admin-token';
  var POLL_MS = 2000;
  var PAGE = 200;
  var COLOURS = ['#2457c5', '#e07b00', '#067647', '#b42318', '#7a5af8', '#0e9384', '#c11574', '#667085'];
  var timer = null;
  var $ = function (id) { return document.getElementById(id); };

  function token() { return sessionStorage.getItem(TOKEN_KEY); }

  function api(method, path, body, withMore) {
    var headers = { authorization: 'Bearer ' + token() };
    if (body !== undefined) headers['content-type'] = 'application/json';
    return fetch(path, { method: method, headers: headers, body: body === undefined ? undefined : JSON.stringify(body) })
      .then(function (res) {
        return res.text().then(function (text) {
          var data = text ? JSON.parse(text) : null;
          if (res.status === 401) { signOut('The token was refused: ' + (data && data.error ? data.error.message : res.status)); throw new Error('unauthorized'); }
          if (!res.ok) throw new Error(data && data.error ? data.error.message : 'HTTP ' + res.status);
          // a listing page says in its Link header that older rows follow
          return withMore ? { rows: data, more: /rel="?next"?/.test(res.headers.get('link') || '') } : data;
        });
      });
  }

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') e.textContent = attrs[k];
      else if (k === 'className') e.className = attrs[k];
      else if (k === 'colour') e.style.background = attrs[k]; // CSSOM: allowed by the page's CSP, unlike a style attribute
      else e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return e;
  }

  function ago(t) {
    if (t === null || t === undefined) return 'never';
    var s = Math.max(0, Math.round((Date.now() - t) / 1000));
    return s < 60 ? s + ' s ago' : s < 3600 ? Math.floor(s / 60) + ' min ago' : Math.floor(s / 3600) + ' h ago';
  }

  function stateCell(state) { return el('td', {}, [el('span', { className: 'state state-' + state, text: state })]); }

  function fill(tableId, rows, emptyText, columns) {
    var body = $(tableId).querySelector('tbody');
    body.replaceChildren();
    if (rows.length === 0) body.appendChild(el('tr', {}, [el('td', { className: 'empty', colspan: String(columns), text: emptyText })]));
    rows.forEach(function (r) { body.appendChild(r); });
  }

  function act(button, method, path, body) {
    button.disabled = true;
    api(method, path, body)
      .then(function () { setStatus('sent: ' + button.textContent.toLowerCase()); refresh(); })
      .catch(function (err) { setStatus('failed: ' + err.message, true); button.disabled = false; });
  }

  function pilotRow(p) {
    var live = p.state !== 'halted';
    var buttons = live
      ? [
          el('button', { type: 'button', 'data-action': 'drain', 'data-pilot': String(p.id), text: 'Drain' }),
          ' ',
          el('button', { type: 'button', className: 'danger', 'data-action': 'halt', 'data-pilot': String(p.id), text: 'Halt' }),
        ]
      : [];
    buttons.forEach(function (b) {
      if (typeof b === 'string') return;
      b.addEventListener('click', function () {
        var type = b.getAttribute('data-action');
        act(b, 'POST', '/v1/pilots/' + p.id + '/instructions', { type: type, reason: type + ' from the dashboard' });
      });
    });
    return el('tr', { 'data-pilot-row': String(p.id) }, [
      el('td', { className: 'num', text: String(p.id) }),
      el('td', { text: p.hostname }),
      stateCell(p.state),
      el('td', { className: 'num', text: p.coresUsed + ' / ' + p.cores }),
      el('td', { text: ago(p.lastHeartbeatAt) }),
      el('td', { text: p.shutdownCode === null ? '-' : p.shutdownCode + ' ' + (p.shutdownMessage || '') }),
      el('td', {}, buttons),
    ]);
  }

  function coresText(p) {
    var c = p.cores;
    var asked = c.wholeNode ? 'whole' : c.min === c.max ? String(c.min) : c.min + '-' + c.max;
    return asked + (p.allocatedCores === null ? '' : ' → ' + p.allocatedCores);
  }

  function payloadRow(p) {
    var cells = [
      el('td', { className: 'num', text: String(p.id) }),
      el('td', { text: p.name }),
      el('td', { text: p.group }),
      stateCell(p.state),
      el('td', { text: coresText(p) }),
      el('td', { className: 'num', text: p.pilotId === null ? '-' : String(p.pilotId) }),
      el('td', { text: p.exitCode !== null ? String(p.exitCode) : p.signal || '-' }),
      el('td', { className: 'num', text: p.evictions ? p.attempts + ' (' + p.evictions + ' evicted)' : String(p.attempts) }),
    ];
    var actions = el('td');
    if (p.state === 'queued' || p.state === 'assigned' || p.state === 'running') {
      var b = el('button', { type: 'button', className: 'danger', 'data-action': 'kill', 'data-payload': String(p.id), text: 'Kill' });
      b.addEventListener('click', function () { act(b, 'POST', '/v1/payloads/' + p.id + '/kill', { reason: 'killed from the dashboard' }); });
      actions.appendChild(b);
    }
    cells.push(actions);
    return el('tr', { 'data-payload-row': String(p.id) }, cells);
  }

  // core-seconds in total and by how attempts ended, then payloads done, failed, cancelled and evicted attempts
  var HOURS = ['coreSec', 'doneCoreSec', 'failedCoreSec', 'cancelledCoreSec', 'evictedCoreSec', 'wallSec'];
  var COUNTS = ['done', 'failed', 'cancelled', 'evicted'];
  function accountingRows(entries) {
    var by = {};
    entries.forEach(function (e) {
      var g = (by[e.group] = by[e.group] || {});
      HOURS.concat(COUNTS).forEach(function (k) { g[k] = (g[k] || 0) + (e[k] || 0); });
    });
    return Object.keys(by).sort().map(function (group) {
      var g = by[group];
      return el('tr', { 'data-group-row': group }, [el('td', { text: group })]
        .concat(HOURS.map(function (k) { return el('td', { className: 'num', 'data-field': k, text: (g[k] / 3600).toFixed(3) }); }))
        .concat(COUNTS.map(function (k) { return el('td', { className: 'num', 'data-field': k, text: String(g[k]) }); })));
    });
  }

  var SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    return e;
  }

  // A stacked area chart of running cores per group over the last 30 minutes.
  function chart(timeline) {
    var box = $('chart');
    box.replaceChildren();
    var groups = Object.keys(timeline.groups).sort();
    var n = groups.length ? timeline.groups[groups[0]].length : 0;
    var W = 800, H = 200, L = 40, B = 20;
    var root = svg('svg', { viewBox: '0 0 ' + W + ' ' + (H + B), role: 'img', 'aria-label': 'running cores by group' });
    var totals = [];
    for (var i = 0; i < n; i++) totals.push(groups.reduce(function (s, g) { return s + (timeline.groups[g][i] || 0); }, 0));
    var max = Math.max(1, Math.ceil(Math.max.apply(null, totals.concat([0]))));
    var x = function (i) { return L + (n <= 1 ? 0 : (i * (W - L)) / (n - 1)); };
    var y = function (v) { return H - (v / max) * (H - 10); };
    [0, max / 2, max].forEach(function (v) {
      root.appendChild(svg('line', { x1: L, x2: W, y1: y(v), y2: y(v), stroke: '#d9dee7' }));
      var t = svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', 'font-size': 11, fill: '#667085' });
      t.textContent = String(Math.round(v * 10) / 10);
      root.appendChild(t);
    });
    var base = new Array(n).fill(0);
    groups.forEach(function (g, gi) {
      var top = base.map(function (b, i) { return b + (timeline.groups[g][i] || 0); });
      var pts = top.map(function (v, i) { return x(i) + ',' + y(v); });
      var back = base.map(function (v, i) { return x(i) + ',' + y(v); }).reverse();
      root.appendChild(svg('polygon', { points: pts.concat(back).join(' '), fill: COLOURS[gi % COLOURS.length], 'fill-opacity': 0.75, 'data-group': g }));
      base = top;
    });
    var label = svg('text', { x: W, y: H + 15, 'text-anchor': 'end', 'font-size': 11, fill: '#667085' });
    label.textContent = 'now';
    root.appendChild(label);
    var first = svg('text', { x: L, y: H + 15, 'font-size': 11, fill: '#667085' });
    first.textContent = '-' + Math.round((n * timeline.stepSec) / 60) + ' min';
    root.appendChild(first);
    box.appendChild(root);
    var legend = el('div', { className: 'legend' });
    if (groups.length === 0) legend.appendChild(el('span', { className: 'empty', text: 'nothing ran in the last 30 minutes' }));
    groups.forEach(function (g, gi) {
      legend.appendChild(el('span', {}, [el('i', { colour: COLOURS[gi % COLOURS.length] }), g]));
    });
    box.appendChild(legend);
  }

  function setStatus(text, bad) {
    $('status').textContent = text;
    $('status').className = bad ? 'error' : '';
  }

  function refresh() {
    return Promise.all([
      api('GET', '/v1/pilots?limit=' + PAGE, undefined, true),
      api('GET', '/v1/payloads?limit=' + PAGE, undefined, true),
      api('GET', '/v1/accounting?by=group'),
      api('GET', '/v1/usage?minutes=30&stepSec=15'),
    ])
      .then(function (r) {
        // newest first, as the server lists them
        fill('pilots', r[0].rows.map(pilotRow), 'no pilots yet', 7);
        fill('payloads', r[1].rows.map(payloadRow), 'no payloads', 9);
        $('pilots-more').hidden = !r[0].more;
        $('payloads-more').hidden = !r[1].more;
        fill('accounting', accountingRows(r[2]), 'nothing has ended yet', 11);
        chart(r[3]);
        setStatus('updated ' + new Date().toLocaleTimeString());
      })
      .catch(function (err) { if (err.message !== 'unauthorized') setStatus('update failed: ' + err.message, true); });
  }

  function show(signedIn) {
    $('signin').hidden = signedIn;
    $('main').hidden = !signedIn;
    $('signout').hidden = !signedIn;
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    if (timer) clearInterval(timer);
    timer = null;
    show(false);
    $('signin-error').textContent = message || '';
  }

  function start() {
    show(true);
    refresh();
    timer = setInterval(refresh, POLL_MS);
  }

  document.addEventListener('DOMContentLoaded', function () {
    $('signin').addEventListener('submit', function (ev) {
      ev.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, $('token').value.trim());
      $('token').value = '';
      $('signin-error').textContent = '';
      start();
    });
    $('signout').addEventListener('click', function () { signOut(''); });
    if (token()) start(); else show(false);
  });
})();
