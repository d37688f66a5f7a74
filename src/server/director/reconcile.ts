/**
 * What the director does about the machines it has, each cycle: it brings
 * each instance's record in line with what its driver lists and what its
 * pilot reports, and decides what to discard. Pure: the loop carries out the
 * steps returned, in order, and applies what was learnt to the failure
 * memory and the offering stats.
 *
 * Per instance (after its state is brought up to date):
 * - requested, and the driver lists its key: adopted (a director restarted
 *   mid-create); not listed: the create is issued again with the same key,
 *   so it is neither lost nor made twice;
 * - starting for longer than the boot timeout, or booting for longer than
 *   the registration timeout: terminated (failed), and the offering backs off;
 * - ended or vanished before its pilot registered: failed, a fizzle;
 * - registered, its pilot halted: halted, then deleted at the driver; the end
 *   is judged (fizzle, no work, lived well) for the offering;
 * - its pilot stalled past the stalled grace: terminated;
 * - at its maximum lifetime: its pilot is drained; still there the drain
 *   grace later: terminated;
 * - vanished (its driver lists it no more) or its machine ended while its
 *   pilot did not halt: marked failed;
 * - halted or failed: deleted at the driver, then marked deleted.
 * A resource the driver lists as ours that no record knows is removed once
 * it has been seen for the endpoint's orphan time. A driver whose listing
 * failed this cycle is trusted for nothing: no instance of it is marked
 * vanished, no resource of it is an orphan.
 */
import type { EndpointConfig } from './endpoint-config.js';
import { maxLifeSec } from './endpoint-config.js';
import { type FailureKind, judgeEnd, offeringKey } from './failure-memory.js';
import type { DriverResource, InstanceChange, InstanceRecord, PilotSummary } from './ports.js';

/** A resource is not called vanished within this long of its create: listings may lag. */
export const LIST_GRACE_SEC = 60;

/**
 * A pilot says it halted (a state report) just before its shutdown report:
 * its instance waits this long for the shutdown code (or for its machine to
 * end) before it is deleted, so the machine is not removed under the report
 * and its end is not judged a fizzle for want of a code.
 */
export const SHUTDOWN_REPORT_GRACE_SEC = 30;

/** What reconciling looks at. */
export interface ReconcileInput {
  now: number;
  /** Live (not deleted) instances. */
  instances: readonly InstanceRecord[];
  pilots: ReadonlyMap<number, PilotSummary>;
  endpoints: ReadonlyMap<string, EndpointConfig>;
  /** Per endpoint, what its driver lists; null when the listing failed this cycle. */
  listings: ReadonlyMap<string, readonly DriverResource[] | null>;
  /** Instances whose create call this process is making: left alone. */
  inFlight: ReadonlySet<number>;
  /** Unknown resources by `endpoint/key`, and when they were first seen. */
  orphansSeen: ReadonlyMap<string, number>;
}

/** One thing to do. */
export type Step =
  | { kind: 'mark'; instance: InstanceRecord; change: InstanceChange }
  /** Issue the create again, with the instance's key (and a new credential). */
  | { kind: 'create'; instance: InstanceRecord }
  | { kind: 'drain'; instance: InstanceRecord; pilotId: number; reason: string }
  /** Delete at the driver (`driverId` null: nothing there), then mark it deleted. */
  | { kind: 'remove'; instance: InstanceRecord; driverId: string | null }
  | { kind: 'remove-orphan'; endpoint: string; resource: DriverResource };

/** What an offering taught. */
export type Learnt =
  | { key: string; kind: 'failure'; failure: FailureKind; reason: string }
  | { key: string; kind: 'success' }
  | { key: string; kind: 'boot'; sec: number }
  | { key: string; kind: 'end'; noWork: boolean };

/** The steps, what was learnt, and the orphans seen so far. */
export interface ReconcileResult {
  steps: Step[];
  learnt: Learnt[];
  orphansSeen: Map<string, number>;
  /** Instances of endpoints no longer configured: left alone, to say so. */
  unmanaged: InstanceRecord[];
}

