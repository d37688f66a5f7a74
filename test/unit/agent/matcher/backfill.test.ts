import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fakeAssignment } from '../../../../src/agent/control/fake-control-plane.js';
import { endBound, fitsLoan, loanFor, shadowTime, type BackfillInputs, type RunningPayload } from '../../../../src/agent/matcher/backfill.js';
import {
  BACKFILL_REAP_SEC,
  BACKFILL_START_SLACK_SEC,
  admit,
  nextMatchRequest,
  reservationNow,
  type MatchInputs,
} from '../../../../src/agent/matcher/matcher.js';
import { waitingFromReply, type WaitingRequest } from '../../../../src/agent/matcher/starvation.js';
import type { Assignment } from '../../../../src/protocol/index.js';
import { offerOf, pick } from '../../../../src/server/queue/pick.js';
import type { Candidate } from '../../../../src/server/store/store.js';

const T0 = 1_700_000_000_000;
const S = 1000;
const started = (cores: number, wallSec: number | null, at = T0): RunningPayload => ({ cores, wallSec, wallFrom: at, admittedAt: at });
const inputs = (i: Partial<BackfillInputs>): BackfillInputs => ({ totalCores: 8, usedCores: 0, running: [], need: 8, now: T0, endMarginSec: 0, startSlackSec: 0, ...i });

describe('shadowTime', () => {
  it('is when the payloads that must end have reached their wall limits plus the margin, with the cores spare then', () => {
    const running = [started(4, 100), started(2, 50), started(1, 500)];
    expect(shadowTime(inputs({ usedCores: 7, running, need: 6, endMarginSec: 5 }))).toEqual({ at: T0 + 105 * S, spareCores: 1 });
    expect(shadowTime(inputs({ usedCores: 7, running, need: 3, endMarginSec: 5 }))).toEqual({ at: T0 + 55 * S, spareCores: 0 });
    // enough free already: now
    expect(shadowTime(inputs({ usedCores: 7, running, need: 1 }))).toEqual({ at: T0, spareCores: 0 });
  });

  it('counts a payload with no wall limit as running for ever: unknown when it must end, ignored when it need not', () => {
    const running = [started(4, null), started(2, 60)];
    expect(shadowTime(inputs({ usedCores: 6, running, need: 8 }))).toBeNull();
    expect(shadowTime(inputs({ usedCores: 6, running, need: 4 }))).toEqual({ at: T0 + 60 * S, spareCores: 0 });
  });

  it('counts a payload past its end bound, or cores no held payload accounts for, as ending at an unknown time', () => {
    expect(shadowTime(inputs({ usedCores: 4, running: [started(4, 10, T0 - 20 * S)], need: 8 }))).toBeNull();
    expect(shadowTime(inputs({ usedCores: 6, running: [started(4, 10)], need: 8 }))).toBeNull();
    expect(shadowTime(inputs({ usedCores: 6, running: [started(4, 10)], need: 6 }))).toEqual({ at: T0 + 10 * S, spareCores: 0 });
  });

  it('bounds a payload not started yet from its admission plus the start slack', () => {
    const starting: RunningPayload = { cores: 4, wallSec: 100, wallFrom: null, admittedAt: T0 };
    expect(endBound(starting, 5, 10)).toBe(T0 + 115 * S);
    expect(endBound({ ...starting, wallFrom: T0 + 2 * S }, 5, 10)).toBe(T0 + 107 * S);
  });
});

