/**
 * What an EC2 shape can be bought as, cheapest first. Pure.
 *
 * An offer is (instance type, zone, market) at a price per hour: spot at
 * the zone's current spot price (DescribeSpotPriceHistory), on-demand at
 * the type's configured on-demand price (EC2's API does not say it). The
 * shape's cores are what its pilot offers whatever the type (a larger type's
 * extra cores are not offered), so the price per core-hour of an offer is
 * its price over the shape's cores, and offers rank by it: spot against
 * on-demand with market `any`. Left out: a spot offer above its cap (the
 * shape's maxPrice, else the type's on-demand price: spot dearer than
 * on-demand is never worth its interruptions), an offer backed off after
 * it had no capacity or too low a price, a zone not configured. An
 * on-demand offer without a configured price ranks after every priced one.
 */
import type { Ec2Settings, Ec2ShapeSettings } from '../../cloud-settings.js';

/** One way to buy a shape. */
export interface Offer {
  instanceType: string;
  /** null: any zone (no subnets or zones configured, and an on-demand offer). */
  zone: string | null;
  subnetId: string | null;
  market: 'spot' | 'on-demand';
  /** Per instance-hour; null: unknown (on-demand without a configured price). */
  price: number | null;
  /** Spot: the MaxPrice asked for (null: EC2's default, the on-demand price). */
  maxPrice: number | null;
}

/** Current spot prices: `type zone` → price per hour. */
export type SpotPriceTable = ReadonlyMap<string, number>;

/** The key of a spot price, and of an offer's backoff. */
export const spotKey = (type: string, zone: string) => `${type} ${zone}`;
export const offerKey = (o: Pick<Offer, 'instanceType' | 'zone' | 'market'>) => `${o.market} ${o.instanceType} ${o.zone ?? '*'}`;

/** The zones an endpoint may use: its subnets' zones, else its zones; empty: any. */
export function zonesOf(s: Ec2Settings): string[] {
  const fromSubnets = Object.keys(s.subnets);
  return fromSubnets.length > 0 ? fromSubnets : [...s.zones];
}

/**
 * Every offer of `shape` not held back at `now`, cheapest per core-hour
 * first (ties: the order the types are configured, then the zone's name).
 */
export function rankOffers(s: Ec2Settings, shape: Ec2ShapeSettings, spot: SpotPriceTable, backedOff: ReadonlyMap<string, number>, now: number): Offer[] {
  const zones = zonesOf(s);
  const offers: Offer[] = [];
  for (const type of shape.instanceTypes) {
    const onDemand = s.onDemandPrices[type] ?? null;
    if (shape.market !== 'on-demand') {
      const cap = shape.maxPrice ?? onDemand;
      // the spot zones: those configured, else every zone the price history names for this type
      const spotZones = zones.length > 0 ? zones : [...spot.keys()].filter((k) => k.startsWith(`${type} `)).map((k) => k.slice(type.length + 1));
      for (const zone of spotZones) {
        const price = spot.get(spotKey(type, zone));
        if (price === undefined || (cap !== null && price > cap)) continue;
        offers.push({ instanceType: type, zone, subnetId: s.subnets[zone] ?? null, market: 'spot', price, maxPrice: cap });
      }
    }
    if (shape.market !== 'spot') {
      for (const zone of zones.length > 0 ? zones : [null]) {
        offers.push({ instanceType: type, zone, subnetId: zone === null ? null : (s.subnets[zone] ?? null), market: 'on-demand', price: onDemand, maxPrice: null });
      }
    }
  }
  const order = new Map(shape.instanceTypes.map((t, i) => [t, i]));
  return offers
    .filter((o) => (backedOff.get(offerKey(o)) ?? 0) <= now)
    .sort((a, b) => {
      if (a.price === null || b.price === null) return a.price === b.price ? 0 : a.price === null ? 1 : -1;
      return a.price - b.price || order.get(a.instanceType)! - order.get(b.instanceType)! || (a.zone ?? '').localeCompare(b.zone ?? '');
    });
}

/** The price per core-hour of an offer for a shape of `cores` cores, for people. */
export function describeOffer(o: Offer, cores: number): string {
  const where = o.zone ?? 'any zone';
  return o.price === null ? `${o.market} ${o.instanceType} in ${where} (no price configured)` : `${o.market} ${o.instanceType} in ${where} at ${o.price}/h (${(o.price / cores).toFixed(4)} per core-hour)`;
}
