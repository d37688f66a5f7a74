import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fairSharePicker, shareRatios } from '../../../../src/server/queue/pick.js';
import { coresTimeline, decayedCoreSec, groupUsage } from '../../../../src/server/queue/usage.js';
import { openSqliteStore, type SqliteStore } from '../../../../src/server/store/sqlite.js';
import type { Candidate, Offer } from '../../../../src/server/queue/offer.js';
import { registration, tempDir } from '../helpers.js';

const offer = (o: Partial<Offer> = {}): Offer => ({ freeCores: 4, totalCores: 4, freeMemoryMb: 8000, remainingSec: null, ...o });
const cand = (id: number, c: Partial<Candidate> = {}): Candidate => ({
  id,
  group: 'default',
  priority: 0,
  cores: { min: 1, max: 1, wholeNode: false },
  memoryMb: null,
  wallSec: null,
  submittedAt: id,
  ...c,
});

describe('decayed usage', () => {
  it('counts a finished interval at full weight now and half after one half-life', () => {
    const r = { group: 'a', cores: 4, startedAt: 0, endedAt: 1000 };
    // 4 cores × 1 s, seen right away: almost exactly 4 core-seconds
    expect(decayedCoreSec(r, 1000, 3600)).toBeCloseTo(4, 3);
    expect(decayedCoreSec(r, 1000 + 3600_000, 3600)).toBeCloseTo(2, 3);
    // a running interval counts up to now
    expect(decayedCoreSec({ ...r, endedAt: null }, 2000, 3600)).toBeCloseTo(8, 2);
  });

  it('sums per group and bins running cores for the chart', () => {
    const intervals = [
      { group: 'a', cores: 2, startedAt: 0, endedAt: 60_000 },
      { group: 'b', cores: 1, startedAt: 30_000, endedAt: null },
    ];
    const u = groupUsage(intervals, 60_000, 1e9);
    expect(u.get('a')).toBeCloseTo(120, 1);
    expect(u.get('b')).toBeCloseTo(30, 1);
    const t = coresTimeline(intervals, 0, 120_000, 30);
    expect(t.groups).toEqual({ a: [2, 2, 0, 0], b: [0, 1, 1, 1] });
  });

  it('its last point is what runs now, not an average that lags behind it', () => {
    // 4 cores started 3 s before `to`, in a 30 s bucket: the chart reads 4 at "now" (an average read 0.4)
    const t = coresTimeline([{ group: 'a', cores: 4, startedAt: 87_000, endedAt: null }], 0, 90_000, 30);
    expect(t.groups.a).toEqual([0, 0, 4]);
    // one that ran most of the last bucket and ended: nothing runs now; earlier buckets keep their averages
    const ended = coresTimeline([{ group: 'a', cores: 4, startedAt: 45_000, endedAt: 85_000 }], 0, 90_000, 30);
    expect(ended.groups.a).toEqual([0, 2, 0]);
  });
});

describe('fair-share picker', () => {
  const shares = new Map([
    ['atlas', 70],
    ['cms', 30],
  ]);
  const pickFair = fairSharePicker(shares);

  it('serves the group furthest below its share first, then priority, then first in', () => {
    const queue = [cand(1, { group: 'atlas' }), cand(2, { group: 'cms' }), cand(3, { group: 'cms', priority: 9 })];
    // atlas has had 80 % of the usage with a 70 % share: cms is further below
    const usage = new Map([
      ['atlas', 800],
      ['cms', 200],
    ]);
    expect(pickFair(queue, offer(), usage)).toEqual({ id: 3, cores: 1 });
    // cms at 40 % with a 30 % share: atlas goes first
    expect(pickFair(queue, offer(), new Map([['atlas', 600], ['cms', 400]]))?.id).toBe(1);
    const r = shareRatios(['atlas', 'cms'], new Map([['atlas', 600], ['cms', 400]]), shares, 1);
    expect(r.get('atlas')).toBeCloseTo(0.6 / 0.7, 6);
  });

  it('lets another group through when the neediest group has nothing that fits', () => {
    const queue = [cand(1, { group: 'cms', cores: { min: 8, max: 8, wholeNode: false } }), cand(2, { group: 'atlas' })];
    expect(pickFair(queue, offer(), new Map([['atlas', 1000]]))).toEqual({ id: 2, cores: 1 });
  });

  it('respects memory, wall time against the remaining time, whole nodes, ranges and minCores', () => {
    expect(pickFair([cand(1, { memoryMb: 9000 })], offer())).toBeNull();
    expect(pickFair([cand(1, { wallSec: 3600 })], offer({ remainingSec: 3000 }))).toBeNull();
    expect(pickFair([cand(1, { wallSec: 3600 })], offer({ remainingSec: 4000 }))).toEqual({ id: 1, cores: 1 });
    expect(pickFair([cand(1, { cores: { min: 1, max: 1, wholeNode: true } })], offer({ freeCores: 3 }))).toBeNull();
    expect(pickFair([cand(1, { cores: { min: 1, max: 1, wholeNode: true } })], offer())).toEqual({ id: 1, cores: 4 });
    expect(pickFair([cand(1, { cores: { min: 2, max: 8, wholeNode: false } })], offer({ freeCores: 3 }))).toEqual({ id: 1, cores: 3 });
    expect(pickFair([cand(1), cand(2, { cores: { min: 3, max: 3, wholeNode: false } })], offer({ minCores: 3 }))).toEqual({ id: 2, cores: 3 });
  });
});

