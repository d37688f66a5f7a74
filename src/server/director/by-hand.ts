/**
 * What an operator does through the director, beside its loop: start
 * instances whatever the demand (`instances start`, an endpoint test) and
 * stop them (`instances stop`: drain, then discard, by the rule of
 * stop.ts). Both only change records; the loop's next cycle (the Director
 * pokes it) makes the machines at their drivers or removes them.
 */
import type { StopResult } from '../../protocol/index.js';
import type { Clock } from '../../shared/clock.js';
import { VmpilotError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { type Secrets, credentialHash, resourcePrefix } from './credential.js';
import { type EndpointConfig, servedGroups } from './endpoint-config.js';
import { offeringKey } from './failure-memory.js';
import { isLive } from './instance-states.js';
import type { DirectorStore, Driver, InstanceRecord } from './ports.js';
import type { PriceSource } from './prices.js';
import { STOPPED_REASON, stopResultOf, stopStepFor } from './stop.js';

/** What the operator's actions need of the director. */
export interface HandDeps {
  store: DirectorStore;
  clock: Clock;
  log: Logger;
  directorId: string;
  drivers: ReadonlyMap<string, Driver>;
  byName: ReadonlyMap<string, EndpointConfig>;
  secrets: Secrets;
  prices?: PriceSource;
}

/** What `instances start` may say besides the endpoint. */
export interface StartOptions {
  shape?: string;
  count?: number;
  groups?: readonly string[];
}

/**
 * Record `count` instances of `shape` (default: the endpoint's first shape)
 * on `endpoint`, `requested` and `manual`; the next cycle makes them at the
 * driver under their keys, and they are discarded by the same rules as the
 * rest. `groups` narrows what their pilots may serve (default: the
 * endpoint's groups). Refused, with nothing recorded, for an unknown
 * endpoint or shape (VMP_NOT_FOUND), a disabled endpoint or one past its
 * instance or core limit (VMP_CONFLICT, naming the limit).
 */
export async function startByHand(d: HandDeps, endpoint: string, o: StartOptions = {}): Promise<InstanceRecord[]> {
  const ep = d.byName.get(endpoint);
  if (!ep) throw new VmpilotError('VMP_NOT_FOUND', `no endpoint "${endpoint}"; configured: ${[...d.byName.keys()].join(', ') || 'none'}`);
  const shape = o.shape === undefined ? ep.shapes[0] : ep.shapes.find((s) => s.name === o.shape);
  if (!shape) throw new VmpilotError('VMP_NOT_FOUND', `endpoint ${endpoint} has no shape "${o.shape}"; it has ${ep.shapes.map((s) => s.name).join(', ')}`);
  const count = o.count ?? 1;
  if (!Number.isInteger(count) || count < 1 || count > 1000) throw new VmpilotError('VMP_BAD_REQUEST', `count must be a whole number from 1 to 1000, not ${count}`);
  const disabled = await d.store.disabledEndpoints();
  if (!ep.enabled || disabled.has(ep.name)) throw new VmpilotError('VMP_CONFLICT', `endpoint ${endpoint} is disabled: enable it first (vmpilot-server endpoint enable ${endpoint})`);
  if (!d.drivers.has(ep.name)) throw new VmpilotError('VMP_CONFLICT', `endpoint ${endpoint} has no driver in this server`);
  const live = (await d.store.liveInstances()).filter((i) => i.endpoint === ep.name && isLive(i.state));
  const cores = live.reduce((n, i) => n + i.cores, 0);
  if (live.length + count > ep.limits.instances) {
    throw new VmpilotError('VMP_CONFLICT', `endpoint ${endpoint}: limits.instances is ${ep.limits.instances} and ${live.length} are live; ${count} more would pass it`);
  }
  if (cores + count * shape.cores > ep.limits.cores) {
    throw new VmpilotError('VMP_CONFLICT', `endpoint ${endpoint}: limits.cores is ${ep.limits.cores} and ${cores} are live; ${count} × ${shape.cores} more would pass it`);
  }
  const at = d.clock.now();
  const out: InstanceRecord[] = [];
  for (let n = 0; n < count; n++) {
    out.push(
      await d.store.createInstance(
        {
          key: d.secrets.key(resourcePrefix(d.directorId, ep.name)),
          endpoint: ep.name,
          shape: shape.name,
          cores: shape.cores,
          memoryMb: shape.memoryMb,
          forGroup: null,
          requirementClass: '',
          groups: o.groups ? Object.freeze([...o.groups]) : servedGroups(ep),
          // a fresh credential is made when the cycle issues the create; this hash is nobody's
          credentialHash: credentialHash(d.secrets.credential()),
          costPerHour: shape.price === null ? shape.costPerHour : ((await d.prices?.prices([ep]))?.get(offeringKey(ep.name, shape.name)) ?? shape.costPerHour),
          manual: true,
        },
        at,
      ),
    );
  }
  return out;
}

/**
 * Stop instances by the per-state rule of stop.ts: a registered instance's
 * pilot is asked to drain and its `drainAt` set (the reconcile deletes it
 * once the pilot halts, or terminates it the drain grace later); one not
 * yet registered is marked failed and deleted next cycle; an ended or
 * unknown one is reported as such. One result per id, in order; `drained`:
 * the pilots asked to drain (to wake).
 */
export async function stopByHand(d: HandDeps, ids: readonly number[]): Promise<{ results: StopResult[]; drained: number[] }> {
  const { store, clock } = d;
  const results: StopResult[] = [];
  const drained: number[] = [];
  for (const id of ids) {
    const before = await store.getInstance(id);
    const step = stopStepFor(before);
    try {
      if (step.kind === 'drain') {
        await store.drainPilot(step.pilotId, STOPPED_REASON, clock.now());
        await store.updateInstance(id, { state: 'registered', reason: `draining: ${STOPPED_REASON}`, drainAt: clock.now() }, clock.now());
        drained.push(step.pilotId);
      } else if (step.kind === 'fail') {
        await store.updateInstance(id, { state: 'failed', reason: STOPPED_REASON }, clock.now());
      }
      results.push(stopResultOf(id, before, step));
    } catch (err) {
      // a cycle moved it meanwhile (its pilot halted, it failed): say what it is now
      if (!(err instanceof VmpilotError && err.code === 'VMP_CONFLICT')) throw err;
      const now = await store.getInstance(id);
      const again = stopStepFor(now);
      results.push(stopResultOf(id, now, again.kind === 'none' ? again : { kind: 'none', outcome: 'already-ended' }));
    }
  }
  d.log.info({ ids, results: results.map((r) => `${r.id}:${r.outcome}`) }, 'instances stopped by an operator');
  return { results, drained };
}
