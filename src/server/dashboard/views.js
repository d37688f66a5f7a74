// The dashboard's overview and lists. Each view builds its card once
// (filters keep their focus) and returns the refresh that fills it; every
// list is one page read from the server, filtered and counted there, and
// the filters and page live in the URL.
'use strict';
import { bulkKill, bulkPilots, payloadButtons, payloadCanBeKilled, pilotActions, pilotButtons } from './actions.js';
import { PAGE, ago, api, badge, coreHours, duration, el, fill, go, href, int, link, pageOf, pager, pct, sortable, table, truncCell } from './lib.js';
import { chart } from './chart.js';

var PAYLOAD_STATES = ['queued', 'assigned', 'running', 'done', 'failed', 'cancelled'];
var PILOT_STATES = ['submitted', 'booting', 'running', 'draining', 'halting', 'stalled', 'error', 'halted'];
/** Every pilot state but halted: the pilots list's default. */
var LIVE_PILOTS = PILOT_STATES.filter(function (s) { return s !== 'halted'; }).join(',');

function card(title, children) { return el('section', {}, [el('h2', { text: title })].concat(children)); }

function tile(label, value, state) {
  return el('div', { className: 'tile' + (state ? ' tile-' + state : ''), 'data-tile': label }, [
    el('span', { className: 'tile-value', text: value }),
    el('span', { className: 'tile-label', text: label }),
  ]);
}

/** The overview: totals, cores, pilots, queues beside their shares, instances when a director runs, the chart. */
export function overview(root) {
  var payloads = el('div', { className: 'tiles', id: 'payload-totals' });
  var pilots = el('div', { className: 'tiles', id: 'pilot-totals' });
  var queues = table('queues', ['Group', 'Queued', 'Oldest waits', 'Target share', 'Got (last hour)', 'Core-hours (last hour)']);
  var instancesCard = card('Instances by endpoint', [table('instances', ['Endpoint', 'State', 'Instances'])]);
  instancesCard.hidden = true;
  var chartBox = el('div', { id: 'chart' });
  root.append(
    card('Payloads', [payloads]),
    card('Pilots and cores', [pilots]),
    card('Queues and fair share', [queues]),
    instancesCard,
    card('Running cores by group, last 30 minutes', [chartBox]),
  );
  return function () {
    return Promise.all([api('GET', '/v1/overview'), api('GET', '/v1/usage?minutes=30&stepSec=15')]).then(function (r) {
      var o = r[0].data;
      var n = function (s) { return o.payloads[s] || 0; };
      payloads.replaceChildren.apply(payloads, PAYLOAD_STATES.filter(function (s) { return s !== 'assigned'; }).map(function (s) {
        var t = tile(s, int(n(s) + (s === 'running' ? n('assigned') : 0)), s);
        var a = el('a', { href: href('payloads', { state: s }), className: 'tile-link' }, [t]);
        return a;
      }).concat([tile('evicted attempts', int(o.evictedAttempts), 'evicted')]));
      var p = function (s) { return o.pilots[s] || 0; };
      pilots.replaceChildren(
        tile('cores in use', int(o.cores.used) + ' / ' + int(o.cores.total)),
        tile('cores free', int(o.cores.free)),
        el('a', { href: href('pilots', {}), className: 'tile-link' }, [tile('pilots live', int(PILOT_STATES.reduce(function (s, st) { return st === 'halted' ? s : s + p(st); }, 0)))]),
        tile('pilots running', int(p('running')), 'running'),
        tile('pilots draining or halting', int(p('draining') + p('halting')), 'draining'),
        el('a', { href: href('pilots', { state: 'stalled' }), className: 'tile-link' }, [tile('pilots stalled', int(p('stalled')), p('stalled') ? 'stalled' : '')]),
        el('a', { href: href('pilots', { state: 'halted' }), className: 'tile-link' }, [tile('pilots halted', int(p('halted')))]),
      );
      fill(queues.querySelector('table'), o.groups.map(function (g) {
        return el('tr', { 'data-group-row': g.group }, [
          truncCell(g.group),
          el('td', { className: 'num' }, [el('a', { href: href('payloads', { state: 'queued', group: g.group }), text: int(g.queued) })]),
          el('td', { className: 'num', text: g.oldestQueuedAt === null ? '-' : duration((o.at - g.oldestQueuedAt) / 1000) }),
          el('td', { className: 'num', text: pct(g.target) }),
          el('td', { className: 'num' + (g.lastHour < g.target / 2 && g.queued > 0 ? ' behind' : ''), text: pct(g.lastHour) }),
          el('td', { className: 'num', text: coreHours(g.lastHourCoreSec) }),
        ]);
      }), 'no groups yet: nothing queued or run');
      instancesCard.hidden = o.instances.length === 0;
      fill(instancesCard.querySelector('table'), o.instances.map(function (i) {
        return el('tr', {}, [truncCell(i.endpoint), el('td', {}, [badge(i.state)]),
          el('td', { className: 'num' }, [el('a', { href: href('instances', { endpoint: i.endpoint, state: i.state }), text: int(i.count) })])]);
      }), 'none');
      chart(chartBox, r[1].data);
    });
  };
}