describe('loanFor', () => {
  it('lends the free cores to work that ends by the shadow time, and the spare ones to any work', () => {
    const running = [started(4, 3600), started(2, 600)];
    // 2 free, 6 needed: at 600 s + margin 4 are free, not enough; at 3600 s + margin all 8, 2 spare
    const loan = loanFor(inputs({ usedCores: 6, running, need: 6, endMarginSec: 35, startSlackSec: 10 }));
    expect(loan).toEqual({ wallSec: 3600 + 35 - 35 - 10, spareCores: 2, shadowAt: T0 + 3635 * S });
  });

  it('lends nothing when no core is free, the shadow time is unknown, or nothing fits before it and nothing is spare', () => {
    expect(loanFor(inputs({ usedCores: 8, running: [started(8, 100)], need: 4 }))).toBeNull();
    expect(loanFor(inputs({ usedCores: 6, running: [started(6, null)], need: 4 }))).toBeNull();
    expect(loanFor(inputs({ usedCores: 6, running: [started(6, 10)], need: 8, startSlackSec: 10 }))).toBeNull();
    // nothing fits before it, but a core is spare
    expect(loanFor(inputs({ usedCores: 6, running: [started(6, 10)], need: 7, startSlackSec: 10 }))).toEqual({ wallSec: 0, spareCores: 1, shadowAt: T0 + 10 * S });
  });

  it('never lends a payload with no declared wall time any core beyond the spare ones', () => {
    expect(fitsLoan(1, null, { wallSec: 1e6, spareCores: 0 })).toBe(false);
    expect(fitsLoan(1, null, { wallSec: 0, spareCores: 1 })).toBe(true);
    expect(fitsLoan(3, 100, { wallSec: 100, spareCores: 0 })).toBe(true);
    expect(fitsLoan(3, 101, { wallSec: 100, spareCores: 2 })).toBe(false);
  });
});

const base: MatchInputs = {
  totalCores: 8,
  usedCores: 6,
  freeMemoryMb: 1000,
  state: 'serving',
  now: T0,
  deadline: null,
  graceSec: 30,
  holding: [],
  waitMaxSec: 20,
  starvationSec: 60,
  running: [started(6, 3600)],
};
const reserved = (backfill: boolean): WaitingRequest => ({ cores: 8, since: T0 - 61 * S, ...(backfill ? { backfill: true } : {}) });

describe('the match request while holding cores', () => {
  it('asks for the free cores with a loan when the server honours backfill, else offers none', () => {
    const margin = 30 + BACKFILL_REAP_SEC;
    expect(nextMatchRequest({ ...base, largestWaiting: reserved(true) })).toMatchObject({
      freeCores: 2,
      backfill: { wallSec: 3600 + margin - margin - BACKFILL_START_SLACK_SEC, spareCores: 0 },
    });
    const old = nextMatchRequest({ ...base, largestWaiting: reserved(false) });
    expect(old).toMatchObject({ freeCores: 0 });
    expect(old).not.toHaveProperty('backfill');
    // without the running payloads' wall clocks it cannot know the shadow time: it lends nothing
    expect(nextMatchRequest({ ...base, running: undefined, largestWaiting: reserved(true) })).toMatchObject({ freeCores: 0 });
    // before the bound, or once the reserved payload fits, no loan
    expect(nextMatchRequest({ ...base, largestWaiting: { ...reserved(true), since: T0 } })).not.toHaveProperty('backfill');
    expect(nextMatchRequest({ ...base, usedCores: 0, running: [], largestWaiting: reserved(true) })).toMatchObject({ freeCores: 8, minCores: 8 });
  });

  it('lends nothing while draining or with no time left', () => {
    expect(nextMatchRequest({ ...base, state: 'draining', largestWaiting: reserved(true) })).not.toHaveProperty('backfill');
    const late = nextMatchRequest({ ...base, deadline: T0 + 30 * S, largestWaiting: reserved(true) });
    expect(late).toMatchObject({ freeCores: 0 });
    expect(late).not.toHaveProperty('backfill');
  });

  it('reads from largestWaiting whether the server honours backfill', () => {
    expect(waitingFromReply({ cores: 8, waitingSec: 30, backfill: true }, 100_000, null)).toEqual({ cores: 8, since: 70_000, backfill: true });
    expect(waitingFromReply({ cores: 8, waitingSec: 30 }, 100_000, null)).toEqual({ cores: 8, since: 70_000 });
  });
});

