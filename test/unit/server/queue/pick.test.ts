import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { coresFor } from '../../../../src/protocol/cores.js';
import { fairSharePicker, isolationAllows, offerOf, pick } from '../../../../src/server/queue/pick.js';
import type { Candidate, Offer } from '../../../../src/server/queue/offer.js';

const offer = (o: Partial<Offer> = {}): Offer => ({
  freeCores: 4,
  totalCores: 4,
  freeMemoryMb: 8000,
  remainingSec: null,
  ...o,
});

let nextId = 1;
const cand = (c: Partial<Candidate> = {}): Candidate => {
  const id = c.id ?? nextId++;
  return {
    id,
    group: 'default',
    priority: 0,
    cores: { min: 1, max: 1, wholeNode: false },
    memoryMb: null,
    wallSec: null,
    submittedAt: 1000 + id,
    ...c,
  };
};

describe('pick', () => {
  it('gives nothing when nothing is queued', () => {
    expect(pick([], offer())).toBeNull();
  });

  it('hands out the highest priority first, then the oldest', () => {
    const old = cand({ id: 1, submittedAt: 1 });
    const young = cand({ id: 2, submittedAt: 2 });
    const urgent = cand({ id: 3, submittedAt: 3, priority: 5 });
    expect(pick([young, urgent, old], offer())).toEqual({ id: 3, cores: 1 });
    expect(pick([young, old], offer())).toEqual({ id: 1, cores: 1 });
  });

  it('skips a payload that needs more cores than are free and takes the next that fits', () => {
    const big = cand({ id: 10, priority: 9, cores: { min: 8, max: 8, wholeNode: false } });
    const small = cand({ id: 11, cores: { min: 2, max: 2, wholeNode: false } });
    expect(pick([big, small], offer({ freeCores: 3 }))).toEqual({ id: 11, cores: 2 });
  });

  it('gives a range as many free cores as there are, up to its max', () => {
    const ranged = cand({ id: 20, cores: { min: 2, max: 8, wholeNode: false } });
    expect(pick([ranged], offer({ freeCores: 3 }))).toEqual({ id: 20, cores: 3 });
  });

  it('gives a whole-node payload every core, and only on an empty node', () => {
    const whole = cand({ id: 30, cores: { min: 1, max: 1, wholeNode: true } });
    expect(pick([whole], offer({ freeCores: 4, totalCores: 4 }))).toEqual({ id: 30, cores: 4 });
    expect(pick([whole], offer({ freeCores: 3, totalCores: 4 }))).toBeNull();
  });

  it('respects memory and the time the pilot has left', () => {
    const hungry = cand({ id: 40, memoryMb: 9000 });
    const long = cand({ id: 41, wallSec: 7200 });
    expect(pick([hungry], offer({ freeMemoryMb: 8000 }))).toBeNull();
    expect(pick([hungry], offer({ freeMemoryMb: 9000 }))).toEqual({ id: 40, cores: 1 });
    expect(pick([long], offer({ remainingSec: 3600 }))).toBeNull();
    expect(pick([long], offer({ remainingSec: null }))).toEqual({ id: 41, cores: 1 });
  });

  it('offers nothing to a pilot with no free cores', () => {
    expect(pick([cand()], offer({ freeCores: 0 }))).toBeNull();
  });
});

