import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EXACT_PAYLOADS, TAIL_TURN, demandFrom, demandTotals, type QueuedWork } from '../../../../src/server/director/demand.js';
import { countedQueue } from '../../../../src/server/director/memory-store.js';
import { queueOrder } from '../../../../src/server/queue/pick.js';

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
    // the last one needs what the first does (same group and priority): one item, where the oldest is
    expect(d.map((i) => [i.requirementClass, i.count])).toEqual([['', 2], ['arch=x86_64-v3 gpus=1', 2], ['site=CERN', 1]]);
  });

  it("within a group and a priority, payloads of one need are one item placed at the oldest of them; another priority is another item", () => {
    const d = demandFrom([q('a', 1, { priority: 5 }), q('a', 1), q('a', 4), q('a', 1), q('a', 4), q('a', 1)], new Map(), policy());
    // the priority-5 payload and the first priority-0 one are neighbours of one need: one item
    expect(d.map((i) => [i.cores, i.count])).toEqual([[1, 4], [4, 2]]);
    const e = demandFrom([q('a', 4, { priority: 5 }), q('a', 1), q('a', 4), q('a', 1)], new Map(), policy());
    expect(e.map((i) => [i.cores, i.count])).toEqual([[4, 1], [1, 2], [4, 1]]);
  });

  it('reads counted rows (QueuedWork.count) as that many payloads: the same demand as one row per payload', () => {
    const need = fc.record({
      group: fc.constantFrom('a', 'b', 'c'),
      cores: fc.constantFrom(1, 2, 4),
      whole: fc.boolean().map((b) => b && Math.random() < 0.2),
      memoryMb: fc.constantFrom(null, 1000),
      wallSec: fc.constantFrom(null, 600, 7200),
      gpu: fc.constantFrom(false, false, true),
      priority: fc.constantFrom(0, 0, 5),
      at: fc.integer({ min: 0, max: 50 }),
    });
    fc.assert(
      fc.property(fc.array(need, { maxLength: 80 }), fc.integer({ min: 0, max: 100 }), fc.record({ a: fc.integer({ min: 0, max: 3 }), b: fc.integer({ min: 1, max: 3 }) }), (rows, limit, shares) => {
        const queued = rows.map((r, i) =>
          q(r.group, r.cores, { id: i + 1, priority: r.priority, submittedAt: r.at, memoryMb: r.memoryMb, wallSec: r.wallSec, requirements: r.gpu ? { gpus: 1 } : null, cores: { min: r.cores, max: r.cores, wholeNode: r.whole } }),
        );
        const p = policy({ a: shares.a, b: shares.b }, 1);
        const perPayload = [...queued].sort(queueOrder).slice(0, limit);
        const counted = countedQueue(queued, limit);
        expect(counted.reduce((n, r) => n + r.count!, 0)).toBe(perPayload.length);
        expect(demandFrom(counted, new Map([['c', 4000]]), p)).toEqual(demandFrom(perPayload, new Map([['c', 4000]]), p));
        // every payload is in it once, of its group and need
        const tally = (d: ReturnType<typeof demandFrom>) => {
          const m = new Map<string, number>();
          for (const i of d) m.set(`${i.group} ${i.cores} ${i.wholeNode} ${i.memoryMb} ${i.wallSec} ${i.requirementClass}`, (m.get(`${i.group} ${i.cores} ${i.wholeNode} ${i.memoryMb} ${i.wallSec} ${i.requirementClass}`) ?? 0) + i.count);
          return m;
        };
        const want = new Map<string, number>();
        for (const w of perPayload) {
          const k = `${w.group} ${w.cores.wholeNode ? 1 : w.cores.min} ${w.cores.wholeNode} ${w.memoryMb ?? 0} ${w.wallSec} ${w.requirements ? 'gpus=1' : ''}`;
          want.set(k, (want.get(k) ?? 0) + 1);
        }
        expect(tally(demandFrom(counted, new Map(), p))).toEqual(want);
      }),
    );
  });

  it(`a long queue is a bounded number of items: exact to one payload for the first ${EXACT_PAYLOADS}, then turns of at most ${TAIL_TURN * 100} % of the position`, () => {
    const groups = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
    // 100,000 one-core payloads of ten groups of equal share, as the store counts them: one row per group
    const queued = groups.map((g, i) => q(g, 1, { id: i + 1, submittedAt: 1, count: 10_000 }));
    const d = demandFrom(queued, new Map(), policy());
    expect(demandTotals(d).payloads).toBe(100_000);
    expect(d.length).toBeLessThan(EXACT_PAYLOADS + 1_000);
    expect(firstGroups(d, 20)).toEqual([...groups, ...groups]);
    // at every item's end, no group is ahead of another by more than one turn there
    const seen = new Map(groups.map((g) => [g, 0]));
    let at = 0;
    for (const i of d) {
      const turn = at < EXACT_PAYLOADS ? 1 : Math.ceil(at * TAIL_TURN);
      at += i.count;
      seen.set(i.group, seen.get(i.group)! + i.count);
      const counts = [...seen.values()];
      expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(turn);
    }
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
