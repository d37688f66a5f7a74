/**
 * The director's records as the admin API shows them (protocol/director-messages.ts):
 * an instance with its cost so far, an endpoint with its live counts by
 * state and its offerings' backoff, the instances' cost per group. Pure:
 * the time is passed in.
 */
import type { EndpointView, InstanceCostEntry, InstanceCount, InstanceStateName, InstanceView } from '../../protocol/index.js';
import type { EndpointConfig } from '../director/endpoint-config.js';
import { type FailureMemory, backoffAt, offeringKey } from '../director/failure-memory.js';
import type { InstanceRecord } from '../director/ports.js';

/**
 * What an instance has cost so far: its price per hour × the hours from
 * when its driver accepted it (else when it was requested) to when it was
 * deleted, ended, or now. Pure.
 */
export function costSoFar(i: InstanceRecord, now: number): number {
  return i.costPerHour * hoursSoFar(i, now);
}

/** The hours an instance has counted so far: from when its driver accepted it (else when it was requested) to when it was deleted, ended, or now. Pure. */
export function hoursSoFar(i: InstanceRecord, now: number): number {
  const from = i.startedAt ?? i.requestedAt;
  const to = i.deletedAt ?? i.endedAt ?? now;
  return Math.max(0, to - from) / 3_600_000;
}

/** The group instances started by hand are accounted to. */
export const BY_HAND_GROUP = '(by hand)';

/** Instance-hours, core-hours and cost of `instances`, per group they were started for and endpoint, sorted by group then endpoint. Pure. */
export function instanceCosts(instances: Iterable<InstanceRecord>, now: number): InstanceCostEntry[] {
  const rows = new Map<string, InstanceCostEntry>();
  for (const i of instances) {
    const group = i.manual || i.forGroup === null ? BY_HAND_GROUP : i.forGroup;
    const k = JSON.stringify([group, i.endpoint]);
    const row = rows.get(k) ?? { group, endpoint: i.endpoint, instances: 0, instanceHours: 0, coreHours: 0, cost: 0 };
    const hours = hoursSoFar(i, now);
    row.instances++;
    row.instanceHours += hours;
    row.coreHours += hours * i.cores;
    row.cost += costSoFar(i, now);
    rows.set(k, row);
  }
  return [...rows.values()].sort((a, b) => a.group.localeCompare(b.group) || a.endpoint.localeCompare(b.endpoint));
}

/** An instance as the API shows it: its record without the credential's hash, with its cost so far. Pure. */
export function instanceView(i: InstanceRecord, now: number): InstanceView {
  return {
    id: i.id,
    key: i.key,
    endpoint: i.endpoint,
    shape: i.shape,
    cores: i.cores,
    memoryMb: i.memoryMb,
    forGroup: i.forGroup,
    groups: i.groups,
    state: i.state,
    reason: i.reason,
    driverId: i.driverId,
    pilotId: i.pilotId,
    costPerHour: i.costPerHour,
    costSoFar: costSoFar(i, now),
    manual: i.manual,
    requestedAt: i.requestedAt,
    startedAt: i.startedAt,
    bootedAt: i.bootedAt,
    registeredAt: i.registeredAt,
    drainAt: i.drainAt,
    endedAt: i.endedAt,
    deletedAt: i.deletedAt,
  };
}

/**
 * An endpoint as `endpoints` lists it: its configuration, whether it is
 * started from (config and `endpoint disable`), its live instances by state
 * and cores (`live`: the endpoint's instances that are not deleted), and its
 * offerings backed off at `now`. Pure.
 */
export function endpointView(ep: EndpointConfig, disabled: ReadonlySet<string>, live: readonly InstanceRecord[], memory: FailureMemory, now: number): EndpointView {
  const byState: Partial<Record<InstanceStateName, InstanceCount>> = {};
  let instances = 0;
  let cores = 0;
  for (const i of live) {
    if (i.endpoint !== ep.name || i.state === 'deleted') continue;
    const c = (byState[i.state] ??= { instances: 0, cores: 0 });
    c.instances++;
    c.cores += i.cores;
    instances++;
    cores += i.cores;
  }
  const backoff = ep.shapes.flatMap((s) => {
    const e = backoffAt(memory, offeringKey(ep.name, s.name), now);
    return e ? [{ shape: s.name, until: e.until, failures: e.failures, kind: e.kind, reason: e.reason }] : [];
  });
  const operatorOff = disabled.has(ep.name);
  return {
    name: ep.name,
    driver: ep.driver.kind,
    enabled: ep.enabled && !operatorOff,
    enabledInConfig: ep.enabled,
    disabledByOperator: operatorOff,
    serverUrl: ep.serverUrl,
    shapes: ep.shapes.map((s) => ({
      name: s.name,
      cores: s.cores,
      memoryMb: s.memoryMb,
      lifetimeSec: s.lifetimeSec,
      costPerHour: s.costPerHour,
      price: s.price === null ? null : s.price.file === null ? 'driver' : `file:${s.price.file}#${s.price.key}`,
      maxCostPerHour: s.maxCostPerHour,
    })),
    limits: { ...ep.limits },
    groups: ep.groups === null ? null : [...ep.groups].map(([group, q]) => ({ group, maxInstances: q.maxInstances, maxCores: q.maxCores })),
    live: { instances, cores, byState },
    backoff,
  };
}
