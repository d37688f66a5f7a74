// Acting on pilots, payloads and instances: each action says what will happen and
// waits for a confirmation (cancelling sends nothing); its feedback stays
// on screen until the result is known (the pilot acknowledged, the payload
// ended, the instance was deleted), then until dismissed.
'use strict';
import { api, el, int } from './lib.js';

var LIVE_PAYLOAD = ['queued', 'assigned', 'running'];
var pending = [];
var refreshView = function () {};

/** What to call after an action was sent (the current view's refresh). */
export function whenActed(f) { refreshView = f; }

/** Drain applies to a pilot that still takes work; halt to one that has not halted or begun to. */
export function pilotActions(p) {
  var out = [];
  if (p.state === 'submitted' || p.state === 'booting' || p.state === 'running') out.push('drain');
  if (p.state !== 'halting' && p.state !== 'halted') out.push('halt');
  return out;
}

/** Kill applies to a payload that has not ended. */
export function payloadCanBeKilled(p) { return LIVE_PAYLOAD.indexOf(p.state) >= 0; }

/** Ask before acting: resolves true on Confirm, false on Cancel or Escape. */
export function confirmAction(text, okLabel) {
  var dialog = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  var ok = document.getElementById('confirm-ok');
  ok.textContent = okLabel;
  return new Promise(function (resolve) {
    function done(answer) {
      ok.removeEventListener('click', yes);
      document.getElementById('confirm-cancel').removeEventListener('click', no);
      dialog.removeEventListener('cancel', no);
      if (dialog.open) dialog.close();
      resolve(answer);
    }
    function yes() { done(true); }
    function no(ev) { if (ev) ev.preventDefault(); done(false); }
    ok.addEventListener('click', yes);
    document.getElementById('confirm-cancel').addEventListener('click', no);
    dialog.addEventListener('cancel', no);
    dialog.showModal();
    document.getElementById('confirm-cancel').focus();
  });
}

function runningOn(pilotId) {
  return Promise.all([
    api('GET', '/v1/payloads?pilot=' + pilotId + '&state=running&limit=1'),
    api('GET', '/v1/payloads?pilot=' + pilotId + '&state=assigned&limit=1'),
  ]).then(function (r) { return (r[0].total || 0) + (r[1].total || 0); });
}

function payloadsText(n) { return n === 1 ? 'its 1 running payload' : 'its ' + int(n) + ' running payloads'; }

/** The sentence a confirmation shows for a pilot action. Pure. */
export function pilotActionText(type, p, running) {
  var who = 'pilot ' + p.id + ' (' + p.hostname + ')';
  if (type === 'halt') {
    return 'halt ' + who + ': ' + (running ? payloadsText(running) + ' will be stopped and requeued (or failed, if they have no attempt left)' : 'it runs no payload now') + '; the pilot then exits.';
  }
  return 'drain ' + who + ': it takes no new payloads; ' + (running ? payloadsText(running) + ' run to their end' : 'it runs no payload now') + ', then it exits.';
}

/** The sentence a confirmation shows for killing a payload. Pure. */
export function killText(p) {
  var who = 'payload ' + p.id + ' (' + p.name + ')';
  if (p.state === 'queued') return 'kill ' + who + ': it is queued and will be cancelled before it starts.';
  return 'kill ' + who + ': it is ' + p.state + ' on pilot ' + p.pilotId + '; it will be stopped and marked cancelled.';
}

function feedback(text) {
  var item = el('li', { className: 'pending' }, [el('span', { className: 'what', text: text }), el('span', { className: 'result', text: 'sending…' })]);
  document.getElementById('feedback').appendChild(item);
  return {
    set: function (result, final, bad) {
      item.querySelector('.result').textContent = result;
      item.className = final ? (bad ? 'bad' : 'ok') : 'pending';
      if (final && !item.querySelector('button')) {
        item.appendChild(el('button', { type: 'button', className: 'dismiss', text: 'Dismiss', 'aria-label': 'dismiss', onclick: function () { item.remove(); } }));
      }
    },
  };
}

/** Confirm, then send a drain or halt to pilot `p`; the feedback waits for the pilot's acknowledgement. */
export function actOnPilot(type, p) {
  return runningOn(p.id).then(function (running) {
    return confirmAction(pilotActionText(type, p, running), type === 'halt' ? 'Halt' : 'Drain').then(function (yes) {
      if (!yes) return;
      var f = feedback(type + ' pilot ' + p.id + ' (' + p.hostname + ')');
      return api('POST', '/v1/pilots/' + p.id + '/instructions', { type: type, reason: type + ' from the dashboard' })
        .then(function (r) {
          f.set('sent; waiting for the pilot to acknowledge…', false);
          pending.push({ kind: 'instruction', pilotId: p.id, id: r.data.instruction.id, feedback: f });
          refreshView();
        })
        .catch(function (err) { f.set('failed: ' + err.message, true, true); });
    });
  });
}

