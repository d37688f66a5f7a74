import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fakeAssignment } from '../../../../src/agent/control/fake-control-plane.js';
import { admit, isPollOnly, nextMatchRequest, type MatchInputs } from '../../../../src/agent/matcher/matcher.js';

const base: MatchInputs = { totalCores: 4, usedCores: 1, freeMemoryMb: 1000, state: 'serving', now: 0, deadline: null, graceSec: 30, holding: [3], waitMaxSec: 20 };

describe('nextMatchRequest', () => {
  it('asks for the free cores', () => {
    expect(nextMatchRequest(base)).toEqual({ freeCores: 3, totalCores: 4, freeMemoryMb: 1000, remainingSec: null, holding: [3], waitSec: 20 });
  });
  it.each(['booting', 'halting', 'halted'] as const)('asks nothing when %s', (state) => {
    expect(nextMatchRequest({ ...base, state })).toBeNull();
  });
  it('keeps a request open that no payload fits while draining, so instructions still arrive at once', () => {
    const r = nextMatchRequest({ ...base, state: 'draining', usedCores: 0 });
    expect(r).toEqual({ freeCores: 0, totalCores: 4, freeMemoryMb: 1000, remainingSec: null, holding: [3], waitSec: 20 });
    expect(isPollOnly(r!)).toBe(true);
  });
  it('asks with freeCores 0 when no core is free or no time is left', () => {
    expect(nextMatchRequest({ ...base, usedCores: 4 })).toMatchObject({ freeCores: 0 });
    expect(nextMatchRequest({ ...base, deadline: 30_000 })).toMatchObject({ freeCores: 0, remainingSec: 0 });
    expect(nextMatchRequest({ ...base, deadline: 100_000 })).toMatchObject({ freeCores: 3, remainingSec: 70 });
    expect(isPollOnly(nextMatchRequest(base)!)).toBe(false);
  });
  it('keeps waitSec within the protocol bound', () => {
    expect(nextMatchRequest({ ...base, waitMaxSec: 600 })?.waitSec).toBe(60);
  });
});

describe('admit', () => {
  it('starts what fits, rejects what does not, ignores a redelivery', () => {
    expect(admit(fakeAssignment(1, { cores: 3 }), 4, 1, new Set(), 'serving')).toEqual({ kind: 'start', cores: 3 });
    expect(admit(fakeAssignment(1, { cores: 4 }), 4, 1, new Set(), 'serving')).toMatchObject({ kind: 'release', message: expect.stringMatching(/needs 4 cores, only 3 free/) });
    expect(admit(fakeAssignment(1), 4, 1, new Set([1]), 'serving')).toEqual({ kind: 'duplicate' });
    expect(admit(fakeAssignment(2), 4, 0, new Set(), 'draining')).toMatchObject({ kind: 'release', message: 'not started: the pilot is draining' });
    expect(admit(fakeAssignment(2, { wallSec: 100 }), 4, 0, new Set(), 'serving', 99)).toMatchObject({ kind: 'release', message: expect.stringMatching(/needs 100 s, only 99 s left/) });
    // invalid anywhere: ended, not released
    expect(admit(fakeAssignment(2, { cores: 0 }), 4, 0, new Set(), 'serving')).toMatchObject({ kind: 'reject' });
    expect(admit(fakeAssignment(2, { command: [] }), 4, 0, new Set(), 'serving')).toMatchObject({ kind: 'reject' });
  });

  it('never over-commits and never starts an id twice, whatever the server hands out', () => {
    const event = fc.oneof(
      fc.record({ kind: fc.constant('offer' as const), id: fc.integer({ min: 1, max: 30 }), cores: fc.integer({ min: 0, max: 10 }) }),
      fc.record({ kind: fc.constant('end' as const), pick: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(event, { maxLength: 200 }), (total, events) => {
        const running = new Map<number, number>();
        const started = new Set<number>();
        let starts = 0;
        for (const e of events) {
          const used = [...running.values()].reduce((a, b) => a + b, 0);
          if (e.kind === 'offer') {
            const d = admit(fakeAssignment(e.id, { cores: e.cores }), total, used, started, 'serving');
            if (d.kind === 'start') {
              expect(started.has(e.id)).toBe(false);
              started.add(e.id);
              running.set(e.id, d.cores);
              starts++;
            } else if (d.kind === 'reject') started.add(e.id);
            else if (d.kind === 'release') expect(e.cores > total - used || e.cores < 1).toBe(true);
            const inUse = [...running.values()].reduce((a, b) => a + b, 0);
            const m = nextMatchRequest({ ...base, totalCores: total, usedCores: inUse });
            expect(m?.freeCores).toBe(Math.max(0, total - inUse));
          } else if (running.size > 0) {
            const ids = [...running.keys()];
            running.delete(ids[e.pick % ids.length]!);
          }
          expect([...running.values()].reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(total);
        }
        expect(starts).toBeLessThanOrEqual(started.size);
      }),
      { numRuns: 300 },
    );
  });
});
