/**
 * Token buckets per key (a registration token's hash, a source address):
 * each key may make `burst` requests at once, then `perSec` a second. Pure
 * but for the clock it is given. The table is bounded: when it holds
 * `maxKeys` keys, the buckets that have filled up again (nothing to
 * remember) go first, then the oldest.
 */
import type { Clock } from '../../shared/clock.js';

/** The outcome of asking for one request. */
export type Take = { ok: true } | { ok: false; retryAfterSec: number };

interface Bucket {
  tokens: number;
  at: number;
}

/** One limit (burst and rate) over many keys. A burst of 0 means no limit. */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    readonly burst: number,
    readonly perSec: number,
    private readonly clock: Clock,
    private readonly maxKeys = 100_000,
  ) {}

  /** True when this limit limits nothing. */
  get unlimited(): boolean {
    return this.burst <= 0;
  }

  /** Take one token for `key`: ok, or how long until one is there. */
  take(key: string): Take {
    if (this.unlimited) return { ok: true };
    const now = this.clock.now();
    const b = this.refill(this.buckets.get(key), now);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      this.keep(key, b);
      return { ok: true };
    }
    this.keep(key, b);
    const retryAfterSec = this.perSec > 0 ? Math.max(1, Math.ceil((1 - b.tokens) / this.perSec)) : 3600;
    return { ok: false, retryAfterSec };
  }

  /** How many keys are remembered (for tests). */
  get size(): number {
    return this.buckets.size;
  }

  private refill(b: Bucket | undefined, now: number): Bucket {
    if (!b) return { tokens: this.burst, at: now };
    const gained = (Math.max(0, now - b.at) / 1000) * this.perSec;
    return { tokens: Math.min(this.burst, b.tokens + gained), at: now };
  }

  private keep(key: string, b: Bucket): void {
    // most recently used last, so the first entries are the oldest
    this.buckets.delete(key);
    this.buckets.set(key, b);
    if (this.buckets.size <= this.maxKeys) return;
    const now = this.clock.now();
    for (const [k, old] of this.buckets) {
      if (this.buckets.size <= this.maxKeys) return;
      if (this.refill(old, now).tokens >= this.burst) this.buckets.delete(k);
    }
    for (const k of this.buckets.keys()) {
      if (this.buckets.size <= this.maxKeys) return;
      this.buckets.delete(k);
    }
  }
}