/** Confirm, then kill payload `p`; the feedback waits for it to end. */
export function killPayload(p) {
  return confirmAction(killText(p), 'Kill').then(function (yes) {
    if (!yes) return;
    var f = feedback('kill payload ' + p.id + ' (' + p.name + ')');
    return api('POST', '/v1/payloads/' + p.id + '/kill', { reason: 'killed from the dashboard' })
      .then(function (r) {
        if (r.data.state === 'cancelled') f.set('cancelled', true);
        else {
          f.set('sent to pilot ' + p.pilotId + '; waiting for the payload to end…', false);
          pending.push({ kind: 'payload', payloadId: p.id, feedback: f });
        }
        refreshView();
      })
      .catch(function (err) { f.set('failed: ' + err.message, true, true); });
  });
}

/** The sentence a confirmation shows for stopping an instance. Pure. */
export function stopText(i) {
  var who = 'stop instance ' + i.id + ' (' + i.endpoint + '/' + i.shape + ')';
  if (i.state === 'registered' && i.pilotId !== null) {
    if (i.drainAt !== null) return who + ': its pilot ' + i.pilotId + ' is draining already; nothing more will be sent.';
    return who + ': its pilot ' + i.pilotId + ' is asked to drain: it takes no new payloads, its running payloads run to their end, then the machine is discarded (terminated at the latest its endpoint\'s drain grace later).';
  }
  return who + ': it is ' + i.state + ' and has no pilot yet: it is marked failed and its machine is discarded by the next cycle.';
}

/** Confirm, then stop instance `i` (drain, then discard); the feedback waits for it to be deleted. */
export function stopInstance(i) {
  return confirmAction(stopText(i), 'Stop').then(function (yes) {
    if (!yes) return;
    var f = feedback('stop instance ' + i.id + ' (' + i.endpoint + '/' + i.shape + ')');
    return api('POST', '/v1/instances/stop', { ids: [i.id] })
      .then(function (r) {
        var res = r.data.results[0];
        if (res.outcome === 'already-ended' || res.outcome === 'unknown') f.set(res.outcome === 'unknown' ? 'no such instance' : 'it had ended already: ' + res.state, true);
        else {
          f.set((res.outcome === 'stopping' ? 'marked failed' : 'its pilot is draining') + '; waiting for the machine to be deleted…', false);
          pending.push({ kind: 'instance', instanceId: i.id, feedback: f });
        }
        refreshView();
      })
      .catch(function (err) { f.set('failed: ' + err.message, true, true); });
  });
}

/** Look again at every action whose result is not known yet (called with each refresh). */
export function checkPending() {
  pending.slice().forEach(function (a) {
    var settle = function () { pending.splice(pending.indexOf(a), 1); };
    if (a.kind === 'instruction') {
      api('GET', '/v1/pilots/' + a.pilotId + '/detail').then(function (r) {
        var found = r.data.instructions.filter(function (i) { return i.instruction.id === a.id; })[0];
        if (found && found.doneAt !== null) {
          settle();
          a.feedback.set(found.ok === false ? 'the pilot refused it: ' + (found.message || '') : 'acknowledged by the pilot', true, found.ok === false);
        }
      }).catch(function () {});
    } else if (a.kind === 'instance') {
      api('GET', '/v1/instances/' + a.instanceId).then(function (r) {
        if (r.data.state === 'deleted') { settle(); a.feedback.set('deleted', true); }
      }).catch(function () {});
    } else {
      api('GET', '/v1/payloads/' + a.payloadId).then(function (r) {
        if (LIVE_PAYLOAD.indexOf(r.data.state) < 0) { settle(); a.feedback.set('ended: ' + r.data.state, true); }
      }).catch(function () {});
    }
  });
}

/** The action buttons of a pilot (only those that apply). */
export function pilotButtons(p) {
  return pilotActions(p).map(function (type) {
    return el('button', {
      type: 'button', className: type === 'halt' ? 'danger' : '', 'data-action': type, 'data-pilot': String(p.id),
      text: type === 'halt' ? 'Halt' : 'Drain',
      onclick: function (ev) { ev.stopPropagation(); actOnPilot(type, p); },
    });
  });
}

/** The kill button of a payload that has not ended; the resubmit button of one that has. */
export function payloadButtons(p) {
  if (!payloadCanBeKilled(p)) {
    return [el('button', {
      type: 'button', 'data-action': 'resubmit', 'data-payload': String(p.id), text: 'Resubmit',
      onclick: function (ev) { ev.stopPropagation(); resubmitPayload(p); },
    })];
  }
  return [el('button', {
    type: 'button', className: 'danger', 'data-action': 'kill', 'data-payload': String(p.id), text: 'Kill',
    onclick: function (ev) { ev.stopPropagation(); killPayload(p); },
  })];
}