/** Reconcile. Pure. */
export function reconcile(input: ReconcileInput): ReconcileResult {
  const steps: Step[] = [];
  const learnt: Learnt[] = [];
  const unmanaged: InstanceRecord[] = [];
  const byKey = new Map<string, Map<string, DriverResource>>();
  for (const [endpoint, list] of input.listings) if (list) byKey.set(endpoint, new Map(list.map((r) => [r.key, r])));

  for (const i of input.instances) {
    if (input.inFlight.has(i.id)) continue;
    const ep = input.endpoints.get(i.endpoint);
    if (!ep) {
      unmanaged.push(i);
      continue;
    }
    const listed = byKey.get(i.endpoint) ?? null;
    instanceSteps(i, ep, listed, input, steps, learnt);
  }

  // resources ours by tag that no record knows
  const known = new Set(input.instances.map((i) => `${i.endpoint}/${i.key}`));
  const orphansSeen = new Map<string, number>();
  for (const [endpoint, list] of input.listings) {
    const ep = input.endpoints.get(endpoint);
    if (!list || !ep) continue;
    for (const r of list) {
      const k = `${endpoint}/${r.key}`;
      if (known.has(k)) continue;
      const seen = input.orphansSeen.get(k) ?? input.now;
      orphansSeen.set(k, seen);
      if (input.now - seen >= ep.timeouts.orphanSec * 1000) steps.push({ kind: 'remove-orphan', endpoint, resource: r });
    }
  }
  return { steps, learnt, orphansSeen, unmanaged };
}

