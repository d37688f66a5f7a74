/**
 * The server holds reports under this pilot's name that it never sent (the
 * outbox saw an `appliedSeq` above its last seq, another report under one
 * of its seqs, or its order refused: state/outbox.ts). Someone else has the
 * credential, so the pilot stops trusting it:
 *
 *   fault ─▶ stop matching and sending ─▶ tell the server (a `shutdown`
 *   report right after its applied seq: the old pilot halts, its payloads go
 *   back to the queue) ─▶ stop its payloads (the server gives them to others)
 *   ─▶ forget the identity ─▶ register anew ─▶ serve on
 *
 * The payloads it stopped may run here again under the new identity: they
 * are dead, and the server hands them out only once it has requeued them.
 * A fault soon after another waits before registering (1 s, 2 s … 30 s), so
 * neither a persistent thief nor a broken server makes it register in a loop.
 */
import { ShutdownCode, type Report } from '../../protocol/index.js';
import { describeError } from '../../shared/errors.js';
import { backoffMs, type OutboxFault } from '../state/outbox.js';
import { forgetIdentity } from '../state/restore.js';
import type { PilotCore } from './core.js';
import { registerLoop } from './registration.js';

/** Register anew after `fault`; a second fault while one is handled changes nothing. Never throws. */
export async function abandonIdentity(p: PilotCore, fault: OutboxFault): Promise<void> {
  if (p.identityFault !== null) return;
  const state = p.keeper.state;
  const oldId = state.pilotId;
  p.identityFault = fault.why;
  p.log.error({ pilotId: oldId, why: fault.why, appliedSeq: fault.appliedSeq, lastSeq: state.seq }, 'another sender holds this pilot\'s credential: registering anew');
  p.outbox.suspend();
  p.abortMatch();
  try {
    await tellServer(p, fault);
    const stopped = p.payloads.stopAll(`the pilot registers anew: ${fault.why}`);
    await p.payloads.allDone();
    // said, not silent: these cannot be delivered under the old identity (their seqs are taken)
    if (state.outbox.length > 0) {
      const types = state.outbox.map((r) => ('payloadId' in r ? `${r.type} ${r.payloadId}` : r.type));
      p.log.warn({ pilotId: oldId, reports: types }, 'reports of the abandoned identity not delivered');
    }
    forgetIdentity(state);
    // stopped here and requeued by the server: a new identity may be handed them again, and run them
    const again = new Set(stopped);
    state.started = state.started.filter((id) => !again.has(id));
    for (const id of stopped) p.started.delete(id);
    // what the old identity listed in `holding` means nothing to the new one
    p.releasing.clear();
    p.redelivered.clear();
    p.registered = false;
    await p.keeper.persist();
    p.identityFaults++;
    if (p.identityFaults > 1) await p.deps.clock.sleep(backoffMs(p.identityFaults - 1), p.stopLoops.signal);
    const failure = await registerLoop(p);
    if (failure) {
      p.requestHalt(failure.code, failure.reason);
      return;
    }
    p.log.info({ oldPilotId: oldId, pilotId: state.pilotId, stopped }, 'registered anew');
    await p.outbox.add({ type: 'state', state: p.lifecycle, reason: `registered anew (pilot ${oldId} abandoned: ${fault.why})` });
  } catch (err) {
    p.log.error({ err: describeError(err) }, 'registering anew failed');
    p.requestHalt(ShutdownCode.TRANSIENT, `registering anew failed: ${describeError(err)}`);
  } finally {
    p.identityFault = null;
    p.outbox.resume();
    p.heartbeats.beatNow();
    p.wake.poke();
  }
}

/**
 * A `shutdown` report on the old identity, numbered right after the seq the
 * server applied, so it is applied: the old pilot halts, which makes its
 * credential worthless for new work. Best effort: the server may not answer.
 */
async function tellServer(p: PilotCore, fault: OutboxFault): Promise<void> {
  if (fault.appliedSeq === null) return;
  const report: Report = {
    seq: fault.appliedSeq + 1,
    at: p.deps.clock.now(),
    type: 'shutdown',
    code: ShutdownCode.TRANSIENT,
    message: `abandoned by its agent: ${fault.why}; another sender holds this pilot's credential`,
  };
  await p.control.report([report]).catch((err: unknown) => p.log.warn({ err: describeError(err) }, 'the old pilot could not be told to halt'));
}
