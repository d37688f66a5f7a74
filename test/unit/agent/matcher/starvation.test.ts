import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nextMatchRequest } from '../../../../src/agent/matcher/matcher.js';
import { decideOffer, waitingFromReply, type WaitingRequest } from '../../../../src/agent/matcher/starvation.js';
import { FakeClock } from '../../../../src/shared/clock.js';

const T0 = 1_700_000_000_000;

describe('decideOffer, exhaustively on nodes of 1 to 6 cores', () => {
  it('never asks for more than is free; reserves only after the bound; asks with minCores once the waiting payload fits', () => {
    for (let total = 1; total <= 6; total++) {
      for (let free = 0; free <= total; free++) {
        for (let want = 0; want <= total + 1; want++) {
          for (const waited of [0, 59, 60, 61, 1000]) {
            const largestWaiting: WaitingRequest | null = want === 0 ? null : { cores: want, since: T0 - waited * 1000 };
            const d = decideOffer({ totalCores: total, freeCores: free, largestWaiting, now: T0, boundSec: 60 });
            const ctx = JSON.stringify({ total, free, want, waited, d });
            if (free === 0) {
              expect(d.kind, ctx).toBe('hold');
              continue;
            }
            const reserving = want >= 1 && want <= total && waited >= 60;
            if (!reserving) {
              expect(d, ctx).toEqual({ kind: 'ask', freeCores: free, minCores: null });
            } else if (want > free) {
              expect(d.kind, ctx).toBe('hold');
            } else {
              expect(d, ctx).toEqual({ kind: 'ask', freeCores: free, minCores: want });
            }
          }
        }
      }
    }
  });

  it('the match request carries minCores while reserving, and offers no core (an instruction poll) while holding', () => {
    const base = { totalCores: 8, freeMemoryMb: 1000, state: 'serving' as const, now: T0, deadline: null, graceSec: 30, holding: [], waitMaxSec: 20, starvationSec: 60 };
    const held = nextMatchRequest({ ...base, usedCores: 7, largestWaiting: { cores: 8, since: T0 - 61_000 } });
    expect(held).toMatchObject({ freeCores: 0 });
    expect(held).not.toHaveProperty('minCores');
    expect(nextMatchRequest({ ...base, usedCores: 0, largestWaiting: { cores: 8, since: T0 - 61_000 } })).toMatchObject({ freeCores: 8, minCores: 8 });
    expect(nextMatchRequest({ ...base, usedCores: 7, largestWaiting: { cores: 8, since: T0 - 10_000 } })).not.toHaveProperty('minCores');
    expect(nextMatchRequest({ ...base, usedCores: 7 })).toMatchObject({ freeCores: 1 });
  });

  it('reads largestWaiting from a reply: absent keeps what was known, null clears it', () => {
    const prev = { cores: 4, since: 5 };
    expect(waitingFromReply(undefined, 100_000, prev)).toBe(prev);
    expect(waitingFromReply(null, 100_000, prev)).toBeNull();
    expect(waitingFromReply({ cores: 8, waitingSec: 30 }, 100_000, prev)).toEqual({ cores: 8, since: 70_000 });
  });
});

/**
 * A small simulation on a fake clock: one agent, a server that hands out the
 * SMALLEST fitting payload first (the worst case for a large one), small
 * work arriving all the time.
 */
