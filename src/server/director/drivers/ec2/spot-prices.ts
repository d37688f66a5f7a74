/**
 * Current spot prices of an endpoint's candidate types, from
 * DescribeSpotPriceHistory with a start time of now (which answers each
 * type's price in each zone as it is now), all pages read, the latest price
 * kept per (type, zone). Kept for `priceCacheSec`: the director asks every
 * cycle, EC2 is asked a few times an hour. A failed ask keeps the prices
 * known if they are not older than twice the cache time, else has none (no
 * price: no spot start, rather than one at a guess).
 */
import { DescribeSpotPriceHistoryCommand, type EC2Client, type _InstanceType } from '@aws-sdk/client-ec2';
import type { Clock } from '../../../../shared/clock.js';
import type { Ec2Settings } from '../../cloud-settings.js';
import { type SpotPriceTable, spotKey, zonesOf } from './offers.js';

/** The spot prices of one endpoint, cached. */
export class SpotPrices {
  private table: { at: number; prices: SpotPriceTable } | null = null;
  private pending: Promise<SpotPriceTable> | null = null;

  constructor(
    private readonly client: EC2Client,
    private readonly s: Ec2Settings,
    private readonly clock: Clock,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** The instance types any spot shape of the endpoint may be. */
  private types(): string[] {
    return [...new Set(Object.values(this.s.shapes).filter((x) => x.market !== 'on-demand').flatMap((x) => x.instanceTypes))];
  }

  /** The current prices (from the cache while it is fresh). */
  async current(): Promise<SpotPriceTable> {
    const fresh = this.table && this.clock.now() - this.table.at < this.s.priceCacheSec * 1000;
    if (fresh || this.types().length === 0) return this.table?.prices ?? new Map();
    this.pending ??= this.ask().finally(() => (this.pending = null));
    return this.pending;
  }

  private async ask(): Promise<SpotPriceTable> {
    const now = this.clock.now();
    try {
      const zones = new Set(zonesOf(this.s));
      const latest = new Map<string, { price: number; at: number }>();
      let token: string | undefined;
      do {
        const page = await this.client.send(
          new DescribeSpotPriceHistoryCommand({
            StartTime: new Date(now),
            InstanceTypes: this.types() as _InstanceType[],
            ProductDescriptions: [this.s.productDescription],
            ...(zones.size > 0 ? { Filters: [{ Name: 'availability-zone', Values: [...zones] }] } : {}),
            ...(token ? { NextToken: token } : {}),
          }),
        );
        for (const p of page.SpotPriceHistory ?? []) {
          const price = Number(p.SpotPrice);
          if (!p.InstanceType || !p.AvailabilityZone || !Number.isFinite(price) || price < 0) continue;
          if (zones.size > 0 && !zones.has(p.AvailabilityZone)) continue;
          const k = spotKey(p.InstanceType, p.AvailabilityZone);
          const at = p.Timestamp?.getTime() ?? 0;
          if ((latest.get(k)?.at ?? -1) <= at) latest.set(k, { price, at });
        }
        token = page.NextToken || undefined;
      } while (token);
      const prices = new Map([...latest].map(([k, v]) => [k, v.price]));
      this.table = { at: now, prices };
      return prices;
    } catch (err) {
      this.onError(err);
      if (this.table && now - this.table.at < 2 * this.s.priceCacheSec * 1000) return this.table.prices;
      return new Map();
    }
  }
}
