import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decideFence, fenceTimes, leaseMarginSec } from '../../../../src/agent/monitor/lease.js';
import { FakeClock } from '../../../../src/shared/clock.js';

describe('decideFence (the lease fence)', () => {
  const clock = new FakeClock();
  const T0 = clock.now();
  const base = { now: T0, leaseFrom: T0, leaseSec: 600, graceSec: 30, runningCount: 2 };

  it('keeps a margin of min(60 s, a tenth of the lease)', () => {
    expect(leaseMarginSec(600)).toBe(60);
    expect(leaseMarginSec(3600)).toBe(60);
    expect(leaseMarginSec(4)).toBe(0.4);
  });

  it('600 s lease, 30 s grace: SIGTERM at 510 s, SIGKILL by 540 s, stalled at 600 s', async () => {
    expect(decideFence(base)).toEqual({ kind: 'ok', wakeAt: T0 + 510_000 });
    await clock.advance(509_999);
    expect(decideFence({ ...base, now: clock.now() })).toEqual({ kind: 'ok', wakeAt: T0 + 510_000 });
    await clock.advance(1);
    expect(decideFence({ ...base, now: clock.now() })).toEqual({
      kind: 'fence',
      graceMs: 30_000,
      reason: 'no contact with the server for 510 s; the server gives its payloads to other pilots after 600 s',
    });
  });

  it('contact moves the fence; nothing running, no lease told or lease 0: no fence', () => {
    expect(decideFence({ ...base, now: T0 + 520_000, leaseFrom: T0 + 100_000 })).toEqual({ kind: 'ok', wakeAt: T0 + 610_000 });
    expect(decideFence({ ...base, now: T0 + 10_000_000, runningCount: 0 })).toEqual({ kind: 'ok', wakeAt: null });
    expect(decideFence({ ...base, now: T0 + 10_000_000, leaseSec: null })).toEqual({ kind: 'ok', wakeAt: null });
    expect(decideFence({ ...base, now: T0 + 10_000_000, leaseSec: 0 })).toEqual({ kind: 'ok', wakeAt: null });
  });

  it('a grace longer than the lease is cut short: SIGTERM at half the usable lease', () => {
    // lease 4 s (margin 0.4 s): usable 3.6 s; grace 30 s would not fit
    expect(fenceTimes(T0, 4, 30)).toEqual({ fenceAt: T0 + 1800, stopBy: T0 + 3600 });
    expect(decideFence({ ...base, leaseSec: 4, now: T0 + 1800 })).toMatchObject({ kind: 'fence', graceMs: 1800 });
    // late (the loop woke after the SIGKILL moment): kill at once
    expect(decideFence({ ...base, leaseSec: 4, now: T0 + 5000 })).toMatchObject({ kind: 'fence', graceMs: 0 });
  });

  it('for any lease, grace and moment: the SIGKILL comes before the server stalls the pilot, and never a fence while the lease is fresh', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 86400 }), fc.integer({ min: 0, max: 3600 }), fc.integer({ min: 0, max: 100_000_000 }), (lease, grace, dt) => {
        const d = decideFence({ ...base, leaseSec: lease, graceSec: grace, now: T0 + dt });
        const stall = T0 + lease * 1000;
        const { stopBy } = fenceTimes(T0, lease, grace);
        expect(stopBy).toBeLessThan(stall);
        if (d.kind === 'fence') {
          // SIGKILL by stopBy (at once when the check comes later than that)
          expect(T0 + dt + d.graceMs).toBe(Math.max(T0 + dt, stopBy));
          // compared as the code compares: absolute times (a relative threshold can lie an ulp above, e.g. 130050.00000000001)
          expect(T0 + dt).toBeGreaterThanOrEqual(T0 + ((lease - leaseMarginSec(lease)) * 1000) / 2);
        } else {
          expect(d.wakeAt).not.toBeNull();
          expect(d.wakeAt!).toBeGreaterThan(T0 + dt);
          expect(d.wakeAt!).toBeLessThan(stall);
        }
      }),
      // a fence exactly at half the usable lease, where that half is not a whole number of ms
      { examples: [[289, 131, 130_050]] },
    );
  });
});