function simulate(p: { total: number; bigCores: number; boundSec: number; maxRunSec: number; arrivals: number[]; durations: number[]; bigAt: number; horizon?: number }) {
  const clock = new FakeClock(T0);
  type Job = { cores: number; runSec: number; submittedAt: number; big: boolean };
  const queue: Job[] = [];
  const running: { cores: number; endsAt: number; big: boolean }[] = [];
  let known: WaitingRequest | null = null;
  let bigStartedAt: number | null = null;
  let maxUsed = 0;
  let d = 0;
  const horizon = p.horizon ?? p.bigAt + Math.max(p.boundSec, p.maxRunSec) + p.maxRunSec + 5;
  for (let tick = 0; tick <= horizon; tick++) {
    const now = clock.now();
    for (let i = running.length - 1; i >= 0; i--) if (running[i]!.endsAt <= now) running.splice(i, 1);
    for (let i = 0; i < (p.arrivals[tick % p.arrivals.length] ?? 0); i++) {
      queue.push({ cores: 1, runSec: 1 + (p.durations[d++ % p.durations.length]! % p.maxRunSec), submittedAt: now, big: false });
    }
    if (tick === p.bigAt) queue.push({ cores: p.bigCores, runSec: p.maxRunSec, submittedAt: now, big: true });
    for (;;) {
      const used = running.reduce((n, r) => n + r.cores, 0);
      const req = nextMatchRequest({
        totalCores: p.total,
        usedCores: used,
        freeMemoryMb: 1e6,
        state: 'serving',
        now,
        deadline: null,
        graceSec: 0,
        holding: [],
        waitMaxSec: 0,
        largestWaiting: known,
        starvationSec: p.boundSec,
      });
      if (!req) throw new Error('a serving agent always keeps a match request open');
      // the server: largest waiting request this agent could serve, and the smallest fitting payload
      const servable = queue.filter((j) => j.cores <= p.total).sort((a, b) => b.cores - a.cores || a.submittedAt - b.submittedAt)[0];
      known = waitingFromReply(servable ? { cores: servable.cores, waitingSec: (now - servable.submittedAt) / 1000 } : null, now, known);
      const fits = queue.filter((j) => j.cores <= req.freeCores && j.cores >= (req.minCores ?? 1)).sort((a, b) => a.cores - b.cores || a.submittedAt - b.submittedAt);
      const pick = fits[0];
      if (!pick) break;
      queue.splice(queue.indexOf(pick), 1);
      running.push({ cores: pick.cores, endsAt: now + pick.runSec * 1000, big: pick.big });
      if (pick.big) bigStartedAt = now;
      maxUsed = Math.max(maxUsed, running.reduce((n, r) => n + r.cores, 0));
    }
    void clock.advance(1000);
  }
  return { bigStartedAt, maxUsed, bigSubmittedAt: T0 + p.bigAt * 1000 };
}

describe('no starvation, in a simulation with a fake clock', () => {
  it('a waiting 8-core payload on an 8-core node starts within the bound plus the longest running payload while 1-core work keeps arriving', () => {
    const r = simulate({ total: 8, bigCores: 8, boundSec: 60, maxRunSec: 30, arrivals: [3], durations: [7, 29, 13, 30, 1], bigAt: 10 });
    expect(r.bigStartedAt).not.toBeNull();
    expect(r.bigStartedAt! - r.bigSubmittedAt).toBeLessThanOrEqual((60 + 30 + 1) * 1000);
    expect(r.maxUsed).toBe(8);
  });

  it('without the rule (an infinite bound) the same payload starves: the test can tell', () => {
    const r = simulate({ total: 8, bigCores: 8, boundSec: 1e9, maxRunSec: 30, arrivals: [3], durations: [7, 29, 13, 30, 1], bigAt: 10, horizon: 1000 });
    expect(r.bigStartedAt).toBeNull();
  });

  it('property: never over-commits, and the large payload starts within the bound + the longest payload, whatever the bound', () => {
    fc.assert(
      fc.property(
        // the large payload needs more than the 1-core work around it (2..total cores)
        fc.integer({ min: 2, max: 8 }).chain((total) =>
          fc.record({
            total: fc.constant(total),
            bigCores: fc.integer({ min: 2, max: total }),
            boundSec: fc.integer({ min: 0, max: 30 }),
            maxRunSec: fc.integer({ min: 1, max: 20 }),
            arrivals: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 10 }),
            durations: fc.array(fc.integer({ min: 0, max: 100 }), { minLength: 1, maxLength: 10 }),
            bigAt: fc.integer({ min: 0, max: 20 }),
          }),
        ),
        (p) => {
          const r = simulate(p);
          expect(r.maxUsed).toBeLessThanOrEqual(p.total);
          expect(r.bigStartedAt).not.toBeNull();
          // The agent keeps a match request open even when full (freeCores 0), so it hears of the large
          // payload at once: the bound holds unconditionally, bound + the longest running payload.
          const waited = r.bigStartedAt! - r.bigSubmittedAt;
          expect(waited).toBeLessThanOrEqual((p.boundSec + p.maxRunSec + 1) * 1000);
        },
      ),
      { numRuns: 300 },
    );
  });
});