describe('admit, while cores are held for a reserved payload', () => {
  const now = { ...base, largestWaiting: reserved(true) };
  const r = reservationNow(now);

  it('starts what fits the loan, gives back what would delay the reserved payload', () => {
    expect(r).toEqual({ cores: 8, loan: { wallSec: 3590, spareCores: 0 } });
    expect(admit(fakeAssignment(1, { cores: 2, wallSec: 3590 }), 8, 6, new Set(), 'serving', null, r)).toEqual({ kind: 'start', cores: 2 });
    expect(admit(fakeAssignment(2, { cores: 1, wallSec: 3591 }), 8, 6, new Set(), 'serving', null, r)).toMatchObject({
      kind: 'release',
      message: expect.stringMatching(/held for a reserved payload/),
    });
    expect(admit(fakeAssignment(3, { cores: 1, wallSec: null }), 8, 6, new Set(), 'serving', null, r)).toMatchObject({ kind: 'release' });
  });

  it('gives back smaller work handed out for an older request once the reserved payload fits, and anything while holding with nothing to lend', () => {
    const fits = reservationNow({ ...base, usedCores: 0, running: [], largestWaiting: reserved(true) });
    expect(fits).toEqual({ cores: 8, loan: null });
    expect(admit(fakeAssignment(4, { cores: 2 }), 8, 0, new Set(), 'serving', null, fits)).toMatchObject({ kind: 'release', message: expect.stringMatching(/kept for a reserved 8-core payload/) });
    expect(admit(fakeAssignment(5, { cores: 8 }), 8, 0, new Set(), 'serving', null, fits)).toEqual({ kind: 'start', cores: 8 });
    const hold = reservationNow({ ...base, largestWaiting: reserved(false) });
    expect(hold).toEqual({ cores: 8, loan: null });
    expect(admit(fakeAssignment(6, { cores: 1, wallSec: 1 }), 8, 6, new Set(), 'serving', null, hold)).toMatchObject({ kind: 'release' });
    // no reservation: as before
    expect(reservationNow(base)).toBeNull();
  });
});

/**
 * One agent holding cores for a reserved payload of `need` cores, the real
 * server picker (offer read from the agent's request, held open for a while)
 * and the agent's admission, on a simulated clock. Payloads end at or before
 * their wall limit plus the stop margin; their wall clock starts within the
 * start slack of admission. Returns when the reserved payload's cores were
 * first free, the first shadow time known while holding (when holding began,
 * or once a payload with no known end has ended), and the most cores used.
 */
interface Scenario {
  total: number;
  need: number;
  graceSec: number;
  /** Running when holding begins: cores, wall limit, age, and the fraction of wall + margin it runs (per cent). */
  initial: { cores: number; wallSec: number | null; ageSec: number; runPct: number }[];
  /** Queued work; `tight`: it arrives with exactly the wall time the agent's loan allows when it asks (the worst case). */
  queue: { cores: number; max: number; wallSec: number | null; runPct: number; startDelayPct: number; tight?: boolean }[];
  /** Per step: how long the server holds the request, the delay to the agent's admission, and the pause after (seconds). */
  steps: { heldSec: number; replySec: number; pauseSec: number }[];
}

