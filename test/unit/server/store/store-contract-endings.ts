/**
 * How every Store ends an attempt the infrastructure stopped (the fourth
 * part of store-contract.ts): an evicted payload queued again with its
 * attempt counted until maxAttempts fails it, a finished one never turned
 * into a retry, `requeue: false` honoured for evicted and lost attempts,
 * and a payload killed while it runs ending cancelled however its attempt
 * ends, with the accounting of each.
 */
import { describe, expect, it } from 'vitest';
import type { PayloadEndedReport } from '../../../../src/protocol/index.js';
import { pick } from '../../../../src/server/queue/pick.js';
import { groupUsage } from '../../../../src/server/queue/usage.js';
import type { Store } from '../../../../src/server/store/store.js';
import { registration } from '../helpers.js';
import { T, offer, type MakeWorld } from './store-contract.js';

/** The endings part of the contract. */
export function endingsContract(name: string, make: MakeWorld): void {
  describe(`Store contract, endings: ${name}`, () => {
    /** Each pilot numbers its reports 1, 2, 3 … (the server refuses a gap). */
    const seqs = new Map<number, number>();
    const nextSeq = (pilotId: number) => {
      const n = (seqs.get(pilotId) ?? 0) + 1;
      seqs.set(pilotId, n);
      return n;
    };
    const open = async (maxAttempts = 3): Promise<{ store: Store; remove: () => Promise<void> }> => {
      const world = await make();
      const store = await world.open({ maxAttempts });
      seqs.clear(); // a new database: its pilots number from 1 again
      return { store, remove: () => world.close() };
    };
    const pilotOf = async (store: Store) => (await store.createPilot(registration(), `hash-${Math.random()}`, T)).id;
    /** Hand `id` to a new pilot, start it at `at`, and report it ended at `at + ms` with `end`. */
    const attempt = async (store: Store, id: number, at: number, ms: number, end: Partial<PayloadEndedReport>) => {
      const pilotId = await pilotOf(store);
      expect((await store.claimPayload(pilotId, offer, pick, at))?.id).toBe(id);
      await store.applyReport(pilotId, { seq: nextSeq(pilotId), at, type: 'payload-started', payloadId: id }, at);
      const report: PayloadEndedReport = { seq: nextSeq(pilotId), at: at + ms, type: 'payload-ended', payloadId: id, exitCode: null, signal: 'SIGTERM', ...end };
      expect(await store.applyReport(pilotId, report, at + ms)).toEqual({ kind: 'applied' });
      return pilotId;
    };

    it('queues an evicted payload again with the attempt counted and an evicted step in its history, and fails it after maxAttempts', async () => {
      const { store, remove } = await open(3);
      try {
        const { id } = await store.submitPayload({ command: ['sim'], group: 'atlas' }, T);
        const evicted = { evicted: { reason: 'halt' as const }, message: 'stopped: halting: site downtime', outputTail: 'event 17\n' };
        const first = await attempt(store, id, T + 1000, 10_000, evicted);
        expect(await store.getPayload(id)).toMatchObject({
          state: 'queued',
          attempts: 1,
          pilotId: null,
          startedAt: null,
          evictions: 1,
          evictedCoreSec: 10,
          outputTail: 'event 17\n',
          message: `evicted by pilot ${first} (halt): stopped: halting: site downtime`,
        });
        const history = await store.payloadHistory(id);
        expect(history.map((h) => h.state)).toEqual(['queued', 'assigned', 'running', 'evicted', 'queued']);
        expect(history[3]).toEqual({ state: 'evicted', pilotId: first, reason: `evicted by pilot ${first} (halt): stopped: halting: site downtime`, at: T + 11_000 });
        expect(history[4]).toMatchObject({ pilotId: null, reason: 'requeued after attempt 1 of 3 was evicted' });

        await attempt(store, id, T + 20_000, 5000, { evicted: { reason: 'signal' } });
        expect(await store.getPayload(id)).toMatchObject({ state: 'queued', attempts: 2, evictions: 2 });
        // the third is the last: evicted again, it fails, and says why
        const last = await attempt(store, id, T + 30_000, 5000, { evicted: { reason: 'deadline' } });
        const p = await store.getPayload(id);
        expect(p).toMatchObject({ state: 'failed', attempts: 3, evictions: 3, evictedCoreSec: 20, coreSec: 0 });
        expect(p?.message).toMatch(new RegExp(`^evicted on its last attempt \\(3 of 3\\): evicted by pilot ${last} \\(deadline\\)`));
        // the accounting: every core-second evicted, one failure (the payload's end), three evicted attempts
        const rows = await store.accounting({ group: 'atlas' });
        const sum = (k: 'coreSec' | 'evictedCoreSec' | 'failedCoreSec' | 'failed' | 'evicted') => rows.reduce((s, r) => s + r[k], 0);
        expect([sum('coreSec'), sum('evictedCoreSec'), sum('failedCoreSec'), sum('failed'), sum('evicted')]).toEqual([20, 20, 0, 1, 3]);
        expect((await store.counts()).coreSecByOutcome).toEqual({ done: 0, failed: 0, cancelled: 0, evicted: 20 });
        // fair share counts the evicted runs: the cores were used
        const usage = groupUsage(await store.runIntervals(0), T + 40_000, 1e9);
        expect(usage.get('atlas')).toBeCloseTo(20, 3);
      } finally {
        await remove();
      }
    });

    it('does not let an eviction claim turn a finished or over-limit payload into a retry', async () => {
      const { store, remove } = await open();
      try {
        const done = (await store.submitPayload({ command: ['a'] }, T)).id;
        await attempt(store, done, T, 1000, { exitCode: 0, signal: null, evicted: { reason: 'halt' } });
        expect(await store.getPayload(done)).toMatchObject({ state: 'done', attempts: 1, evictions: 0, coreSec: 1 });
        const slow = (await store.submitPayload({ command: ['b'] }, T)).id;
        await attempt(store, slow, T, 1000, { timedOut: true, evicted: { reason: 'lease' } });
        expect(await store.getPayload(slow)).toMatchObject({ state: 'failed', evictions: 0 });
      } finally {
        await remove();
      }
    });

    it('fails a payload submitted with requeue: false when the infrastructure ends its attempt (evicted or lost)', async () => {
      const { store, remove } = await open();
      try {
        const once = (await store.submitPayload({ command: ['migrate'], requeue: false }, T)).id;
        expect((await store.getPayload(once))?.requeue).toBe(false);
        await attempt(store, once, T, 1000, { evicted: { reason: 'signal' } });
        const p = await store.getPayload(once);
        expect(p).toMatchObject({ state: 'failed', attempts: 1, evictions: 1 });
        expect(p?.message).toMatch(/^evicted, not requeued \(submitted with requeue: false\): evicted by pilot \d+ \(signal\)/);
        // lost with its pilot (a stall): the same
        const lost = (await store.submitPayload({ command: ['migrate'], requeue: false }, T)).id;
        const pilotId = await pilotOf(store);
        await store.claimPayload(pilotId, offer, pick, T);
        await store.applyReport(pilotId, { seq: nextSeq(pilotId), at: T, type: 'payload-started', payloadId: lost }, T);
        const swept = await store.sweepStalled(T + 10_000, T + 20_000);
        expect(swept).toMatchObject({ requeued: [], failed: [lost] });
        expect((await store.getPayload(lost))?.message).toMatch(/^lost, not requeued \(submitted with requeue: false\): pilot \d+ stalled/);
      } finally {
        await remove();
      }
    });

    it('ends a payload killed while it runs cancelled, however its attempt ends: reported, lost with its pilot, released or never started', async () => {
      const { store, remove } = await open();
      try {
        const ids = [];
        for (let i = 0; i < 4; i++) ids.push((await store.submitPayload({ command: [`p${i}`] }, T)).id);
        const [reported, lost, released, halted] = ids as [number, number, number, number];
        const a = await pilotOf(store);
        for (let i = 0; i < 4; i++) await store.claimPayload(a, { ...offer, freeCores: 1 }, pick, T);
        await store.applyReport(a, { seq: nextSeq(a), at: T, type: 'payload-started', payloadId: reported }, T);
        await store.applyReport(a, { seq: nextSeq(a), at: T, type: 'payload-started', payloadId: lost }, T);
        for (const id of ids) expect((await store.killPayload(id, 'wrong input', T + 1))?.type).toBe('kill-payload');
        // a second kill sends nothing new and keeps the first reason
        const again = await store.killPayload(reported, 'other reason', T + 2);
        expect(again).toMatchObject({ payloadId: reported, reason: 'wrong input' });
        // killed payloads the pilot was handed but does not hold are not handed to it again
        expect(await store.redeliverable(a, [])).toBeNull();
        // stopped by the halt at the same time: the kill wins
        await store.applyReport(a, { seq: nextSeq(a), at: T + 5000, type: 'payload-ended', payloadId: reported, exitCode: null, signal: 'SIGTERM', evicted: { reason: 'halt' } }, T + 5000);
        await store.applyReport(a, { seq: nextSeq(a), at: T + 5000, type: 'payload-released', payloadId: released, reason: 'draining' }, T + 5000);
        await store.applyReport(a, { seq: nextSeq(a), at: T + 6000, type: 'shutdown', code: 100, message: 'Shutdown as requested' }, T + 6000);
        for (const id of ids) expect((await store.getPayload(id))?.state, `payload ${id}`).toBe('cancelled');
        expect((await store.getPayload(reported))?.message).toBe('cancelled: wrong input');
        expect((await store.getPayload(lost))?.message).toMatch(/^cancelled: wrong input \(pilot \d+ halted while it ran/);
        expect((await store.payloadHistory(halted)).map((h) => h.state)).toEqual(['queued', 'assigned', 'cancelled']);
        const [row] = await store.accounting({});
        expect(row).toMatchObject({ cancelled: 2, cancelledCoreSec: 5, evicted: 1, evictedCoreSec: 6, failed: 0, done: 0 });
        await expect(store.killPayload(reported, 'x', T + 7000)).rejects.toThrow(/already ended \(cancelled\)/);
      } finally {
        await remove();
      }
    });
  });
}
