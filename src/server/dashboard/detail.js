// The detail views: a payload (what it asked for and got, its times,
// attempts and their history, how it ended, its output tail, the pilot it
// ran on) and a pilot (what it registered with: labels, the relay it came
// through, its capabilities; its state history, instructions with their
// acknowledgements, last heartbeat figures, Machine/Job Features, payloads).
'use strict';
import { payloadButtons, pilotButtons } from './actions.js';
import { ago, api, badge, duration, el, fill, href, int, link, table, truncCell, when } from './lib.js';
import { PAYLOAD_HEADERS, payloadRow } from './views.js';

function card(title, children) { return el('section', {}, [el('h2', { text: title })].concat(children)); }

/** A definition list of [label, value] pairs (values are text or elements). */
export function facts(id, pairs) {
  return el('dl', { className: 'facts', id: id }, pairs.reduce(function (out, p) {
    var v = p[1];
    out.push(el('dt', { text: p[0] }));
    out.push(el('dd', { title: typeof v === 'string' ? v : undefined, 'data-fact': p[0] }, [v === null || v === undefined || v === '' ? '-' : v]));
    return out;
  }, []));
}

/** "batch=slurm, site=CERN-PROD" (labels are only shown), or '-'. */
function labelsText(labels) {
  var keys = Object.keys(labels || {}).sort();
  return keys.length ? keys.map(function (k) { return k + '=' + labels[k]; }).join(', ') : '-';
}

/** What a pilot said it is and has ("x86_64-v3 el9, site CERN-PROD, tags cvmfs, 2 GPUs, scratch 38000 MiB"), or '-'. */
function capabilitiesText(c) {
  if (!c) return '-';
  var parts = [];
  if (c.arch) parts.push(c.arch + (c.cpuLevel ? '-v' + c.cpuLevel : '') + (c.platform ? ' ' + c.platform : ''));
  else if (c.platform) parts.push(c.platform);
  if (c.site) parts.push('site ' + c.site);
  if (c.tags && c.tags.length) parts.push('tags ' + c.tags.join(', '));
  if (c.gpus && c.gpus.length) parts.push(c.gpus.length + (c.gpus.length === 1 ? ' GPU' : ' GPUs'));
  if (c.scratchMb !== null && c.scratchMb !== undefined) parts.push('scratch ' + c.scratchMb + ' MiB');
  return parts.length ? parts.join(', ') : '-';
}

/** "87 % (CPU 26 s over 30 s × 1 core", without its closing parenthesis. */
function efficiencyText(ratio, cpuSec, wallSec, cores) {
  return Math.round(100 * ratio) + ' % (CPU ' + duration(cpuSec) + ' over ' + duration(wallSec) + ' × ' + cores + (cores === 1 ? ' core' : ' cores');
}

function coresAsked(c) { return c.wholeNode ? 'the whole node' : c.min === c.max ? String(c.min) : c.min + ' to ' + c.max; }