function simulate(p: Scenario, mutant = false) {
  const endMargin = p.graceSec + BACKFILL_REAP_SEC;
  type Held = RunningPayload & { id: number; startsAt: number; endsAt: number };
  let now = T0;
  let nextId = 1;
  const held: Held[] = [];
  let used = 0;
  for (const r of p.initial) {
    if (used + r.cores > p.total) continue;
    used += r.cores;
    const from = T0 - r.ageSec * S;
    // one with no wall limit runs on past anything this test looks at, unless it had a short life
    const runMs = r.wallSec === null ? (r.runPct < 50 ? r.runPct * 10 * S : 1e12) : Math.max(1, Math.floor(((r.wallSec + endMargin) * S * r.runPct) / 100));
    // a payload that has already ended is not running
    if (from + runMs <= T0) {
      used -= r.cores;
      continue;
    }
    held.push({ id: nextId++, cores: r.cores, wallSec: r.wallSec, wallFrom: from, admittedAt: from, startsAt: from, endsAt: from + runMs });
  }
  const spec = new Map<number, Scenario['queue'][number]>();
  let queue: Candidate[] = p.queue.map((q, k) => {
    const id = 1000 + k;
    spec.set(id, q);
    return { id, group: 'g', priority: 0, cores: { min: q.cores, max: Math.max(q.cores, q.max), wholeNode: false }, memoryMb: null, wallSec: q.wallSec, submittedAt: k };
  });
  const largestWaiting: WaitingRequest = { cores: p.need, since: T0 - 1e6, backfill: true };
  const usedNow = () => held.reduce((n, h) => n + h.cores, 0);
  const view = (): RunningPayload[] => held.map((h) => ({ cores: h.cores, wallSec: h.wallSec, admittedAt: h.admittedAt, wallFrom: now >= h.startsAt ? h.startsAt : null }));
  const agentInputs = (): MatchInputs => ({
    totalCores: p.total,
    usedCores: usedNow(),
    freeMemoryMb: 1e6,
    state: 'serving',
    now,
    deadline: null,
    graceSec: p.graceSec,
    holding: [],
    waitMaxSec: 20,
    largestWaiting,
    starvationSec: 0,
    running: view(),
  });
  const shadowInputs = (): BackfillInputs => ({
    totalCores: p.total,
    usedCores: usedNow(),
    running: view(),
    need: p.need,
    now,
    endMarginSec: endMargin,
    startSlackSec: BACKFILL_START_SLACK_SEC,
  });
  const endUntil = (t: number) => {
    // payloads end in order; stop at the first moment the reserved payload's cores are free
    for (;;) {
      if (p.total - usedNow() >= p.need) return true;
      const next = Math.min(...held.map((h) => h.endsAt));
      if (next > t) break;
      now = next;
      for (let k = held.length - 1; k >= 0; k--) if (held[k]!.endsAt <= now) held.splice(k, 1);
    }
    now = Math.max(now, t);
    return p.total - usedNow() >= p.need;
  };
  let shadow0: ReturnType<typeof shadowTime> = null;
  /** Once known, the shadow time never becomes unknown and never moves later. */
  const checkShadow = () => {
    const s = shadowTime(shadowInputs());
    if (!shadow0) shadow0 = s;
    else if (!mutant) {
      expect(s).not.toBeNull();
      expect(s!.at).toBeLessThanOrEqual(shadow0.at);
    }
  };
  let maxUsed = usedNow();
  let lent = 0;
  let ready = p.total - usedNow() >= p.need;
  for (const step of p.steps) {
    if (ready) break;
    checkShadow();
    const request = nextMatchRequest(agentInputs())!;
    if (!shadow0) expect(request.freeCores).toBe(0);
    expect(request.freeCores).toBeLessThanOrEqual(p.total - usedNow());
    if (request.backfill) expect(request.backfill.spareCores).toBeLessThanOrEqual(request.freeCores);
    const sentAt = now;
    if (request.backfill) {
      const wallSec = request.backfill.wallSec;
      queue = queue.map((c) => (spec.get(c.id)!.tight && wallSec > 0 ? { ...c, wallSec } : c));
    }
    if ((ready = endUntil(now + step.heldSec * S))) break;
    const offer = mutant ? { ...offerOf(request), backfill: undefined } : offerOf(request, now - sentAt);
    const choice = pick(queue, offer);
    if ((ready = endUntil(now + step.replySec * S))) break;
    if (choice) {
      const q = spec.get(choice.id)!;
      const wallSec = queue.find((c) => c.id === choice.id)!.wallSec;
      const a: Assignment = fakeAssignment(choice.id, { cores: choice.cores, wallSec });
      const decision = admit(a, p.total, usedNow(), new Set(), 'serving', null, mutant ? null : reservationNow(agentInputs()));
      if (decision.kind === 'start') {
        queue = queue.filter((c) => c.id !== choice.id);
        const startsAt = now + Math.floor((BACKFILL_START_SLACK_SEC * S * q.startDelayPct) / 100);
        const runMs = wallSec === null ? 1e12 : Math.max(1, Math.floor(((wallSec + endMargin) * S * q.runPct) / 100));
        held.push({ id: choice.id, cores: choice.cores, wallSec, wallFrom: null, admittedAt: now, startsAt, endsAt: startsAt + runMs });
        lent++;
        maxUsed = Math.max(maxUsed, usedNow());
        checkShadow();
      }
    }
    if ((ready = endUntil(now + step.pauseSec * S))) break;
  }
  // no more work comes: run the clock on until the reserved payload's cores are free
  if (!ready) ready = endUntil(Infinity);
  return { shadow0: shadow0 as ReturnType<typeof shadowTime>, readyAt: ready ? now : null, maxUsed, lent };
}