describe('fair shares on the real store, simulated clock', () => {
  let tmp: ReturnType<typeof tempDir>;
  let store: SqliteStore;
  beforeEach(() => {
    tmp = tempDir();
    store = openSqliteStore(path.join(tmp.dir, 'server.db'));
  });
  afterEach(async () => {
    await store.close();
    tmp.remove();
  });

  it('gives two saturated groups with shares 70/30 usage within ±5 points of 70/30', async () => {
    const picker = fairSharePicker(new Map([['atlas', 70], ['cms', 30]]));
    const halfLifeSec = 1800;
    const t0 = Date.UTC(2025, 0, 1);
    let now = t0;
    const pilots = [
      { id: (await store.createPilot(registration({ cores: 8 }), 'h1', now)).id, cores: 8 },
      { id: (await store.createPilot(registration({ cores: 8 }), 'h2', now)).id, cores: 8 },
    ];
    const seq = new Map(pilots.map((p) => [p.id, 0]));
    const running: { pilotId: number; payloadId: number; cores: number; endsAt: number }[] = [];
    // deterministic lengths from 60 s to 600 s, cores 1 or 2
    let rnd = 12345;
    const next = () => ((rnd = (rnd * 1103515245 + 12345) % 2 ** 31), rnd / 2 ** 31);
    const topUp = async () => {
      for (const group of ['atlas', 'cms']) {
        const queued = (await store.listPayloads({ state: 'queued', group })).length;
        const more = Array.from({ length: 40 - queued }, () => ({
          command: ['sim'],
          group,
          cores: { min: next() < 0.7 ? 1 : 2, max: 2, wholeNode: false },
        }));
        if (more.length > 0) await store.submitPayloads(more.map((m) => ({ ...m, cores: { ...m.cores, max: m.cores.min } })), now);
      }
    };
    const stepMs = 10_000;
    for (let step = 0; step < (8 * 3600_000) / stepMs; step++) {
      now += stepMs;
      for (const r of running.filter((x) => x.endsAt <= now)) {
        const s = seq.get(r.pilotId)! + 1;
        seq.set(r.pilotId, s);
        await store.applyReport(r.pilotId, { seq: s, at: r.endsAt, type: 'payload-ended', payloadId: r.payloadId, exitCode: 0, signal: null }, now);
        running.splice(running.indexOf(r), 1);
      }
      await topUp();
      for (const p of pilots) {
        for (;;) {
          const used = running.filter((r) => r.pilotId === p.id).reduce((a, r) => a + r.cores, 0);
          const free = p.cores - used;
          if (free === 0) break;
          const a = await store.claimPayload(p.id, { freeCores: free, totalCores: p.cores, freeMemoryMb: 1e6, remainingSec: null }, picker, now, halfLifeSec);
          if (!a) break;
          const s = seq.get(p.id)! + 1;
          seq.set(p.id, s);
          await store.applyReport(p.id, { seq: s, at: now, type: 'payload-started', payloadId: a.id }, now);
          running.push({ pilotId: p.id, payloadId: a.id, cores: a.cores, endsAt: now + Math.round(60 + next() * 540) * 1000 });
        }
      }
    }
    const rows = await store.accounting({});
    const by = (g: string) => rows.filter((r) => r.group === g).reduce((a, r) => a + r.coreSec, 0);
    const atlas = by('atlas');
    const cms = by('cms');
    const atlasPct = (100 * atlas) / (atlas + cms);
    expect(atlas + cms).toBeGreaterThan(16 * 7 * 3600); // the pilots were kept busy
    expect(atlasPct).toBeGreaterThan(65);
    expect(atlasPct).toBeLessThan(75);
    // and the accounting adds up per pilot as well
    expect(new Set(rows.map((r) => r.pilotId))).toEqual(new Set(pilots.map((p) => p.id)));
    // eight simulated hours of claims against the real store: about 20 s on an idle machine, over 80 s beside the whole suite
  }, 240_000);
});
