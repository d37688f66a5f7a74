/**
 * What `director status` says of each start a decision made: the offering
 * chosen, its price per core-hour and where that price came from, and the
 * other offerings that could have served the same work with why each lost
 * (backed off, over a limit or quota, no price, dearer). Pure; decide.ts
 * calls it with what it already knows when it plans a machine.
 */
import type { DecisionInput, NotMoreReason } from './decide.js';
import type { EndpointConfig, ShapeConfig } from './endpoint-config.js';
import { offeringKey } from './failure-memory.js';
import type { OfferingCost } from './offerings.js';

/** Where a start's price came from: the shape's `costPerHour`, a price file, or its driver (ec2: spot price history or on-demand price). */
export type PriceFrom = 'configured' | 'price-file' | 'driver';

/** An offering that could have served the work a start was made for, and why it lost. */
export interface LostCandidate {
  endpoint: string;
  /** null: the whole endpoint was held back (a limit, the group's quota, no shape fits). */
  shape: string | null;
  reason: NotMoreReason | 'dearer';
  detail: string;
  /** Its price per core-hour when known. */
  pricePerCoreHour: number | null;
}

/** At most this many losers are kept per start (the cheapest dearer ones first, then the held back). */
export const MAX_LOST = 8;

/** An offering the decision could have chosen (allowed), with its cost. */
export interface Contender {
  endpoint: EndpointConfig;
  shape: ShapeConfig;
  price: number;
  cost: OfferingCost;
}

/** One shape, or a whole endpoint (shape null), held back for the work. */
export interface HeldBack {
  endpoint: EndpointConfig;
  shape: ShapeConfig | null;
  reason: NotMoreReason;
  detail: string;
}

/** Where the price of `shape` on `endpoint` came from, and that in words. */
export function priceOrigin(input: Pick<DecisionInput, 'priceOrigins'>, endpoint: string, shape: ShapeConfig): { priceFrom: PriceFrom; priceDetail: string } {
  if (shape.price === null) return { priceFrom: 'configured', priceDetail: `shapes.${shape.name}.costPerHour` };
  const said = input.priceOrigins?.get(offeringKey(endpoint, shape.name));
  if (shape.price.file !== null) return { priceFrom: 'price-file', priceDetail: said ?? `price file ${shape.price.file} (key ${shape.price.key})` };
  return { priceFrom: 'driver', priceDetail: said ?? 'its driver' };
}

/** The price per core-hour of a shape as far as the decision knows it (null: unknown). */
export function knownPricePerCoreHour(input: Pick<DecisionInput, 'prices'>, endpoint: string, shape: ShapeConfig): number | null {
  const price = shape.price === null ? shape.costPerHour : input.prices.get(offeringKey(endpoint, shape.name));
  return price === undefined ? null : price / shape.cores;
}

const money = (x: number) => (Number.isFinite(x) ? x.toFixed(4) : String(x));

/** Why `other` lost to `best` although it was allowed. */
function dearer(other: Contender, best: Contender): string {
  const chosen = `${best.endpoint.name}/${best.shape.name}`;
  if (other.cost.money > best.cost.money) return `${money(other.cost.money)} per useful core-hour against ${money(best.cost.money)} on ${chosen}`;
  if (other.cost.hours > best.cost.hours) return `as cheap, but ${other.cost.hours.toFixed(3)} instance-hours per useful core-hour against ${best.cost.hours.toFixed(3)} on ${chosen}`;
  return `as cheap as ${chosen}, which is configured first`;
}

/**
 * The losers of one start: the other allowed offerings (`contenders`, the
 * chosen one first, then cheapest first), the shapes held back, and the
 * endpoints held back as a whole (`endpoints`: an endpoint's reason, or
 * null; one with a shape held back is named by that shape), at most
 * MAX_LOST.
 */
export function lostCandidates(input: Pick<DecisionInput, 'prices'>, contenders: readonly Contender[], shapes: readonly HeldBack[], endpoints: readonly (HeldBack | null)[]): LostCandidate[] {
  const best = contenders[0]!;
  const held = [...shapes, ...endpoints.filter((h): h is HeldBack => h !== null && !shapes.some((s) => s.endpoint === h.endpoint))];
  const out: LostCandidate[] = [];
  for (const c of contenders) {
    if (out.length >= MAX_LOST) return out;
    if (c === best) continue;
    out.push({ endpoint: c.endpoint.name, shape: c.shape.name, reason: 'dearer', detail: dearer(c, best), pricePerCoreHour: c.price / c.shape.cores });
  }
  for (const h of held) {
    if (out.length >= MAX_LOST) return out;
    out.push({ endpoint: h.endpoint.name, shape: h.shape?.name ?? null, reason: h.reason, detail: h.detail, pricePerCoreHour: h.shape ? knownPricePerCoreHour(input, h.endpoint.name, h.shape) : null });
  }
  return out;
}