function instanceSteps(
  i: InstanceRecord,
  ep: EndpointConfig,
  listed: ReadonlyMap<string, DriverResource> | null,
  input: ReconcileInput,
  steps: Step[],
  learnt: Learnt[],
): void {
  const { now } = input;
  const key = offeringKey(ep.name, i.shape);
  const r = listed?.get(i.key);
  const pilot = i.pilotId === null ? undefined : input.pilots.get(i.pilotId);
  const since = (t: number | null) => (now - (t ?? i.requestedAt)) / 1000;
  let cur = i;
  const mark = (change: InstanceChange) => {
    steps.push({ kind: 'mark', instance: cur, change });
    cur = { ...cur, ...change } as InstanceRecord;
    if (change.state === 'booting') cur.bootedAt = now;
    if (change.state === 'starting') cur.startedAt = now;
  };
  const fail = (reason: string, failure: FailureKind | null, detail = reason) => {
    mark({ state: 'failed', reason, ...(r && cur.driverId === null ? { driverId: r.id } : {}) });
    if (failure) learnt.push({ key, kind: 'failure', failure, reason: detail });
    steps.push({ kind: 'remove', instance: cur, driverId: cur.driverId ?? r?.id ?? null });
  };

  // 1. bring the state up to date
  if ((cur.state === 'requested' || cur.state === 'starting' || cur.state === 'booting') && pilot) {
    mark({ state: 'registered', reason: `pilot ${pilot.id} registered`, pilotId: pilot.id, ...(r && cur.driverId === null ? { driverId: r.id } : {}) });
    learnt.push({ key, kind: 'boot', sec: Math.max(0, (pilot.registeredAt - i.requestedAt) / 1000) });
  }
  if (cur.state === 'requested') {
    if (listed === null) return;
    if (!r) {
      steps.push({ kind: 'create', instance: cur });
      return;
    }
    if (r.state === 'ended') return fail(`its resource ${r.id} ended before its pilot registered (${r.detail})`, 'fizzle');
    mark({ state: r.state === 'running' ? 'booting' : 'starting', reason: `adopted ${r.id}: the create had been made before a restart`, driverId: r.id });
  }
  if (cur.state === 'starting' || cur.state === 'booting') {
    if (listed !== null && !r && since(cur.startedAt) > LIST_GRACE_SEC) {
      return fail(`vanished: the driver no longer lists ${cur.driverId ?? cur.key}, and no pilot registered`, 'fizzle');
    }
    if (r?.state === 'ended') return fail(`its machine ended before its pilot registered (${r.detail})`, 'fizzle');
    if (r?.state === 'running' && cur.state === 'starting') mark({ state: 'booting', reason: `the driver says ${r.id} runs` });
    if (cur.state === 'starting' && since(cur.startedAt) > ep.timeouts.bootSec) {
      return fail(`boot timeout: not running ${ep.timeouts.bootSec} s after the create`, 'boot-timeout');
    }
    if (cur.state === 'booting' && since(cur.bootedAt ?? cur.startedAt) > ep.timeouts.registrationSec) {
      return fail(`registration timeout: no pilot registered ${ep.timeouts.registrationSec} s after it ran`, 'registration-timeout');
    }
    return;
  }
  if (cur.state === 'registered') {
    if (!pilot) return;
    if (pilot.state === 'halted') {
      const code = pilot.shutdownCode;
      if (code === null && r?.state !== 'ended' && (now - (pilot.haltedAt ?? now)) / 1000 < SHUTDOWN_REPORT_GRACE_SEC) return;
      mark({ state: 'halted', reason: `pilot ${pilot.id} halted${code === null ? '' : ` with shutdown code ${code}`}` });
      const verdict = judgeEnd({ startedAt: cur.startedAt ?? cur.requestedAt, endedAt: pilot.haltedAt ?? now, shutdownCode: code, payloadsRun: pilot.payloadsRun }, ep.backoff);
      learnt.push({ key, kind: 'end', noWork: verdict.noWork });
      if (verdict.fizzle) learnt.push({ key, kind: 'failure', failure: 'fizzle', reason: verdict.reason });
      else if (verdict.good) learnt.push({ key, kind: 'success' });
      steps.push({ kind: 'remove', instance: cur, driverId: cur.driverId ?? r?.id ?? null });
      return;
    }
    if (pilot.state === 'stalled' && pilot.stalledAt !== null && (now - pilot.stalledAt) / 1000 > ep.timeouts.stalledGraceSec) {
      return fail(`pilot ${pilot.id} stalled for more than ${ep.timeouts.stalledGraceSec} s`, null);
    }
    if (listed !== null && !r && since(cur.startedAt) > LIST_GRACE_SEC) {
      return fail(`vanished: the driver no longer lists ${cur.driverId ?? cur.key} while pilot ${pilot.id} had not halted`, null);
    }
    if (r?.state === 'ended') {
      // its last reports may still be on their way (an agent that halts exits right after it reported): wait for them a while
      if (pilot.lastContactAt !== null && (now - pilot.lastContactAt) / 1000 < SHUTDOWN_REPORT_GRACE_SEC) return;
      return fail(`its machine ended (${r.detail}) while pilot ${pilot.id} had not halted`, null);
    }
    const shape = ep.shapes.find((s) => s.name === cur.shape);
    const life = shape ? maxLifeSec(ep, shape) : ep.timeouts.maxLifetimeSec;
    if (cur.drainAt === null && since(cur.startedAt) >= life) {
      steps.push({ kind: 'drain', instance: cur, pilotId: pilot.id, reason: `maximum lifetime of ${life} s reached` });
    } else if (cur.drainAt !== null && (now - cur.drainAt) / 1000 >= ep.timeouts.drainGraceSec) {
      // the drain's own reason (maximum lifetime, or an operator's `instances stop`) says why it was asked
      const why = cur.reason.startsWith('draining: ') ? cur.reason.slice('draining: '.length) : 'maximum lifetime';
      return fail(`${why}: drained ${ep.timeouts.drainGraceSec} s ago and still not halted`, null);
    }
    return;
  }
  if (cur.state === 'halted' || cur.state === 'failed') {
    steps.push({ kind: 'remove', instance: cur, driverId: cur.driverId ?? r?.id ?? null });
  }
}
