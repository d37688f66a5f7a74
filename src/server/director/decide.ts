/**
 * The director's decision: which machines to start where so that the
 * queued work fits, and a record per endpoint that explains it. A pure
 * function of demand (queued payloads in fair-share order), supply (the room
 * there is, supply.ts), the endpoints with their live counts, failure
 * memory, prices and what was learnt of each offering.
 *
 * 1. Demand goes first onto the supply (first fit, serving pilots before
 *    machines still coming); only what does not fit there is unmet.
 * 2. Unmet demand, in fair-share order, goes onto machines this decision
 *    plans (first fit), and when it fits none, a new machine is planned: of
 *    the offering cheapest per useful core-hour (offerings.ts) among those
 *    allowed: endpoint enabled, the group served, a shape that fits the
 *    payload, not backed off, a known price within its cap, and within every
 *    limit (instances, cores, starts per cycle) and the group's quota.
 * 3. Every machine planned holds at least one queued payload: never more
 *    than demand. What is still unmet is explained per endpoint.
 *
 * Reasons an endpoint did not start more (docs/director.md):
 * - `disabled`: an operator disabled it;
 * - `no-demand`: no unmet work it serves;
 * - `no-fitting-shape`: work it serves needs more cores, memory, time, or a class none of its shapes has;
 * - `backoff`: the shape that fits is backed off by failure memory;
 * - `price`: its price is unknown (price source) or above its cap;
 * - `limit`: its instance, core or starts-per-cycle limit;
 * - `quota`: the group's quota on it;
 * - `cheaper-elsewhere`: it could have, but a cheaper offering took the work.
 */
import { type DemandItem, demandTotals } from './demand.js';
import { type EndpointConfig, type ShapeConfig, maxLifeSec, quotaFor } from './endpoint-config.js';
import { type FailureMemory, offeringKey } from './failure-memory.js';
import { NO_STATS, type OfferingCost, type OfferingStats, compareCost, usefulCost } from './offerings.js';
import { endpointWideBlock, groupBlock, noFitDetail, offeringBlock } from './allowed.js';
import { type HeldBack, type LostCandidate, type PriceFrom, lostCandidates, priceOrigin } from './choice.js';
import { type Room, coresUsed, placeOnSupply, shapeFits, take, unitsThatFit } from './placement.js';
import type { Supply, SupplyCount } from './supply.js';

/** Live instances (not deleted) of one endpoint, in all and per group started for. */
export interface LiveCount {
  instances: number;
  cores: number;
}

/** An endpoint as the decision sees it. */
export interface EndpointState {
  config: EndpointConfig;
  enabled: boolean;
  live: LiveCount;
  liveByGroup: ReadonlyMap<string, LiveCount>;
}

/** What the decision is a function of. */
export interface DecisionInput {
  now: number;
  demand: readonly DemandItem[];
  supply: Supply;
  endpoints: readonly EndpointState[];
  failures: FailureMemory;
  /** The current price per hour of shapes with a price source, by offering key; absent: unknown. */
  prices: ReadonlyMap<string, number>;
  /** Where each of those prices came from, in words (PriceSource.origins); absent: said by its kind only. */
  priceOrigins?: ReadonlyMap<string, string>;
  stats: ReadonlyMap<string, OfferingStats>;
}

/** One machine to start. */
export interface PlannedStart {
  endpoint: string;
  shape: string;
  cores: number;
  memoryMb: number;
  /** The group whose payload made it needed (its quota is charged). */
  forGroup: string;
  requirementClass: string;
  /** Queued payloads placed on it. */
  payloads: number;
  /** Cores those payloads use. */
  usefulCores: number;
  costPerHour: number;
  /** costPerHour over its cores. */
  pricePerCoreHour: number;
  priceFrom: PriceFrom;
  /** That source in words: the setting, the price file and key, the driver's offer. */
  priceDetail: string;
  /** The other offerings that could have served the work it was started for, and why each lost. */
  lost: LostCandidate[];
  lifetimeSec: number;
}

/** Why an endpoint did not start more. */
export type NotMoreReason = 'disabled' | 'no-demand' | 'no-fitting-shape' | 'backoff' | 'price' | 'limit' | 'quota' | 'cheaper-elsewhere';

/** One reason, with the payloads it held back there. */
export interface ReasonCount {
  reason: NotMoreReason;
  /** Which limit, quota, shape or offering, in words. */
  detail: string;
  payloads: number;
}

