/**
 * What may be started where, for the decision: the checks of an endpoint
 * (enabled, its instance and starts-per-cycle limits, the group's instance
 * quota) and of one of its offerings (backoff, price, its core limit, the
 * group's core quota), each returning the price to start at or the reason
 * not to. Pure.
 */
import type { DecisionInput, EndpointState, LiveCount, NotMoreReason } from './decide.js';
import type { DemandItem } from './demand.js';
import { type ShapeConfig, quotaFor } from './endpoint-config.js';
import { backoffAt, describeBackoff } from './failure-memory.js';

/** What the decision has counted so far on one endpoint: live and planned. */
export interface Counters {
  instances: number;
  cores: number;
  starts: number;
  byGroup: Map<string, LiveCount>;
}

/** Why nothing of this endpoint can be started for anyone now (disabled, its limits), or null. */
export function endpointWideBlock(ep: EndpointState, c: Counters): readonly [NotMoreReason, string] | null {
  const l = ep.config.limits;
  if (!ep.enabled) return ['disabled', 'disabled by an operator'];
  if (c.instances >= l.instances) return ['limit', `instances: ${c.instances} of ${l.instances}`];
  if (c.starts >= l.startsPerCycle) return ['limit', `startsPerCycle: ${l.startsPerCycle} started this cycle`];
  return null;
}

/** Why nothing of this endpoint can be started for `group` by its quota, or null. */
export function groupBlock(ep: EndpointState, c: Counters, group: string): readonly [NotMoreReason, string] | null {
  const q = quotaFor(ep.config, group)!;
  const g = c.byGroup.get(group) ?? { instances: 0, cores: 0 };
  if (q.maxInstances !== null && g.instances >= q.maxInstances) return ['quota', `${group}: maxInstances ${q.maxInstances}`];
  return null;
}

/** The price of one offering if it may be started now, or why not. */
export function offeringBlock(
  input: Pick<DecisionInput, 'failures' | 'prices'>,
  ep: EndpointState,
  c: Counters,
  group: string,
  shape: ShapeConfig,
  key: string,
  now: number,
): { price: number } | { reason: NotMoreReason; detail: string } {
  const off = backoffAt(input.failures, key, now);
  if (off) return { reason: 'backoff', detail: describeBackoff(key, off, now) };
  const price = shape.price === null ? shape.costPerHour : input.prices.get(key);
  if (price === undefined) return { reason: 'price', detail: shape.price!.file === null ? `${key}: no current price from its driver` : `${key}: no current price in ${shape.price!.file} (key ${shape.price!.key})` };
  if (shape.maxCostPerHour !== null && price > shape.maxCostPerHour) return { reason: 'price', detail: `${key}: ${price} per hour is above its cap ${shape.maxCostPerHour}` };
  const l = ep.config.limits;
  if (c.cores + shape.cores > l.cores) return { reason: 'limit', detail: `cores: ${c.cores} of ${l.cores}, ${shape.name} has ${shape.cores}` };
  const q = quotaFor(ep.config, group)!;
  const g = c.byGroup.get(group) ?? { instances: 0, cores: 0 };
  if (q.maxCores !== null && g.cores + shape.cores > q.maxCores) return { reason: 'quota', detail: `${group}: maxCores ${q.maxCores}, ${g.cores} in use, ${shape.name} has ${shape.cores}` };
  return { price };
}

/** What payloads of `d` need, in words, for `no-fitting-shape`. */
export function noFitDetail(d: DemandItem): string {
  const need = [d.wholeNode ? 'a whole machine' : `${d.cores} cores`];
  if (d.memoryMb > 0) need.push(`${d.memoryMb} MB`);
  if (d.wallSec !== null) need.push(`${d.wallSec} s`);
  if (d.requirementClass !== '') need.push(`class ${d.requirementClass}`);
  return `payloads need ${need.join(', ')}`;
}