const arbScenario: fc.Arbitrary<Scenario> = fc.integer({ min: 2, max: 16 }).chain((total) =>
  fc.record({
    total: fc.constant(total),
    need: fc.integer({ min: 2, max: total }),
    graceSec: fc.constantFrom(0, 1, 30),
    initial: fc.array(
      fc.record({
        cores: fc.integer({ min: 1, max: total }),
        wallSec: fc.option(fc.integer({ min: 1, max: 7200 }), { freq: 5 }),
        ageSec: fc.integer({ min: 0, max: 3600 }),
        runPct: fc.oneof(fc.constant(100), fc.integer({ min: 1, max: 100 })),
      }),
      { maxLength: 8 },
    ),
    queue: fc.array(
      fc.record({
        cores: fc.integer({ min: 1, max: total }),
        max: fc.integer({ min: 1, max: total }),
        wallSec: fc.option(fc.integer({ min: 1, max: 7200 }), { freq: 4 }),
        runPct: fc.oneof(fc.constant(100), fc.integer({ min: 1, max: 100 })),
        startDelayPct: fc.oneof(fc.constant(100), fc.constant(0), fc.integer({ min: 0, max: 100 })),
        tight: fc.boolean(),
      }),
      { maxLength: 20 },
    ),
    steps: fc.array(
      fc.record({
        heldSec: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 20 })),
        replySec: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2 })),
        pauseSec: fc.integer({ min: 0, max: 900 }),
      }),
      { minLength: 1, maxLength: 30 },
    ),
  }),
);

describe('backfill, with the real picker on a simulated clock', () => {
  it('property: never over-commits, lends nothing until the shadow time is known, and never delays the reserved payload past it', () => {
    fc.assert(
      fc.property(arbScenario, (p) => {
        const r = simulate(p);
        expect(r.maxUsed).toBeLessThanOrEqual(p.total);
        // the reserved payload's cores come free at last: nothing lent runs for ever on cores it needs
        expect(r.readyAt).not.toBeNull();
        if (r.shadow0) expect(r.readyAt!).toBeLessThanOrEqual(r.shadow0.at);
        else expect(r.lent).toBe(0);
      }),
      { numRuns: 500 },
    );
  });

  it('lends cores that would otherwise idle: a short payload runs beside a long one, and a long one waits', () => {
    const p: Scenario = {
      total: 4,
      need: 4,
      graceSec: 0,
      initial: [{ cores: 3, wallSec: 7200, ageSec: 0, runPct: 100 }],
      queue: [
        { cores: 1, max: 1, wallSec: null, runPct: 100, startDelayPct: 0 },
        { cores: 1, max: 1, wallSec: 7200, runPct: 100, startDelayPct: 0 },
        { cores: 1, max: 1, wallSec: 3600, runPct: 100, startDelayPct: 0 },
      ],
      steps: [{ heldSec: 0, replySec: 0, pauseSec: 10 }],
    };
    const r = simulate(p);
    expect(r.lent).toBe(1);
    expect(r.readyAt).toBe(r.shadow0!.at);
  });

  it('the test can tell: lending without the loan rules delays the reserved payload past the shadow time', () => {
    const p: Scenario = {
      total: 4,
      need: 4,
      graceSec: 0,
      initial: [{ cores: 3, wallSec: 600, ageSec: 0, runPct: 100 }],
      queue: [{ cores: 1, max: 1, wallSec: 7200, runPct: 100, startDelayPct: 0 }],
      steps: [{ heldSec: 0, replySec: 0, pauseSec: 10 }],
    };
    expect(simulate(p).lent).toBe(0);
    const naive = simulate(p, true);
    expect(naive.lent).toBe(1);
    expect(naive.readyAt!).toBeGreaterThan(naive.shadow0!.at);
  });
});