describe('pick, while the pilot lends cores held for a large payload (backfill)', () => {
  const loan = (wallSec: number, spareCores: number) => offer({ freeCores: 3, totalCores: 8, backfill: { wallSec, spareCores } });

  it('hands out a payload whose wall time fits the loan on any free core, and one with no wall time never beyond the spare cores', () => {
    const noWall = cand({ id: 50, cores: { min: 2, max: 2, wholeNode: false } });
    const tooLong = cand({ id: 51, cores: { min: 2, max: 2, wholeNode: false }, wallSec: 601 });
    const fitsLoan = cand({ id: 52, cores: { min: 3, max: 3, wholeNode: false }, wallSec: 600 });
    expect(pick([noWall, tooLong, fitsLoan], loan(600, 0))).toEqual({ id: 52, cores: 3 });
    expect(pick([noWall, tooLong], loan(600, 1))).toBeNull();
    expect(pick([noWall, tooLong], loan(600, 2))).toEqual({ id: 50, cores: 2 });
  });

  it('gives a range that does not end within the loan no more than the spare cores', () => {
    const ranged = cand({ id: 60, cores: { min: 1, max: 8, wholeNode: false } });
    expect(pick([ranged], loan(600, 2))).toEqual({ id: 60, cores: 2 });
    expect(pick([{ ...ranged, wallSec: 60 }], loan(600, 2))).toEqual({ id: 60, cores: 3 });
  });

  it('reads the loan from a match request and counts its time down while the request is held', () => {
    const body = { freeCores: 3, totalCores: 8, freeMemoryMb: 100, remainingSec: null, holding: [], waitSec: 20, backfill: { wallSec: 100, spareCores: 1 } };
    expect(offerOf(body).backfill).toEqual({ wallSec: 100, spareCores: 1 });
    expect(offerOf(body, 1).backfill).toEqual({ wallSec: 99, spareCores: 1 });
    expect(offerOf(body, 10_000).backfill).toEqual({ wallSec: 90, spareCores: 1 });
    expect(offerOf(body, 500_000).backfill).toEqual({ wallSec: 0, spareCores: 1 });
    expect(offerOf({ ...body, backfill: undefined })).not.toHaveProperty('backfill');
  });

  it('property: what it hands out either declares a wall time within the loan or takes no more than the spare cores', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(arbCandidate, { maxLength: 30, selector: (c) => c.id }),
        arbOffer,
        fc.nat(10000),
        fc.nat(16),
        (candidates, o, wallSec, spare) => {
          const lending = { ...o, backfill: { wallSec, spareCores: Math.min(spare, o.freeCores) } };
          const choice = pick(candidates, lending);
          if (!choice) return;
          const c = candidates.find((x) => x.id === choice.id)!;
          expect(choice.cores).toBeLessThanOrEqual(o.freeCores);
          const withinTime = c.wallSec !== null && c.wallSec <= wallSec;
          if (!withinTime) expect(choice.cores).toBeLessThanOrEqual(lending.backfill.spareCores);
        },
      ),
    );
  });
});

const arbCandidate = fc.record({
  id: fc.integer({ min: 1, max: 1_000_000 }),
  group: fc.constantFrom('a', 'b'),
  priority: fc.integer({ min: -3, max: 3 }),
  cores: fc
    .tuple(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 0, max: 16 }), fc.boolean())
    .map(([min, extra, wholeNode]) => ({ min, max: min + extra, wholeNode })),
  memoryMb: fc.option(fc.integer({ min: 1, max: 20000 })),
  wallSec: fc.option(fc.integer({ min: 1, max: 10000 })),
  submittedAt: fc.integer({ min: 0, max: 1000 }),
});

const arbOffer = fc
  .tuple(fc.integer({ min: 1, max: 16 }), fc.nat(16), fc.nat(20000), fc.option(fc.nat(10000)))
  .map(([totalCores, used, freeMemoryMb, remainingSec]) => ({
    totalCores,
    freeCores: Math.max(0, totalCores - used),
    freeMemoryMb,
    remainingSec,
  }));

