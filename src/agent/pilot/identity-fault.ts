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
import type { Clock } from '../../shared/clock.js';
import { describeError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { HeartbeatLoop } from './heartbeat-loop.js';
import type { HaltRequest } from '../monitor/lifecycle.js';
import type { PayloadBook } from '../payload/book.js';
import type { PayloadSupervisor } from '../payload/supervisor.js';
import type { ControlPlane } from '../ports.js';
import { backoffMs, type Outbox, type OutboxFault } from '../state/outbox.js';
import type { Wakeup } from '../wakeup.js';
import type { Lifecycle } from './lifecycle.js';
import type { MatchAbort } from './match-call.js';
import type { Session } from './session.js';

/** What registering anew reads and acts on. */
export interface IdentityFaultDeps {
  clock: Clock;
  log: Logger;
  /** Aborted when the pilot stops its loops. */
  stop: AbortSignal;
  session: Session;
  control: Pick<ControlPlane, 'report'>;
  outbox: Pick<Outbox, 'suspend' | 'resume' | 'add' | 'pending' | 'lastSeq'>;
  match: MatchAbort;
  payloads: Pick<PayloadSupervisor, 'stopAll' | 'allDone'>;
  book: Pick<PayloadBook, 'newIdentity'>;
  /** What the old identity listed in `holding` is forgotten (pilot/match-loop.ts). */
  forgetHolding(): void;
  /** Register (pilot/registration.ts); a failure to halt with, or null. */
  register(): Promise<HaltRequest | null>;
  life: Pick<Lifecycle, 'requestHalt' | 'state'>;
  heartbeats: Pick<HeartbeatLoop, 'beatNow'>;
  wake: Pick<Wakeup, 'poke'>;
}

/** Register anew after `fault`; a second fault while one is handled changes nothing. Never throws. */
export async function abandonIdentity(d: IdentityFaultDeps, fault: OutboxFault): Promise<void> {
  const { session, outbox, log } = d;
  const oldId = session.pilotId;
  if (!session.faultSeen(fault.why)) return;
  log.error({ pilotId: oldId, why: fault.why, appliedSeq: fault.appliedSeq, lastSeq: outbox.lastSeq }, 'another sender holds this pilot\'s credential: registering anew');
  outbox.suspend();
  d.match.abort();
  try {
    await tellServer(d, fault);
    const stopped = d.payloads.stopAll(`the pilot registers anew: ${fault.why}`);
    await d.payloads.allDone();
    // said, not silent: these cannot be delivered under the old identity (their seqs are taken)
    if (outbox.pending.length > 0) {
      const types = outbox.pending.map((r) => ('payloadId' in r ? `${r.type} ${r.payloadId}` : r.type));
      log.warn({ pilotId: oldId, reports: types }, 'reports of the abandoned identity not delivered');
    }
    // what the old identity listed in `holding` means nothing to the new one
    d.forgetHolding();
    session.unregistered();
    // stopped here and requeued by the server: a new identity may be handed them again, and run them
    await d.book.newIdentity(stopped);
    if (session.identityFaults > 1) await d.clock.sleep(backoffMs(session.identityFaults - 1), d.stop);
    const failure = await d.register();
    if (failure) {
      d.life.requestHalt({ by: 'agent', code: failure.code, reason: failure.reason, eviction: 'halt' });
      return;
    }
    log.info({ oldPilotId: oldId, pilotId: session.pilotId, stopped }, 'registered anew');
    await outbox.add({ type: 'state', state: d.life.state, reason: `registered anew (pilot ${oldId} abandoned: ${fault.why})` });
  } catch (err) {
    log.error({ err: describeError(err) }, 'registering anew failed');
    d.life.requestHalt({ by: 'agent', code: ShutdownCode.TRANSIENT, reason: `registering anew failed: ${describeError(err)}`, eviction: 'halt' });
  } finally {
    session.faultHandled();
    outbox.resume();
    d.heartbeats.beatNow();
    d.wake.poke();
  }
}

/**
 * A `shutdown` report on the old identity, numbered right after the seq the
 * server applied, so it is applied: the old pilot halts, which makes its
 * credential worthless for new work. Best effort: the server may not answer.
 */
async function tellServer(d: IdentityFaultDeps, fault: OutboxFault): Promise<void> {
  if (fault.appliedSeq === null) return;
  const report: Report = {
    seq: fault.appliedSeq + 1,
    at: d.clock.now(),
    type: 'shutdown',
    code: ShutdownCode.TRANSIENT,
    message: `abandoned by its agent: ${fault.why}; another sender holds this pilot's credential`,
  };
  await d.control.report([report]).catch((err: unknown) => d.log.warn({ err: describeError(err) }, 'the old pilot could not be told to halt'));
}
