/**
 * Current prices of shapes with a price source (`shapes.NAME.price`): a JSON
 * file mapping keys to a price per hour (`{"m5.large": 0.031, …}`), written
 * by whatever follows the provider's spot market, read every cycle. A price
 * is trusted only while the file is younger than its `maxAgeSec`, and only
 * when it is a number of at least 0: otherwise the shape has no current price
 * and is not started (decision reason `price`), rather than started at a
 * guess.
 */
import { readFile, stat } from 'node:fs/promises';
import type { Clock } from '../../shared/clock.js';
import { describeError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { EndpointConfig } from './endpoint-config.js';
import { offeringKey } from './failure-memory.js';

/** Where the loop gets prices. */
export interface PriceSource {
  /** Current prices per hour, by offering key, of the shapes with a price source; unknown ones absent. */
  prices(endpoints: readonly EndpointConfig[]): Promise<Map<string, number>>;
  /** Where each price of the last `prices` call came from, in words, by offering key (`director status`). */
  origins?(): ReadonlyMap<string, string>;
}

/** Prices from the JSON files the shapes name. */
export class FilePrices implements PriceSource {
  private last = new Map<string, string>();

  constructor(
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  async prices(endpoints: readonly EndpointConfig[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    const origins = new Map<string, string>();
    const files = new Map<string, Promise<Record<string, unknown> | null>>();
    for (const ep of endpoints) {
      for (const shape of ep.shapes) {
        const src = shape.price;
        if (!src || src.file === null) continue; // from its driver (drivers/live-prices.ts)
        const k = `${src.maxAgeSec}:${src.file}`;
        const file = src.file;
        if (!files.has(k)) files.set(k, this.read(file, src.maxAgeSec));
        const doc = await files.get(k)!;
        const v = doc?.[src.key];
        if (typeof v === 'number' && Number.isFinite(v) && v >= 0) {
          out.set(offeringKey(ep.name, shape.name), v);
          origins.set(offeringKey(ep.name, shape.name), `price file ${file} (key ${src.key})`);
        }
      }
    }
    this.last = origins;
    return out;
  }

  origins(): ReadonlyMap<string, string> {
    return this.last;
  }

  private async read(file: string, maxAgeSec: number): Promise<Record<string, unknown> | null> {
    try {
      const st = await stat(file);
      if (this.clock.now() - st.mtimeMs > maxAgeSec * 1000) {
        this.log.warn({ file, ageSec: Math.round((this.clock.now() - st.mtimeMs) / 1000), maxAgeSec }, 'price file too old: its prices are not used');
        return null;
      }
      const doc: unknown = JSON.parse(await readFile(file, 'utf8'));
      return typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? (doc as Record<string, unknown>) : null;
    } catch (err) {
      this.log.warn({ file, err: describeError(err) }, 'cannot read price file');
      return null;
    }
  }
}