/** A payload in detail; its kill button when it has not ended. */
export function payloadDetail(root, r) {
  var box = el('div');
  root.append(box);
  return function () {
    return Promise.all([api('GET', '/v1/payloads/' + r.id), api('GET', '/v1/payloads/' + r.id + '/history')]).then(function (res) {
      // while it runs, its CPU time and memory are in its pilot's last heartbeat
      var p = res[0].data;
      if (p.state !== 'running' || p.pilotId === null) return [res, null];
      return api('GET', '/v1/pilots/' + p.pilotId + '/detail').then(function (d) {
        var hb = d.data.lastHeartbeat;
        return [res, hb ? hb.beat.payloads.filter(function (x) { return x.id === p.id; })[0] || null : null];
      });
    }).then(function (both) {
      var res = both[0];
      var live = both[1];
      var p = res[0].data;
      var wall = p.startedAt !== null ? ((p.endedAt || Date.now()) - p.startedAt) / 1000 : null;
      var efficiency = live && live.cpuSec !== undefined && wall > 0 && p.allocatedCores
        ? efficiencyText(live.cpuSec / (wall * p.allocatedCores), live.cpuSec, wall, p.allocatedCores) + ', last heartbeat)'
        : p.cpuEfficiency !== null && p.cpuEfficiency !== undefined
          ? efficiencyText(p.cpuEfficiency, p.cpuSec, wall, p.allocatedCores) + ')'
          : p.state === 'running' ? 'not reported yet'
            : p.cpuSec !== null && p.cpuSec !== undefined ? 'not measured: the run was shorter than a second' : 'not reported by its pilot';
      var attemptNo = 0;
      var history = table('payload-history', ['When', 'State', 'Pilot', 'Attempt', 'Why']);
      fill(history.querySelector('table'), res[1].data.map(function (h) {
        if (h.state === 'running') attemptNo += 1;
        return el('tr', {}, [
          el('td', { text: when(h.at) }), el('td', {}, [badge(h.state)]),
          el('td', { className: 'num' }, [h.pilotId === null ? '-' : link('pilot', h.pilotId)]),
          el('td', { className: 'num', text: h.state === 'queued' || attemptNo === 0 ? '' : String(attemptNo) }),
          truncCell(h.reason, 'wide'),
        ]);
      }), 'no history');
      box.replaceChildren(
        card('Payload ' + p.id, [
          el('div', { className: 'title-row' }, [el('span', { className: 'trunc-inline big', title: p.name, text: p.name }), badge(p.state), el('span', { className: 'actions' }, payloadButtons(p))]),
          facts('payload-facts', [
            ['Command', el('code', { className: 'wrap', text: p.command.join(' ') })],
            ['Group', p.group],
            ['Cores asked', coresAsked(p.cores)],
            ['Cores allocated', p.allocatedCores === null ? '-' : String(p.allocatedCores)],
            ['Memory', p.memoryMb === null ? 'no limit' : int(p.memoryMb) + ' MB'],
            ['Wall limit', p.wallSec === null ? 'no limit' : duration(p.wallSec)],
            ['Priority', String(p.priority)],
            ['Pilot', p.pilotId === null ? '-' : link('pilot', p.pilotId)],
            ['Submitted', when(p.submittedAt)],
            ['Started', when(p.startedAt)],
            ['Ended', when(p.endedAt)],
            ['Wall time', wall === null ? '-' : duration(wall)],
            ['Attempts', p.attempts + (p.evictions ? ' (' + p.evictions + ' ended by the infrastructure)' : '') + (p.requeue === false ? '; not requeued' : '')],
            ['CPU efficiency', efficiency],
            live ? ['Memory now', live.rssMb !== undefined ? int(live.rssMb) + ' MB' : '-'] : ['Memory peak', p.peakRssMb === null || p.peakRssMb === undefined ? '-' : int(p.peakRssMb) + ' MB'],
            ['Exit', p.exitCode !== null ? String(p.exitCode) : p.signal || '-'],
            ['Message', p.message || '-'],
            ['Core-hours', ((p.coreSec || 0) / 3600).toFixed(1) + (p.evictedCoreSec ? ' (+' + (p.evictedCoreSec / 3600).toFixed(1) + ' in interrupted attempts)' : '')],
          ]),
        ]),
        card('Output tail', [el('pre', { id: 'output-tail', className: 'output', text: p.outputTail ? p.outputTail : 'no output recorded (yet)' })]),
        card('History', [history]),
      );
    });
  };
}

function mb(v) { return v === undefined || v === null ? '-' : int(v) + ' MB'; }