function paramsOf(q, keys) {
  var out = {};
  keys.forEach(function (k) { out[k] = q.get(k) || ''; });
  return out;
}

function coresText(p) {
  var c = p.cores;
  var asked = c.wholeNode ? 'whole' : c.min === c.max ? String(c.min) : c.min + '-' + c.max;
  return asked + (p.allocatedCores === null ? '' : ' → ' + p.allocatedCores);
}

/**
 * A selection of rows for a bulk action: a checkbox on each row the action
 * applies to, and a bar naming how many are chosen with the actions'
 * buttons. It keeps the rows' latest data, and drops those that no longer apply.
 */
function selection(kind, applies, buttons) {
  var chosen = new Map();
  var bar = el('div', { className: 'bulk', id: kind + '-bulk', hidden: true });
  function clear() {
    chosen.clear();
    bar.parentNode && bar.parentNode.querySelectorAll('input[data-select]').forEach(function (c) { c.checked = false; });
    render();
  }
  function render() {
    var list = Array.from(chosen.values());
    bar.hidden = list.length === 0;
    bar.replaceChildren.apply(bar, [el('span', { text: list.length + ' selected' })].concat(
      buttons(list).map(function (b) {
        return el('button', { type: 'button', className: b.danger ? 'danger' : '', 'data-bulk': b.action, text: b.label + ' ' + list.length,
          onclick: function () { b.run(list).then(function (sent) { if (sent) clear(); }); } });
      }),
      [el('button', { type: 'button', 'data-bulk': 'clear', text: 'Clear', onclick: clear })]));
  }
  return {
    bar: bar,
    /** The checkbox cell of `row` (empty when no bulk action applies to it). */
    cell: function (row) {
      if (!applies(row)) { chosen.delete(row.id); return el('td', { className: 'select' }); }
      if (chosen.has(row.id)) chosen.set(row.id, row);
      var c = el('input', { type: 'checkbox', 'data-select': String(row.id), 'aria-label': 'select ' + kind + ' ' + row.id, checked: chosen.has(row.id) });
      c.addEventListener('change', function () { if (c.checked) chosen.set(row.id, row); else chosen.delete(row.id); render(); });
      return el('td', { className: 'select' }, [c]);
    },
    render: render,
  };
}

/** One payload's row in a list: its id links to its detail; with a selection, a checkbox first. */
export function payloadRow(p, sel) {
  return el('tr', { 'data-payload-row': String(p.id) }, (sel ? [sel.cell(p)] : []).concat([
    el('td', { className: 'num' }, [link('payload', p.id)]),
    el('td', { className: 'actions' }, payloadButtons(p)),
    truncCell(p.name),
    truncCell(p.group, 'narrow'),
    el('td', {}, [badge(p.state)]),
    el('td', { text: coresText(p) }),
    el('td', { className: 'num' }, [p.pilotId === null ? '-' : link('pilot', p.pilotId)]),
    el('td', { text: p.exitCode !== null ? String(p.exitCode) : p.signal || '-' }),
    el('td', { className: 'num', text: p.evictions ? p.attempts + ' (' + p.evictions + ' evicted)' : String(p.attempts) }),
  ]));
}

/** The payload headers, for any table of payload rows. */
export var PAYLOAD_HEADERS = ['ID', '', 'Name', 'Group', 'State', 'Cores', 'Pilot', 'Exit', 'Attempts'];
/** The server's sort key of each payload header (null: not sortable). */
var PAYLOAD_SORTS = ['id', null, 'name', 'group', 'state', 'cores', 'pilot', 'exit', 'attempts'];

