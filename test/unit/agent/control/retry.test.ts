import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RETRY_CAP_MS, retryDelayMs } from '../../../../src/agent/control/retry.js';

describe('retryDelayMs: the wait before calling a server that did not answer again', () => {
  it('doubles from half a second and stops at the cap', () => {
    expect([1, 2, 3, 4, 5, 6, 50, 10_000].map((n) => retryDelayMs(n, 1))).toEqual([500, 1000, 2000, 4000, 5000, 5000, 5000, 5000]);
    expect([1, 2, 3, 4, 5, 6].map((n) => retryDelayMs(n, 0))).toEqual([250, 500, 1000, 2000, 2500, 2500]);
  });

  it('never waits longer than the cap, nor less than half of its step: a fleet cut off together comes back spread out', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (n, r) => {
        const d = retryDelayMs(n, r);
        expect(d).toBeLessThanOrEqual(RETRY_CAP_MS);
        expect(d).toBeGreaterThanOrEqual(Math.min(RETRY_CAP_MS, 500 * 2 ** Math.min(30, n - 1)) / 2);
      }),
    );
  });

  it('spreads a thousand pilots over the upper half of the step', () => {
    const waits = Array.from({ length: 1000 }, (_, i) => retryDelayMs(8, i / 1000));
    expect(Math.min(...waits)).toBe(RETRY_CAP_MS / 2);
    expect(Math.max(...waits)).toBeLessThan(RETRY_CAP_MS);
    // no second of the window gets more than its share
    const perHalfSecond = new Map<number, number>();
    for (const w of waits) perHalfSecond.set(Math.floor(w / 500), (perHalfSecond.get(Math.floor(w / 500)) ?? 0) + 1);
    for (const count of perHalfSecond.values()) expect(count).toBeLessThanOrEqual(200);
  });
});