/** The record of one endpoint in one decision. */
export interface EndpointDecision {
  endpoint: string;
  enabled: boolean;
  /** Unmet demand (after supply) in groups it serves. */
  demand: { payloads: number; cores: number };
  /** Supply counted on its machines. */
  supply: SupplyCount;
  live: LiveCount;
  started: { shape: string; instances: number; cores: number; payloads: number }[];
  /** Empty when it started all it could usefully start. Most payloads first. */
  notMore: ReasonCount[];
}

/** The decision. */
export interface Decision {
  at: number;
  /** All queued work seen. */
  demand: { payloads: number; cores: number };
  /** Of it, what fits the supply. */
  onSupply: { payloads: number; cores: number };
  /** Of it, what the starts take. */
  onStarts: { payloads: number; cores: number };
  supply: SupplyCount;
  starts: PlannedStart[];
  endpoints: EndpointDecision[];
}

interface Planned extends Room {
  start: PlannedStart;
  endpointIndex: number;
}

interface Offering {
  e: number;
  s: number;
  shape: ShapeConfig;
  price: number;
  cost: OfferingCost;
}

/** Decide. Pure. */
export function decide(input: DecisionInput): Decision {
  const { now, endpoints } = input;
  const remaining = input.demand.filter((d) => d.count > 0).map((d) => ({ ...d }));
  const byName = new Map(endpoints.map((ep) => [ep.config.name, ep.config]));
  // a machine of an endpoint serves the groups its endpoint serves; a pilot no instance started, any
  const serves = (endpoint: string | null, group: string) => {
    const config = endpoint === null ? undefined : byName.get(endpoint);
    return config === undefined || quotaFor(config, group) !== null;
  };
  const onSupply = placeOnSupply(remaining, input.supply, serves);

  const ctr = endpoints.map((ep) => ({
    instances: ep.live.instances,
    cores: ep.live.cores,
    starts: 0,
    byGroup: new Map([...ep.liveByGroup].map(([g, c]) => [g, { ...c }])),
    demandPayloads: 0,
    demandCores: 0,
    started: new Map<string, { instances: number; cores: number; payloads: number }>(),
    reasons: new Map<string, ReasonCount>(),
  }));
  // a reason's key, made once for a reason met again and again (an endpoint at its limit, for every
  // item of a long queue), so that counting it builds no string per item
  const keys = new WeakMap<readonly [NotMoreReason, string], string>();
  const keyOf = (b: readonly [NotMoreReason, string]) => {
    let k = keys.get(b);
    if (k === undefined) keys.set(b, (k = `${b[0]}\0${b[1]}`));
    return k;
  };
  const note = (e: number, b: readonly [NotMoreReason, string], payloads: number) => {
    const k = keyOf(b);
    const r = ctr[e]!.reasons.get(k);
    if (r) r.payloads += payloads;
    else ctr[e]!.reasons.set(k, { reason: b[0], detail: b[1], payloads });
  };
  // why no machine of an endpoint may start for anyone, kept until its counters change
  const wide = endpoints.map(() => ({ instances: -1, starts: -1, why: null as readonly [NotMoreReason, string] | null }));
  const wideBlock = (e: number) => {
    const c = ctr[e]!;
    const w = wide[e]!;
    if (w.instances !== c.instances || w.starts !== c.starts) Object.assign(w, { instances: c.instances, starts: c.starts, why: endpointWideBlock(endpoints[e]!, c) });
    return w.why;
  };
  // the reasons that held back the rest of an item (by endpoint), taken back when a later machine takes some of it
  const heldBack = new Map<number, (readonly [NotMoreReason, string] | null)[]>();
  const unnote = (j: number, n: number) => {
    (heldBack.get(j) ?? []).forEach((b, e) => {
      if (!b) return;
      const k = keyOf(b);
      const r = ctr[e]!.reasons.get(k);
      if (!r) return;
      r.payloads -= Math.min(n, r.payloads);
      if (r.payloads === 0) ctr[e]!.reasons.delete(k);
    });
  };
  const served = (e: number, group: string) => quotaFor(endpoints[e]!.config, group) !== null;

  // cores of unmet work from each item on, to guess how full a new machine would be
  const restCores = new Array<number>(remaining.length + 1).fill(0);
  for (let i = remaining.length - 1; i >= 0; i--) restCores[i] = restCores[i + 1]! + remaining[i]!.count * remaining[i]!.cores;

  const planned: Planned[] = [];
  const starts: PlannedStart[] = [];
  let startsPayloads = 0;
  let startsCores = 0;

  // items considered earlier that are still (partly) unmet, in order
  let pending: number[] = [];
  // once every endpoint is at a limit for anyone (it stays so: counters only grow), the rest of the
  // queue can go only onto machines already planned; what is left of it is counted per group and
  // noted once per endpoint at the end, not item by item (a long queue at its limits: 100k payloads)
  let closed = false;
  const late = new Map<string, { payloads: number; cores: number; unmet: number }>();
  for (let i = 0; i < remaining.length; i++) {
    const d = remaining[i]!;
    if (d.count === 0) continue;
    closed ||= endpoints.every((_, e) => wideBlock(e) !== null);
    if (closed) {
      const g = late.get(d.group) ?? { payloads: 0, cores: 0, unmet: 0 };
      g.payloads += d.count;
      g.cores += d.count * d.cores;
      late.set(d.group, g);
    } else {
      for (let e = 0; e < endpoints.length; e++) {
        if (!served(e, d.group)) continue;
        ctr[e]!.demandPayloads += d.count;
        ctr[e]!.demandCores += d.count * d.cores;
      }
    }
    // onto machines already planned
    for (const p of planned) {
      const n = served(p.endpointIndex, d.group) ? unitsThatFit(d, p) : 0;
      if (n === 0) continue;
      take(d, p, n);
      d.count -= n;
      p.start.payloads += n;
      p.start.usefulCores += coresUsed(d, n, p.totalCores);
      startsPayloads += n;
      startsCores += n * d.cores;
      for (let e = 0; e < endpoints.length; e++) {
        if (e !== p.endpointIndex && served(e, d.group)) note(e, ['cheaper-elsewhere', `taken by machines started on ${p.start.endpoint}`], n);
      }
      if (d.count === 0) break;
    }
    if (closed) {
      late.get(d.group)!.unmet += d.count;
      continue;
    }
    // onto new machines, cheapest first, while any is allowed
    while (d.count > 0) {
      const blocked: (readonly [NotMoreReason, string] | null)[] = [];
      const allowed: Offering[] = [];
      // shapes that fit but were held back, for the record of a start (choice.ts)
      const heldShapes: HeldBack[] = [];
      for (let e = 0; e < endpoints.length; e++) {
        const ep = endpoints[e]!;
        if (!served(e, d.group)) {
          blocked.push(null);
          continue;
        }
        const why = wideBlock(e) ?? groupBlock(ep, ctr[e]!, d.group);
        if (why) {
          blocked.push(why);
          continue;
        }
        let first: readonly [NotMoreReason, string] | null = null;
        let fitted = false;
        for (let s = 0; s < ep.config.shapes.length; s++) {
          const shape = ep.config.shapes[s]!;
          const life = maxLifeSec(ep.config, shape);
          if (!shapeFits(d, shape, life)) continue;
          fitted = true;
          const key = offeringKey(ep.config.name, shape.name);
          const got = offeringBlock(input, ep, ctr[e]!, d.group, shape, key, now);
          if ('reason' in got) {
            first ??= [got.reason, got.detail];
            heldShapes.push({ endpoint: ep.config, shape, reason: got.reason, detail: got.detail });
            continue;
          }
          const fill = d.wholeNode ? shape.cores : Math.min(shape.cores, d.count * d.cores + restCores[i + 1]!);
          allowed.push({ e, s, shape, price: got.price, cost: usefulCost(got.price, Math.max(1, fill), life, input.stats.get(key) ?? NO_STATS) });
        }
        blocked.push(fitted ? first : ['no-fitting-shape', noFitDetail(d)]);
      }
      if (allowed.length === 0) {
        blocked.forEach((b, e) => b && note(e, b, d.count));
        heldBack.set(i, blocked);
        break;
      }
      allowed.sort((a, b) => compareCost(a.cost, b.cost) || a.e - b.e || a.s - b.s);
      const best = allowed[0]!;
      const ep = endpoints[best.e]!;
      const life = maxLifeSec(ep.config, best.shape);
      const contenders = allowed.map((o) => ({ endpoint: endpoints[o.e]!.config, shape: o.shape, price: o.price, cost: o.cost }));
      const room: Planned = {
        freeCores: best.shape.cores,
        totalCores: best.shape.cores,
        freeMemoryMb: best.shape.memoryMb,
        remainingSec: life,
        shape: best.shape,
        endpointIndex: best.e,
        start: {
          endpoint: ep.config.name,
          shape: best.shape.name,
          cores: best.shape.cores,
          memoryMb: best.shape.memoryMb,
          forGroup: d.group,
          requirementClass: d.requirementClass,
          payloads: 0,
          usefulCores: 0,
          costPerHour: best.price,
          pricePerCoreHour: best.price / best.shape.cores,
          ...priceOrigin(input, ep.config.name, best.shape),
          lost: lostCandidates(input, contenders, heldShapes, blocked.map((b, e) => b && { endpoint: endpoints[e]!.config, shape: null, reason: b[0], detail: b[1] })),
          lifetimeSec: life,
        },
      };
      // the queue's picker hands a new machine to the first payload in fair-share order that fits,
      // whatever it was started for: so work still unmet from before goes on it first
      const fill = (x: DemandItem) => {
        const n = unitsThatFit(x, room);
        take(x, room, n);
        x.count -= n;
        room.start.payloads += n;
        room.start.usefulCores += coresUsed(x, n, room.totalCores);
        startsPayloads += n;
        startsCores += n * x.cores;
        return n;
      };
      for (const j of pending) {
        if (room.freeCores <= 0) break;
        if (remaining[j]!.count > 0 && served(best.e, remaining[j]!.group)) unnote(j, fill(remaining[j]!));
      }
      // met ones go (only here, where a machine took some: filtering at every item made a queue of
      // unmet work quadratic, 179 s a cycle for 100k queued payloads that could not start)
      pending = pending.filter((j) => remaining[j]!.count > 0);
      const n = fill(d);
      planned.push(room);
      starts.push(room.start);
      const c = ctr[best.e]!;
      c.instances++;
      c.cores += best.shape.cores;
      c.starts++;
      const g = c.byGroup.get(d.group) ?? { instances: 0, cores: 0 };
      g.instances++;
      g.cores += best.shape.cores;
      c.byGroup.set(d.group, g);
      const st = c.started.get(best.shape.name) ?? { instances: 0, cores: 0, payloads: 0 };
      st.instances++;
      st.cores += best.shape.cores;
      st.payloads += room.start.payloads;
      c.started.set(best.shape.name, st);
      // the others that serve this work: cheaper elsewhere, or their own reason
      const cheaper = new Set(allowed.map((o) => o.e));
      blocked.forEach((b, e) => {
        if (e === best.e) return;
        if (cheaper.has(e)) note(e, ['cheaper-elsewhere', `${ep.config.name}/${best.shape.name} is cheaper per useful core-hour`], n);
        else if (b) note(e, b, n);
      });
    }
    if (d.count > 0) pending.push(i);
  }
  for (const [group, g] of late) {
    for (let e = 0; e < endpoints.length; e++) {
      if (!served(e, group)) continue;
      ctr[e]!.demandPayloads += g.payloads;
      ctr[e]!.demandCores += g.cores;
      if (g.unmet > 0) note(e, wideBlock(e)!, g.unmet);
    }
  }

  const records: EndpointDecision[] = endpoints.map((ep, e) => {
    const c = ctr[e]!;
    const notMore = [...c.reasons.values()].sort((a, b) => b.payloads - a.payloads || a.reason.localeCompare(b.reason));
    if (!ep.enabled && !notMore.some((r) => r.reason === 'disabled')) notMore.unshift({ reason: 'disabled', detail: 'disabled by an operator', payloads: 0 });
    if (c.demandPayloads === 0 && ep.enabled) notMore.push({ reason: 'no-demand', detail: 'no unmet queued work in the groups it serves', payloads: 0 });
    return {
      endpoint: ep.config.name,
      enabled: ep.enabled,
      demand: { payloads: c.demandPayloads, cores: c.demandCores },
      supply: input.supply.byEndpoint.get(ep.config.name) ?? { freeCores: 0, comingCores: 0, machines: 0 },
      live: { instances: c.instances, cores: c.cores },
      started: [...c.started].map(([shape, s]) => ({ shape, ...s })),
      notMore,
    };
  });
  return {
    at: now,
    demand: demandTotals(input.demand),
    onSupply,
    onStarts: { payloads: startsPayloads, cores: startsCores },
    supply: input.supply.total,
    starts,
    endpoints: records,
  };
}