/** Payloads: filters by state, group, pilot and name, newest or oldest first, 50 a page. */
export function payloads(root, r) {
  var params = paramsOf(r.q, ['state', 'group', 'pilot', 'name', 'order', 'sort']);
  var page = pageOf(r.q);
  var error = el('p', { className: 'error', role: 'alert', id: 'filter-error' });
  var state = el('select', { name: 'state', id: 'f-state', 'aria-label': 'state' }, [el('option', { value: '', text: 'any state' })].concat(
    PAYLOAD_STATES.map(function (s) { return el('option', { value: s, text: s, selected: s === params.state }); })));
  var order = el('select', { name: 'order', id: 'f-order', 'aria-label': 'order' }, [
    el('option', { value: '', text: 'newest first' }), el('option', { value: 'oldest', text: 'oldest first', selected: params.order === 'oldest' })]);
  var group = el('input', { name: 'group', id: 'f-group', placeholder: 'group', value: params.group, maxlength: '100', 'aria-label': 'group' });
  var pilot = el('input', { name: 'pilot', id: 'f-pilot', placeholder: 'pilot id', value: params.pilot, inputmode: 'numeric', 'aria-label': 'pilot' });
  var name = el('input', { name: 'name', id: 'f-name', placeholder: 'name contains', value: params.name, maxlength: '200', 'aria-label': 'name' });
  var form = el('form', { className: 'filters', id: 'payload-filters' }, [state, group, pilot, name, order, el('button', { type: 'submit', text: 'Filter' }), error]);
  var apply = function (ev) {
    if (ev) ev.preventDefault();
    // the order chosen replaces a column's sort
    var v = { state: state.value, group: group.value.trim(), pilot: pilot.value.trim(), name: name.value, order: order.value, sort: ev && ev.target === order ? '' : params.sort };
    if (v.pilot && !/^[1-9][0-9]{0,14}$/.test(v.pilot)) { error.textContent = 'Pilot must be a pilot id (digits), not "' + v.pilot + '".'; return; }
    go('payloads', v);
  };
  form.addEventListener('submit', apply);
  state.addEventListener('change', apply);
  order.addEventListener('change', apply);
  var pagerBox = el('div', { className: 'pager', id: 'payloads-pager' });
  var list = table('payloads', [''].concat(PAYLOAD_HEADERS));
  sortable(list.querySelector('table'), [null].concat(PAYLOAD_SORTS), params.sort, function (next) {
    go('payloads', Object.assign({}, params, { sort: next, order: '', page: '' }));
  });
  var sel = selection('payload', payloadCanBeKilled, function () { return [{ action: 'kill', label: 'Kill', danger: true, run: bulkKill }]; });
  root.append(card('Payloads', [form, pagerBox, sel.bar, list]));
  return function () {
    var q = new URLSearchParams();
    Object.keys(params).forEach(function (k) { if (params[k] && !(k === 'order' && params.sort)) q.set(k, params[k]); });
    q.set('limit', String(PAGE));
    q.set('offset', String((page - 1) * PAGE));
    return api('GET', '/v1/payloads?' + q.toString()).then(function (res) {
      fill(list.querySelector('table'), res.data.map(function (p) { return payloadRow(p, sel); }), 'no payloads match');
      sel.render();
      pager(pagerBox, 'payloads', params, page, res.data.length, res.total);
    });
  };
}

/** One pilot's row: its id links to its detail; its actions are those that apply. */
function pilotRow(p, sel) {
  return el('tr', { 'data-pilot-row': String(p.id) }, [
    sel.cell(p),
    el('td', { className: 'num' }, [link('pilot', p.id)]),
    el('td', { className: 'actions' }, pilotButtons(p)),
    truncCell(p.hostname),
    el('td', {}, [badge(p.state)]),
    el('td', { className: 'num', text: p.coresUsed + ' / ' + p.cores }),
    el('td', { text: ago(p.lastHeartbeatAt) }),
    truncCell(p.shutdownCode === null ? '-' : p.shutdownCode + ' ' + (p.shutdownMessage || '')),
  ]);
}

