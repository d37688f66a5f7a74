// The machines the director started (instances): a list paged and filtered
// on the server, an instance in detail with its history and its pilot, and
// Stop (drain, then discard), which says what it will do and waits for a
// confirmation. Shown when the server has endpoints; without them the view
// says that no director runs.
'use strict';
import { stopInstance } from './actions.js';
import { facts } from './detail.js';
import { PAGE, ago, api, badge, duration, el, fill, go, href, int, link, pageOf, pager, table, truncCell, when } from './lib.js';

var INSTANCE_STATES = ['requested', 'starting', 'booting', 'registered', 'halted', 'failed', 'deleted'];
/** Every state but deleted: the list's default (what may still exist at a driver). */
var LIVE_INSTANCES = INSTANCE_STATES.filter(function (s) { return s !== 'deleted'; }).join(',');

function card(title, children) { return el('section', {}, [el('h2', { text: title })].concat(children)); }

/** Stop applies to an instance whose machine may still come or run. */
export function instanceCanBeStopped(i) { return i.state !== 'halted' && i.state !== 'failed' && i.state !== 'deleted'; }

/** What an instance is for: the group it was started for, or "by hand". */
function purpose(i) { return i.manual ? 'by hand' : i.forGroup === null ? '-' : i.forGroup; }

/** Money as the cost rows show it: 0.0123 → "0.0123", whole cents when large. */
function money(v) { return v === null || v === undefined ? '-' : v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toFixed(4); }

/** The Stop button of an instance, or nothing when it has ended. */
export function instanceButtons(i) {
  if (!instanceCanBeStopped(i)) return [];
  return [el('button', {
    type: 'button', className: 'danger', 'data-action': 'stop', 'data-instance': String(i.id), text: 'Stop',
    onclick: function (ev) { ev.stopPropagation(); stopInstance(i); },
  })];
}

function instanceRow(i) {
  return el('tr', { 'data-instance-row': String(i.id) }, [
    el('td', { className: 'num' }, [link('instance', i.id)]),
    el('td', { className: 'actions' }, instanceButtons(i)),
    truncCell(i.endpoint, 'narrow'),
    truncCell(i.shape, 'narrow'),
    el('td', {}, [badge(i.state)]),
    el('td', { className: 'num', text: String(i.cores) }),
    truncCell(purpose(i), 'narrow'),
    el('td', { className: 'num' }, [i.pilotId === null ? '-' : link('pilot', i.pilotId)]),
    el('td', { text: ago(i.requestedAt) }),
    el('td', { className: 'num', text: money(i.costSoFar) }),
    truncCell(i.reason, 'wide'),
  ]);
}

/** Instances: by state (deleted ones hidden unless asked for) and endpoint, newest first, 50 a page. */
export function instances(root, r) {
  var params = { state: r.q.get('state') || '', endpoint: r.q.get('endpoint') || '' };
  var page = pageOf(r.q);
  var state = el('select', { id: 'f-instance-state', 'aria-label': 'state' }, [el('option', { value: '', text: 'live (deleted hidden)' }), el('option', { value: 'all', text: 'all, deleted too', selected: params.state === 'all' })].concat(
    INSTANCE_STATES.map(function (s) { return el('option', { value: s, text: s, selected: s === params.state }); })));
  var endpoint = el('select', { id: 'f-instance-endpoint', 'aria-label': 'endpoint' }, [el('option', { value: '', text: 'every endpoint' })]);
  var apply = function () { go('instances', { state: state.value, endpoint: endpoint.value }); };
  state.addEventListener('change', apply);
  endpoint.addEventListener('change', apply);
  var note = el('p', { className: 'empty', id: 'no-director', hidden: true, text: 'No endpoints are configured, so no director runs: there are no instances to show (docs/director.md says how to add endpoints).' });
  var pagerBox = el('div', { className: 'pager', id: 'instances-pager' });
  var list = table('instances-list', ['ID', '', 'Endpoint', 'Shape', 'State', 'Cores', 'For', 'Pilot', 'Requested', 'Cost so far', 'Why']);
  root.append(card('Instances', [el('div', { className: 'filters' }, [state, endpoint]), note, pagerBox, list]));
  var known = null;
  return function () {
    var q = new URLSearchParams();
    if (params.state !== 'all') q.set('state', params.state || LIVE_INSTANCES);
    if (params.endpoint) q.set('endpoint', params.endpoint);
    q.set('limit', String(PAGE));
    q.set('offset', String((page - 1) * PAGE));
    return Promise.all([api('GET', '/v1/instances?' + q.toString()), known ? Promise.resolve(null) : api('GET', '/v1/endpoints')]).then(function (res) {
      if (res[1]) {
        known = res[1].data.map(function (e) { return e.name; });
        known.forEach(function (n) { endpoint.appendChild(el('option', { value: n, text: n, selected: n === params.endpoint })); });
      }
      note.hidden = known.length > 0;
      fill(list.querySelector('table'), res[0].data.map(instanceRow), params.state ? 'no instances in that state' : 'no live instances');
      pager(pagerBox, 'instances', params, page, res[0].data.length, res[0].total);
    });
  };
}

/** An instance in detail: what it is, its pilot, its cost, its history; Stop while it may run. */
export function instanceDetail(root, r) {
  var box = el('div');
  root.append(box);
  return function () {
    return api('GET', '/v1/instances/' + r.id).then(function (res) {
      var i = res.data;
      var life = i.startedAt === null ? null : ((i.endedAt || i.deletedAt || Date.now()) - i.startedAt) / 1000;
      var history = table('instance-history', ['When', 'State', 'Why']);
      fill(history.querySelector('table'), i.history.map(function (h) {
        return el('tr', {}, [el('td', { text: when(h.at) }), el('td', {}, [badge(h.state)]), truncCell(h.reason, 'wide')]);
      }), 'no history');
      box.replaceChildren(
        card('Instance ' + i.id, [
          el('div', { className: 'title-row' }, [el('span', { className: 'trunc-inline big', title: i.key, text: i.endpoint + ' / ' + i.shape }), badge(i.state), el('span', { className: 'actions' }, instanceButtons(i))]),
          facts('instance-facts', [
            ['Key', el('code', { className: 'wrap', text: i.key })],
            ['Endpoint', el('a', { href: href('instances', { endpoint: i.endpoint, state: 'all' }), text: i.endpoint })],
            ['Shape', i.shape + ': ' + i.cores + (i.cores === 1 ? ' core, ' : ' cores, ') + int(i.memoryMb) + ' MB'],
            ['For', purpose(i)],
            ['Serves groups', i.groups === null ? 'every group' : i.groups.join(', ')],
            ['Why (now)', i.reason],
            ['Pilot', i.pilot ? el('span', {}, [link('pilot', i.pilot.id), ' ', badge(i.pilot.state)]) : 'not registered'],
            ['Driver id', i.driverId === null ? '-' : i.driverId],
            ['Requested', when(i.requestedAt)],
            ['Started', when(i.startedAt)],
            ['Registered', when(i.registeredAt)],
            ['Draining since', when(i.drainAt)],
            ['Ended', when(i.endedAt)],
            ['Deleted', when(i.deletedAt)],
            ['Life', life === null ? '-' : duration(life)],
            ['Cost', money(i.costSoFar) + ' so far at ' + money(i.costPerHour) + ' an hour'],
          ]),
        ]),
        card('History', [history]),
      );
    });
  };
}
