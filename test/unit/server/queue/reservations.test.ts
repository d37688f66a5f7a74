import { describe, expect, it } from 'vitest';
import { decideDesignation, designate, type Designations } from '../../../../src/server/queue/reservations.js';
import type { Candidate } from '../../../../src/server/queue/offer.js';

const cand = (id: number, c: Partial<Candidate> = {}): Candidate => ({
  id,
  group: 'default',
  priority: 0,
  cores: { min: 1, max: 1, wholeNode: false },
  memoryMb: null,
  wallSec: null,
  submittedAt: 0,
  ...c,
});
const cores = (min: number) => ({ min, max: min, wholeNode: false });
const eight = { totalCores: 8, memoryMb: 16_000, remainingSec: null };
const STALE = 60_000;

describe('designate: each large waiting payload reserved by one pilot only', () => {
  it('tells a pilot the largest waiting request it could serve when empty, and how long it has waited', () => {
    const d: Designations = new Map();
    const queue = [
      cand(1),
      cand(2, { cores: cores(4), submittedAt: 10_000 }),
      cand(3, { cores: cores(16) }), // never fits an 8-core pilot
      cand(4, { cores: cores(6), memoryMb: 64_000 }), // nor its memory
    ];
    expect(designate(d, queue, 1, eight, 70_000, STALE)).toEqual({ cores: 4, waitingSec: 60 });
  });

  it('gives a whole-node payload all cores of the pilot, and skips one that cannot finish in time', () => {
    expect(designate(new Map(), [cand(5, { cores: { min: 1, max: 1, wholeNode: true } })], 1, eight, 1000, STALE)).toEqual({ cores: 8, waitingSec: 1 });
    expect(designate(new Map(), [cand(6, { cores: cores(2), wallSec: 100 })], 1, { ...eight, remainingSec: 50 }, 0, STALE)).toBeNull();
  });

  it('never tells two pilots about the same payload, and keeps telling the same pilot', () => {
    const d: Designations = new Map();
    const queue = [cand(1, { cores: cores(8) }), cand(2, { cores: cores(4) })];
    expect(designate(d, queue, 1, eight, 0, STALE)).toEqual({ cores: 8, waitingSec: 0 });
    expect(designate(d, queue, 2, eight, 0, STALE)).toEqual({ cores: 4, waitingSec: 0 });
    expect(designate(d, queue, 3, eight, 0, STALE)).toBeNull();
    expect(designate(d, queue, 1, eight, 5000, STALE)).toEqual({ cores: 8, waitingSec: 5 });
  });

  it('does not reserve for one-core work, which any free core takes', () => {
    expect(designate(new Map(), [cand(1), cand(2)], 1, eight, 0, STALE)).toBeNull();
  });

  it('frees a designation once the payload left the queue or its pilot stopped asking', () => {
    const d: Designations = new Map();
    const big = cand(1, { cores: cores(8) });
    designate(d, [big], 1, eight, 0, STALE);
    // started elsewhere: gone from the queue
    expect(designate(d, [], 1, eight, 1000, STALE)).toBeNull();
    expect(d.size).toBe(0);
    // pilot 1 reserves, then goes silent: pilot 2 takes the reservation over
    designate(d, [big], 1, eight, 0, STALE);
    expect(designate(d, [big], 2, eight, STALE - 1, STALE)).toBeNull();
    expect(designate(d, [big], 2, eight, STALE + 1, STALE)).toEqual({ cores: 8, waitingSec: (STALE + 1) / 1000 });
  });
});

describe('decideDesignation: the same decision over rows, as changes', () => {
  it('changes nothing it is given and returns what brings the rows to the decision', () => {
    const rows = Object.freeze([
      Object.freeze({ payloadId: 1, pilotId: 1, seenAt: 0 }),
      Object.freeze({ payloadId: 2, pilotId: 2, seenAt: 0 }),
    ]);
    // payload 1 left the queue; pilot 2 keeps payload 2; pilot 3 gets payload 3, the largest left
    const queue = [cand(2, { cores: cores(4) }), cand(3, { cores: cores(8) })];
    expect(decideDesignation(rows, queue, 2, eight, 1000, STALE)).toEqual({
      waiting: { cores: 4, waitingSec: 1 },
      changes: [{ kind: 'drop', payloadId: 1 }, { kind: 'set', payloadId: 2, pilotId: 2, seenAt: 1000 }],
    });
    expect(decideDesignation(rows, queue, 3, eight, 1000, STALE).changes).toEqual([
      { kind: 'drop', payloadId: 1 },
      { kind: 'set', payloadId: 3, pilotId: 3, seenAt: 1000 },
    ]);
    expect(rows).toHaveLength(2);
  });

  it('changes nothing when nothing is waiting and nothing is designated', () => {
    expect(decideDesignation([], [cand(1)], 1, eight, 0, STALE)).toEqual({ waiting: null, changes: [] });
  });
});