/** Pilots: halted ones hidden unless asked for, 50 a page. */
export function pilots(root, r) {
  var params = paramsOf(r.q, ['state', 'sort']);
  var page = pageOf(r.q);
  var select = el('select', { id: 'f-pilot-state', 'aria-label': 'state' }, [el('option', { value: '', text: 'live (halted hidden)' }), el('option', { value: 'all', text: 'all, halted too', selected: params.state === 'all' })].concat(
    PILOT_STATES.map(function (s) { return el('option', { value: s, text: s, selected: s === params.state }); })));
  select.addEventListener('change', function () { go('pilots', { state: select.value, sort: params.sort }); });
  var pagerBox = el('div', { className: 'pager', id: 'pilots-pager' });
  var list = table('pilots', ['', 'ID', '', 'Host', 'State', 'Cores used', 'Last heartbeat', 'Shutdown']);
  sortable(list.querySelector('table'), [null, 'id', null, 'host', 'state', 'cores', 'heartbeat', 'shutdown'], params.sort, function (next) {
    go('pilots', { state: params.state, sort: next });
  });
  var sel = selection('pilot', function (p) { return pilotActions(p).length > 0; }, function (chosen) {
    var can = function (type) { return chosen.every(function (p) { return pilotActions(p).indexOf(type) >= 0; }); };
    return (can('drain') ? [{ action: 'drain', label: 'Drain', run: function (l) { return bulkPilots('drain', l); } }] : [])
      .concat([{ action: 'halt', label: 'Halt', danger: true, run: function (l) { return bulkPilots('halt', l); } }]);
  });
  root.append(card('Pilots', [el('div', { className: 'filters' }, [select]), pagerBox, sel.bar, list]));
  return function () {
    var q = new URLSearchParams();
    if (params.state !== 'all') q.set('state', params.state || LIVE_PILOTS);
    if (params.sort) q.set('sort', params.sort);
    q.set('limit', String(PAGE));
    q.set('offset', String((page - 1) * PAGE));
    return api('GET', '/v1/pilots?' + q.toString()).then(function (res) {
      fill(list.querySelector('table'), res.data.map(function (p) { return pilotRow(p, sel); }), params.state ? 'no pilots in that state' : 'no live pilots');
      sel.render();
      pager(pagerBox, 'pilots', params, page, res.data.length, res.total);
    });
  };
}

var SUMS = ['coreSec', 'doneCoreSec', 'failedCoreSec', 'cancelledCoreSec', 'evictedCoreSec', 'wallSec', 'done', 'failed', 'cancelled', 'evicted'];
var HOURS = { coreSec: 1, doneCoreSec: 1, failedCoreSec: 1, cancelledCoreSec: 1, evictedCoreSec: 1, wallSec: 1 };

/** Sum accounting rows by `keyOf` (day and group, or group). Pure. */
export function sumBy(entries, keyOf) {
  var by = {};
  var order = [];
  entries.forEach(function (e) {
    var k = keyOf(e);
    if (!by[k]) { by[k] = { day: e.day, group: e.group }; order.push(k); SUMS.forEach(function (s) { by[k][s] = 0; }); }
    SUMS.forEach(function (s) { by[k][s] += e[s] || 0; });
  });
  return order.map(function (k) { return by[k]; });
}

/** Accounting: totals by group since the start, or by day and group between two dates. */
export function accounting(root, r) {
  var params = paramsOf(r.q, ['from', 'to']);
  var from = el('input', { type: 'date', id: 'f-from', value: params.from, 'aria-label': 'from' });
  var to = el('input', { type: 'date', id: 'f-to', value: params.to, 'aria-label': 'to' });
  var form = el('form', { className: 'filters', id: 'accounting-filters' }, [
    el('label', {}, ['From ', from]), el('label', {}, ['to ', to]), el('button', { type: 'submit', text: 'Show by day' }),
    el('a', { className: 'button', href: href('accounting', {}), text: 'Totals since the start' }),
  ]);
  form.addEventListener('submit', function (ev) { ev.preventDefault(); go('accounting', { from: from.value, to: to.value }); });
  var byDay = Boolean(params.from || params.to);
  var list = table('accounting', (byDay ? ['Day'] : []).concat(['Group', 'Core-hours', 'done', 'failed', 'cancelled', 'evicted', 'Wall hours', 'Done', 'Failed', 'Cancelled', 'Evicted attempts']));
  root.append(card(byDay ? 'Accounting by day (UTC)' : 'Accounting since the start', [form, list]));
  return function () {
    var q = byDay ? '?' + new URLSearchParams(Object.entries(params).filter(function (e) { return e[1]; })).toString() : '?by=group';
    return api('GET', '/v1/accounting' + q).then(function (res) {
      var rows = byDay ? sumBy(res.data, function (e) { return e.day + '\u0000' + e.group; }) : res.data;
      fill(list.querySelector('table'), rows.map(function (g) {
        return el('tr', { 'data-group-row': g.group }, (byDay ? [el('td', { text: g.day })] : []).concat([truncCell(g.group)]).concat(SUMS.map(function (k) {
          return el('td', { className: 'num', 'data-field': k, text: HOURS[k] ? coreHours(g[k]) : int(g[k]) });
        })));
      }), 'nothing has ended in that time');
    });
  };
}
