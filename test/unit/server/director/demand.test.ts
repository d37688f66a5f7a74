import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { demandFrom, demandTotals, type QueuedWork } from '../../../../src/server/director/demand.js';

let nextId = 1;
const q = (group: string, cores = 1, o: Partial<QueuedWork> = {}): QueuedWork => ({
  id: nextId++,
  group,
  priority: 0,
  cores: { min: cores, max: cores, wholeNode: false },
  memoryMb: null,
  wallSec: 600,
  submittedAt: nextId,
  ...o,
});
const policy = (shares: Record<string, number> = {}, defaultShare = 1) => ({ shares: new Map(Object.entries(shares)), defaultShare, defaultWallSec: 3600 });

/** The groups of the first n payloads of a demand. */
const firstGroups = (d: ReturnType<typeof demandFrom>, n: number): string[] => d.flatMap((i) => Array<string>(i.count).fill(i.group)).slice(0, n);

describe('demand', () => {
  it('merges neighbours that need the same into one item with a count', () => {
    const d = demandFrom([q('a'), q('a'), q('a', 4), q('a', 4, { memoryMb: 1000 })], new Map(), policy());
    expect(d).toEqual([
      { group: 'a', requirementClass: '', cores: 1, wholeNode: false, memoryMb: 0, wallSec: 600, count: 2 },
      { group: 'a', requirementClass: '', cores: 4, wholeNode: false, memoryMb: 0, wallSec: 600, count: 1 },
      { group: 'a', requirementClass: '', cores: 4, wholeNode: false, memoryMb: 1000, wallSec: 600, count: 1 },
    ]);
  });

  it('payloads with requirements are demand of their own class, named by their requirements; the same requirements are one class', () => {
    const gpu = { requirements: { gpus: 1, arch: ['x86_64-v3'] } };
    const d = demandFrom([q('a'), q('a', 1, gpu), q('a', 1, gpu), q('a', 1, { requirements: { site: ['CERN'] } }), q('a', 1, { requirements: null })], new Map(), policy());
    expect(d.map((i) => [i.requirementClass, i.count])).toEqual([['', 1], ['arch=x86_64-v3 gpus=1', 2], ['site=CERN', 1], ['', 1]]);
  });

  it("an endpoint test's probe payload is no demand: the test's own instance runs it, no other machine is started for it", () => {
    const d = demandFrom([q('vmpilot-probe-0123abcd'), q('a'), q('vmpilot-probe-0123abcd', 2)], new Map(), policy());
    expect(d.map((i) => [i.group, i.count])).toEqual([['a', 1]]);
  });

  it('a core range needs its minimum; a whole-node payload a whole machine', () => {
    const d = demandFrom([q('a', 1, { cores: { min: 2, max: 8, wholeNode: false } }), q('a', 1, { cores: { min: 1, max: 1, wholeNode: true } })], new Map(), policy());
    expect(d.map((i) => [i.cores, i.wholeNode])).toEqual([[2, false], [1, true]]);
  });

  it('interleaves the groups by their shares: 70:30 gives seven of every ten to the larger', () => {
    const queued = [...Array.from({ length: 100 }, () => q('atlas')), ...Array.from({ length: 100 }, () => q('cms'))];
    const d = demandFrom(queued, new Map(), policy({ atlas: 70, cms: 30 }));
    const first = firstGroups(d, 100);
    expect(first.filter((g) => g === 'atlas').length).toBeGreaterThanOrEqual(69);
    expect(first.filter((g) => g === 'atlas').length).toBeLessThanOrEqual(71);
    expect(demandTotals(d)).toEqual({ payloads: 200, cores: 200 });
  });

  it('a group that used more than its share lately waits until the others caught up', () => {
    const queued = [...Array.from({ length: 10 }, () => q('heavy')), ...Array.from({ length: 10 }, () => q('light'))];
    // heavy used 5 payloads' worth of core-seconds (1 core × 600 s each) more than light
    const d = demandFrom(queued, new Map([['heavy', 3000]]), policy());
    expect(firstGroups(d, 5)).toEqual(['light', 'light', 'light', 'light', 'light']);
  });

  it('keeps each group\'s own order: priority, then first submitted', () => {
    const late = q('a', 2, { priority: 5 });
    const d = demandFrom([q('a', 1), late], new Map(), policy());
    expect(d[0]!.cores).toBe(2);
  });

  it('puts groups with share 0 last', () => {
    const d = demandFrom([q('zero'), q('one')], new Map(), policy({ zero: 0 }));
    expect(d.map((i) => i.group)).toEqual(['one', 'zero']);
  });

  it('keeps every payload, and any prefix gives each group its share within one payload', () => {
    fc.assert(
      fc.property(
        fc.record({ a: fc.integer({ min: 0, max: 60 }), b: fc.integer({ min: 0, max: 60 }), sa: fc.integer({ min: 1, max: 9 }), sb: fc.integer({ min: 1, max: 9 }), n: fc.integer({ min: 1, max: 120 }) }),
        ({ a, b, sa, sb, n }) => {
          const queued = [...Array.from({ length: a }, () => q('a')), ...Array.from({ length: b }, () => q('b'))];
          const d = demandFrom(queued, new Map(), policy({ a: sa, b: sb }));
          expect(demandTotals(d).payloads).toBe(a + b);
          const first = firstGroups(d, n);
          const na = first.filter((g) => g === 'a').length;
          const nb = first.length - na;
          // while both groups still have work, neither is ahead of its share by more than one payload
          if (na < a && nb < b) expect(Math.abs(na * sb - nb * sa)).toBeLessThanOrEqual(Math.max(sa, sb));
        },
      ),
    );
  });

  it("reads a queue in the queue's order in one pass, and one out of order the same as if sorted first", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ group: fc.constantFrom('a', 'b', 'c'), cores: fc.constantFrom(1, 2, 4), priority: fc.constantFrom(0, 0, 5), at: fc.integer({ min: 0, max: 50 }) }), { maxLength: 60 }),
        (rows) => {
          const queued = rows.map((r, i) => q(r.group, r.cores, { id: i + 1, priority: r.priority, submittedAt: r.at }));
          const sorted = [...queued].sort((x, y) => y.priority - x.priority || x.submittedAt - y.submittedAt || x.id - y.id);
          const p = policy({ a: 3, b: 2, c: 1 });
          expect(demandFrom(queued, new Map(), p)).toEqual(demandFrom(sorted, new Map(), p));
        },
      ),
    );
  });
});
