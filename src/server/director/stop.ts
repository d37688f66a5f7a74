/**
 * `instances stop ID…`: drain, then discard. What stopping does to an
 * instance depends on its state only, so the rule is a pure function here
 * and the loop (Director.stopByHand) carries it out:
 *
 * - registered: its pilot is asked to drain and the instance's `drainAt` is
 *   set; the pilot finishes what it runs and halts, and the reconcile then
 *   deletes the instance; if the pilot has not halted `drainGraceSec` after
 *   `drainAt`, the reconcile terminates it (reconcile.ts). Already draining:
 *   nothing more (the grace is not pushed back);
 * - requested, starting, booting: no pilot to drain yet: marked failed
 *   ("stopped by an operator"), and the next cycle deletes it at its driver;
 * - halted, failed, deleted: it has ended; nothing to do;
 * - no such instance: said so.
 */
import type { InstanceStateName, StopResult } from '../../protocol/index.js';
import type { InstanceRecord } from './ports.js';

/** The reason written on an instance an operator stopped. */
export const STOPPED_REASON = 'stopped by an operator';

/** What stopping one instance takes. */
export type StopStep =
  | { kind: 'drain'; pilotId: number }
  | { kind: 'fail' }
  | { kind: 'none'; outcome: 'already-draining' | 'already-ended' | 'unknown' };

/** The step that stops `instance` (null: no such instance). Pure. */
export function stopStepFor(instance: InstanceRecord | null): StopStep {
  if (!instance) return { kind: 'none', outcome: 'unknown' };
  switch (instance.state) {
    case 'registered':
      if (instance.pilotId === null) return { kind: 'fail' };
      return instance.drainAt === null ? { kind: 'drain', pilotId: instance.pilotId } : { kind: 'none', outcome: 'already-draining' };
    case 'requested':
    case 'starting':
    case 'booting':
      return { kind: 'fail' };
    case 'halted':
    case 'failed':
    case 'deleted':
      return { kind: 'none', outcome: 'already-ended' };
  }
}

/** What the answer says of instance `id` after `step` was carried out (`instance`: its record before). Pure. */
export function stopResultOf(id: number, instance: InstanceRecord | null, step: StopStep): StopResult {
  const state = (s: InstanceRecord['state']): InstanceStateName => s;
  switch (step.kind) {
    case 'drain':
      return { id, outcome: 'draining', state: 'registered', message: `instance ${id}: pilot ${step.pilotId} drains; the instance is deleted once it halts` };
    case 'fail':
      return { id, outcome: 'stopping', state: 'failed', message: `instance ${id} was ${instance?.state ?? 'coming'} with no pilot yet: marked failed, deleted at its driver next cycle` };
    case 'none':
      if (step.outcome === 'unknown' || !instance) return { id, outcome: 'unknown', state: null, message: `no instance ${id}` };
      if (step.outcome === 'already-draining') return { id, outcome: 'already-draining', state: state(instance.state), message: `instance ${id}: pilot ${instance.pilotId} is already draining` };
      return { id, outcome: 'already-ended', state: state(instance.state), message: `instance ${id} has already ended (${instance.state}: ${instance.reason})` };
  }
}