/** A pilot in detail: what it is, its last heartbeat, instructions, state history, payloads. */
export function pilotDetail(root, r) {
  var box = el('div');
  root.append(box);
  return function () {
    return Promise.all([
      api('GET', '/v1/pilots/' + r.id),
      api('GET', '/v1/pilots/' + r.id + '/detail'),
      api('GET', '/v1/pilots/' + r.id + '/history'),
      api('GET', '/v1/payloads?pilot=' + r.id + '&limit=20'),
    ]).then(function (res) {
      var p = res[0].data;
      var d = res[1].data;
      var hb = d.lastHeartbeat ? d.lastHeartbeat.beat : null;
      var beat = hb ? [
        ['Heartbeat', ago(d.lastHeartbeat.at)],
        ['Load (1, 5, 15 min)', hb.load ? hb.load.map(function (l) { return l.toFixed(2); }).join(', ') : '-'],
        ['CPU in use', hb.cpuUse === undefined ? '-' : hb.cpuUse.toFixed(1) + ' of ' + hb.cores.total + ' cores'],
        ['Cores', hb.cores.used + ' used, ' + hb.cores.free + ' free of ' + hb.cores.total],
        ['Memory', mb(hb.memoryMb.used) + ' of ' + mb(hb.memoryMb.total)],
        ['Disk free', mb(hb.diskFreeMb)],
        ['Uptime', duration(hb.uptimeSec)],
      ] : [['Heartbeat', 'none yet']];
      var perPayload = table('pilot-beat-payloads', ['Payload', 'State', 'Cores', 'CPU time', 'Memory']);
      fill(perPayload.querySelector('table'), (hb ? hb.payloads : []).map(function (x) {
        return el('tr', {}, [el('td', { className: 'num' }, [link('payload', x.id)]), el('td', { text: x.state }), el('td', { className: 'num', text: String(x.cores) }),
          el('td', { className: 'num', text: x.cpuSec === undefined ? '-' : duration(x.cpuSec) }), el('td', { className: 'num', text: mb(x.rssMb) })]);
      }), 'no payload in its last heartbeat');
      var features = hb && hb.features ? Object.keys(hb.features).sort().map(function (k) { return [k, String(hb.features[k])]; }) : [];
      var instructions = table('pilot-instructions', ['Sent', 'Instruction', 'Acknowledged', 'Result']);
      fill(instructions.querySelector('table'), d.instructions.map(function (i) {
        var ins = i.instruction;
        var what = ins.type + (ins.type === 'kill-payload' ? ' ' + ins.payloadId : '') + (ins.reason ? ': ' + ins.reason : '');
        return el('tr', { 'data-instruction': String(ins.id) }, [el('td', { text: when(i.createdAt) }), truncCell(what, 'wide'),
          el('td', { text: i.doneAt === null ? 'not yet' : when(i.doneAt) }), truncCell(i.ok === null ? '-' : i.ok ? 'ok' : 'refused ' + (i.message || ''))]);
      }), 'no instructions sent');
      var states = table('pilot-history', ['When', 'State', 'Why']);
      fill(states.querySelector('table'), res[2].data.map(function (h) {
        return el('tr', {}, [el('td', { text: when(h.at) }), el('td', {}, [badge(h.state)]), truncCell(h.reason, 'wide')]);
      }), 'no history');
      var mine = table('pilot-payloads', PAYLOAD_HEADERS);
      fill(mine.querySelector('table'), res[3].data.map(function (x) { return payloadRow(x); }), 'it has run no payload');
      box.replaceChildren(
        card('Pilot ' + p.id, [
          el('div', { className: 'title-row' }, [el('span', { className: 'trunc-inline big', title: p.hostname, text: p.hostname }), badge(p.state), el('span', { className: 'actions' }, pilotButtons(p))]),
          facts('pilot-facts', [
            ['Version', p.version], ['Cores', p.coresUsed + ' used of ' + p.cores], ['Memory', mb(p.memoryMb)],
            ['Isolation', p.isolation || 'none'], ['External id', p.externalId || '-'], ['Labels', labelsText(p.labels)],
            ['Via', p.relay ? p.relay.site + '/' + p.relay.name : '-'], ['Capabilities', capabilitiesText(p.capabilities)], ['Registered', when(p.registeredAt)],
            ['Deadline', when(p.deadline)], ['Shutdown', p.shutdownCode === null ? '-' : p.shutdownCode + ' ' + (p.shutdownMessage || '')],
          ]),
        ]),
        card('Last heartbeat', [facts('pilot-beat', beat), perPayload]),
        card('Machine/Job Features', features.length ? [facts('pilot-mjf', features)] : [el('p', { className: 'empty', text: 'none reported' })]),
        card('Instructions', [instructions]),
        card('State history', [states]),
        card('Its newest payloads', [mine, el('a', { href: href('payloads', { pilot: String(p.id) }), text: 'all its payloads' })]),
      );
    });
  };
}