describe('pick, for any queue and offer', () => {
  it('never returns a payload that does not fit, nor more cores than are free', () => {
    fc.assert(
      fc.property(fc.uniqueArray(arbCandidate, { maxLength: 30, selector: (c) => c.id }), arbOffer, (candidates, o) => {
        const choice = pick(candidates, o);
        if (!choice) return;
        const c = candidates.find((x) => x.id === choice.id);
        expect(c).toBeDefined();
        if (!c) return;
        expect(choice.cores).toBeGreaterThanOrEqual(1);
        expect(choice.cores).toBeLessThanOrEqual(o.freeCores);
        expect(choice.cores).toBe(coresFor(c.cores, o.freeCores, o.totalCores));
        if (c.memoryMb !== null) expect(c.memoryMb).toBeLessThanOrEqual(o.freeMemoryMb);
        if (c.wallSec !== null && o.remainingSec !== null) expect(c.wallSec).toBeLessThanOrEqual(o.remainingSec);
      }),
    );
  });

  it('returns something whenever some payload fits, and never passes over a fitting one of higher priority', () => {
    fc.assert(
      fc.property(fc.uniqueArray(arbCandidate, { maxLength: 30, selector: (c) => c.id }), arbOffer, (candidates, o) => {
        const fitting = candidates.filter(
          (c) =>
            coresFor(c.cores, o.freeCores, o.totalCores) !== null &&
            (c.memoryMb === null || c.memoryMb <= o.freeMemoryMb) &&
            (c.wallSec === null || o.remainingSec === null || c.wallSec <= o.remainingSec),
        );
        const choice = pick(candidates, o);
        if (fitting.length === 0) {
          expect(choice).toBeNull();
          return;
        }
        expect(choice).not.toBeNull();
        const chosen = candidates.find((x) => x.id === choice?.id);
        const best = Math.max(...fitting.map((c) => c.priority));
        expect(chosen?.priority).toBe(best);
      }),
    );
  });
});

describe('groups that require isolation', () => {
  const policy = new Set(['secure']);
  it('go only to offers of pilots that isolate; other groups go anywhere', () => {
    const picker = fairSharePicker(new Map(), 1, policy);
    const secure = cand({ group: 'secure' });
    const open = cand({ group: 'open' });
    expect(picker([secure, open], offer({ isolated: false }))?.id).toBe(open.id);
    expect(picker([secure], offer({})), 'an offer that does not say counts as not isolated').toBeNull();
    expect(picker([secure, open], offer({ isolated: true }))?.id).toBe(secure.id);
    expect(isolationAllows(open, { isolated: false }, policy)).toBe(true);
    expect(isolationAllows(secure, { isolated: false }, new Set())).toBe(true);
  });

  it('a GPU node that does not isolate keeps no cores for GPU work it may not be given', () => {
    const picker = fairSharePicker(new Map(), 1, policy);
    const gpuNode: Partial<Offer> = { capabilities: { gpus: [{ id: '0' }] }, free: { gpus: [{ id: '0' }], scratchMb: null } };
    // first in the queue a 1-core CPU payload (higher priority), then a 4-core GPU payload of the secure group
    const openCpu = cand({ group: 'open', priority: 10 });
    const secureGpu = cand({ group: 'secure', cores: { min: 4, max: 4, wholeNode: false }, requirements: { gpus: 1 } });
    // a node that isolates keeps its 4 cores for the GPU payload it could run: the CPU payload waits
    expect(picker([openCpu, secureGpu], offer({ ...gpuNode, isolated: true }))?.id).toBe(secureGpu.id);
    // one that does not never gets that payload, so it keeps nothing for it: its cores go to the work it may run
    expect(picker([openCpu, secureGpu], offer({ ...gpuNode, isolated: false }))?.id).toBe(openCpu.id);
  });
});

describe('an offer that names its groups (a director instance’s pilot)', () => {
  it('gets payloads of those groups only, however urgent another group’s are; an offer that names none gets any', () => {
    const cms = cand({ group: 'cms', priority: 10 });
    const atlas = cand({ group: 'atlas' });
    expect(pick([cms, atlas], offer({ groups: ['atlas'] }))?.id).toBe(atlas.id);
    expect(pick([cms], offer({ groups: ['atlas'] }))).toBeNull();
    expect(pick([cms, atlas], offer({ groups: null }))?.id).toBe(cms.id);
    expect(pick([cms, atlas], offer({}))?.id).toBe(cms.id);
  });
});
