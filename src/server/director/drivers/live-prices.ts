/**
 * Prices a driver knows live (ec2: the cheapest offer of a shape, spot or
 * on-demand), for the shapes whose `price` is `{ from: driver }`, as the
 * director's price source (prices.ts PriceSource), beside the price files.
 */
import type { EndpointConfig } from '../endpoint-config.js';
import { offeringKey } from '../failure-memory.js';
import type { Driver } from '../ports.js';
import type { PriceSource } from '../prices.js';

/** A driver that can say a shape's current price per hour. */
export interface LivePrices {
  /** The price per hour an instance of `shape` would cost now; null: none known (it is not started). */
  shapePrice(shape: string): Promise<number | null>;
  /** Where the last price `shapePrice(shape)` said came from, in words (e.g. the spot price history's type and zone); null: none said. */
  priceOrigin?(shape: string): string | null;
}

/** True when `d` says live prices. */
export function hasLivePrices(d: Driver): d is Driver & LivePrices {
  return typeof (d as Partial<LivePrices>).shapePrice === 'function';
}

/** The prices of shapes `{ from: driver }` from their endpoints' drivers, and the rest from `others` (the price files). */
export class DriverPrices implements PriceSource {
  private last = new Map<string, string>();

  constructor(
    private readonly drivers: ReadonlyMap<string, Driver>,
    private readonly others?: PriceSource,
  ) {}

  async prices(endpoints: readonly EndpointConfig[]): Promise<Map<string, number>> {
    const out = (await this.others?.prices(endpoints)) ?? new Map<string, number>();
    const origins = new Map(this.others?.origins?.() ?? []);
    for (const ep of endpoints) {
      const d = this.drivers.get(ep.name);
      for (const shape of ep.shapes) {
        if (shape.price?.file !== null || !d || !hasLivePrices(d)) continue;
        const p = await d.shapePrice(shape.name).catch(() => null);
        if (p !== null && Number.isFinite(p) && p >= 0) {
          out.set(offeringKey(ep.name, shape.name), p);
          origins.set(offeringKey(ep.name, shape.name), d.priceOrigin?.(shape.name) ?? `the ${d.kind} driver`);
        }
      }
    }
    this.last = origins;
    return out;
  }

  origins(): ReadonlyMap<string, string> {
    return this.last;
  }
}