/** The sentence a confirmation shows for resubmitting an ended payload. Pure. */
export function resubmitText(p) {
  return 'resubmit payload ' + p.id + ' (' + p.name + '): a new payload with the same command, environment, cores, memory, wall time and group (' + p.group + ') is queued; payload ' + p.id + ' stays ' + p.state + '.';
}

/** Confirm, then queue a copy of ended payload `p`; the feedback names the new payload. */
export function resubmitPayload(p) {
  return confirmAction(resubmitText(p), 'Resubmit').then(function (yes) {
    if (!yes) return;
    var f = feedback('resubmit payload ' + p.id + ' (' + p.name + ')');
    return api('POST', '/v1/payloads/' + p.id + '/resubmit')
      .then(function (r) {
        f.set('queued as payload ' + r.data.id, true);
        refreshView();
      })
      .catch(function (err) { f.set('failed: ' + err.message, true, true); });
  });
}

function names(list, label) {
  var shown = list.slice(0, 3).map(label).join(', ');
  return list.length > 3 ? shown + ' and ' + (list.length - 3) + ' more' : shown;
}

/** The sentence a confirmation shows for killing several payloads. Pure. */
export function bulkKillText(list) {
  var queued = list.filter(function (p) { return p.state === 'queued'; }).length;
  var started = list.length - queued;
  var parts = [];
  if (queued) parts.push(queued + ' queued will be cancelled before they start');
  if (started) parts.push(started + ' assigned or running will be stopped and marked cancelled');
  return 'kill ' + list.length + ' payloads (' + names(list, function (p) { return p.id + ' ' + p.name; }) + '): ' + parts.join('; ') + '.';
}

/** The sentence a confirmation shows for draining or halting several pilots. Pure. */
export function bulkPilotText(type, list) {
  var cores = list.reduce(function (s, p) { return s + (p.coresUsed || 0); }, 0);
  var who = type + ' ' + list.length + ' pilots (' + names(list, function (p) { return p.id + ' ' + p.hostname; }) + ')';
  if (type === 'halt') return who + ': the payloads on their ' + int(cores) + ' busy cores will be stopped and requeued (or failed, if they have no attempt left); the pilots then exit.';
  return who + ': they take no new payloads; the payloads on their ' + int(cores) + ' busy cores run to their end, then they exit.';
}

/** Send one request per record, one after another; the feedback counts them and then waits for every result. */
function sendAll(f, list, send, watch) {
  var sent = 0;
  var failed = [];
  return list.reduce(function (chain, item) {
    return chain.then(function () {
      return send(item).then(function (r) { sent += 1; watch(item, r); }).catch(function (err) { failed.push(item.id + ': ' + err.message); });
    }).then(function () { f.set(sent + ' of ' + list.length + ' sent' + (failed.length ? '; failed: ' + failed.join('; ') : '') + '…', false); });
  }, Promise.resolve()).then(function () {
    f.set(sent + ' of ' + list.length + ' sent' + (failed.length ? '; failed: ' + failed.join('; ') : '') + (sent ? '; waiting for the results…' : ''), !sent, failed.length > 0);
    return sent;
  });
}

/** Watch several pending results as one feedback line. */
function group(f, total) {
  var left = total;
  return function done() {
    left -= 1;
    if (left === 0) f.set('all ' + total + ' done', true);
    else f.set((total - left) + ' of ' + total + ' done…', false);
  };
}

/** Confirm, then kill every payload of `list`. */
export function bulkKill(list) {
  return confirmAction(bulkKillText(list), 'Kill ' + list.length).then(function (yes) {
    if (!yes) return false;
    var f = feedback('kill ' + list.length + ' payloads');
    var watchers = [];
    return sendAll(f, list, function (p) { return api('POST', '/v1/payloads/' + p.id + '/kill', { reason: 'killed from the dashboard' }); }, function (p) { watchers.push(p); })
      .then(function (sent) {
        var done = group(f, sent);
        watchers.forEach(function (p) { pending.push({ kind: 'payload', payloadId: p.id, feedback: { set: function () { done(); } } }); });
        refreshView();
        return true;
      });
  });
}

/** Confirm, then drain or halt every pilot of `list`. */
export function bulkPilots(type, list) {
  return confirmAction(bulkPilotText(type, list), (type === 'halt' ? 'Halt ' : 'Drain ') + list.length).then(function (yes) {
    if (!yes) return false;
    var f = feedback(type + ' ' + list.length + ' pilots');
    var watchers = [];
    return sendAll(f, list, function (p) { return api('POST', '/v1/pilots/' + p.id + '/instructions', { type: type, reason: type + ' from the dashboard' }); }, function (p, r) { watchers.push({ p: p, id: r.data.instruction.id }); })
      .then(function (sent) {
        var done = group(f, sent);
        watchers.forEach(function (w) { pending.push({ kind: 'instruction', pilotId: w.p.id, id: w.id, feedback: { set: function () { done(); } } }); });
        refreshView();
        return true;
      });
  });
}
