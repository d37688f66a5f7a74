/**
 * What the pilot does when the supervisor (payload/supervisor.ts) says a
 * payload started or ended, and what restart recovery (state/recover.ts)
 * adopts payloads into and reports through: the payload book
 * (payload/book.ts) records and reports; the lifecycle hears that the node
 * was busy, the open match request is asked again with the freed cores.
 */
import type { Assignment } from '../../protocol/index.js';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/log.js';
import type { PayloadProcess, ProcessSpec } from '../ports.js';
import type { PilotResources } from '../resources/pilot-resources.js';
import type { RecoveryTarget } from '../state/recover.js';
import type { Wakeup } from '../wakeup.js';
import type { PayloadBook } from './book.js';
import type { PayloadHooks, PayloadSupervisor } from './supervisor.js';

/** What the hooks tell besides the book. */
export interface PayloadHookDeps {
  clock: Clock;
  book: Pick<PayloadBook, 'started' | 'ended'>;
  /** A payload was running until `now` (the idle rule counts from it). */
  busyAt(now: number): void;
  /** End the open match request (cores were freed). */
  abortMatch(): void;
  wake: Pick<Wakeup, 'poke'>;
}

/** The supervisor's hooks: record and report each start and end. */
export function payloadHooks(d: PayloadHookDeps): PayloadHooks {
  return {
    async started(a, pid, cores) {
      const saved = d.book.started(a, pid, cores);
      // the lifecycle looks again: a running payload has a lease to keep
      d.wake.poke();
      await saved;
    },
    async ended(a, r) {
      d.busyAt(d.clock.now());
      // Free cores: abort the open match so the next one asks with them.
      d.abortMatch();
      d.wake.poke();
      await d.book.ended(a, r);
    },
  };
}

/** What recovery needs to be given. */
export interface RecoveryDeps {
  clock: Clock;
  log: Logger;
  book: Pick<PayloadBook, 'recovered' | 'forget' | 'handBack' | 'acceptsEvicted'>;
  payloads: Pick<PayloadSupervisor, 'adopt'>;
  isolation: PilotResources['isolation'];
  busyAt(now: number): void;
}

/** What restart recovery adopts payloads into and reports through. */
export function recoveryTarget(d: RecoveryDeps): RecoveryTarget {
  const { isolation } = d;
  return {
    clock: d.clock,
    log: d.log,
    adopt: (a: Assignment, cores: number, process: PayloadProcess, spec: ProcessSpec, startedAt: number) => {
      d.busyAt(d.clock.now());
      // an adopted payload's wall time counts from when the previous run started it (payload/supervisor.ts)
      d.payloads.adopt(a, cores, process, spec, startedAt);
    },
    ...(isolation ? { contain: (pid: number) => isolation.adopt(pid, d.clock) } : {}),
    report: (draft) => d.book.recovered(draft),
    forget: (id: number) => d.book.forget(id),
    handBack: (id: number) => d.book.handBack(id),
    acceptsEvicted: d.book.acceptsEvicted,
  };
}
