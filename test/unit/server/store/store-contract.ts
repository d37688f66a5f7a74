/**
 * What every Store (store.ts) does, whatever engine holds the records: run
 * on SQLite (sqlite.test.ts) and on PostgreSQL (pg.test.ts). Submit and
 * claim, reports applied once each in seq order, refusals that change
 * nothing, releases and shutdowns, redelivery, instructions, what survives
 * closing and opening the store again; the records parts are in
 * store-contract-records.ts, how interrupted attempts end in
 * store-contract-endings.ts, concurrency in store-contract-concurrency.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Offer } from '../../../../src/server/queue/offer.js';
import { CANDIDATE_WINDOW, pick } from '../../../../src/server/queue/pick.js';
import type { Store, StorePolicy } from '../../../../src/server/store/store.js';
import { heartbeat, registration } from '../helpers.js';
import { concurrencyContract } from './store-contract-concurrency.js';
import { endingsContract } from './store-contract-endings.js';
import { recordsContract } from './store-contract-records.js';

/** The contract's time zero (ms). */
export const T = 1_700_000_000_000;
/** What a four-core pilot offers. */
export const offer: Offer = { freeCores: 4, totalCores: 4, freeMemoryMb: 8000, remainingSec: null };

/** One empty database: `open()` opens a Store on it (again and again: several stores on one database); `close()` closes them all and removes it. */
export interface StoreWorld {
  open(policy?: StorePolicy): Promise<Store>;
  close(): Promise<void>;
}

/** A new world per test. */
export type MakeWorld = () => Promise<StoreWorld>;

/** Run the whole contract on the worlds `make` gives. */
export function storeContract(name: string, make: MakeWorld): void {
  describe(`Store contract: ${name}`, () => {
    let world: StoreWorld;
    let store: Store;
    beforeEach(async () => {
      world = await make();
      store = await world.open();
    });
    afterEach(async () => {
      await world.close();
    });

    const pilot = async () => (await store.createPilot(registration(), `hash-${Math.random()}`, T)).id;

    it('keeps how a pilot isolates its payloads, as it said at registration (null when it did not say)', async () => {
      const said = await store.createPilot({ ...registration(), isolation: 'bwrap' }, 'hash-isolated', T);
      const silent = await store.createPilot(registration(), 'hash-silent', T);
      expect((await store.getPilot(said.id))?.isolation).toBe('bwrap');
      expect((await store.getPilot(silent.id))?.isolation).toBeNull();
    });

    it("a group's head of work this pilot cannot run (more GPU payloads than a claim looks at) does not hide the group's plain work behind it", async () => {
      const pilotId = await pilot();
      const gpuWork = Array.from({ length: CANDIDATE_WINDOW + 20 }, () => ({ command: ['train'], group: 'atlas', requirements: { gpus: 1 } }));
      await store.submitPayloads(gpuWork, T);
      const plain = await store.submitPayload({ command: ['reco'], group: 'atlas' }, T + 1);
      // a node without GPUs: none of the GPU payloads fit it, the plain one behind them does
      const a = await store.claimPayload(pilotId, { ...offer, capabilities: { gpus: [] } }, pick, T + 2);
      expect(a?.id).toBe(plain.id);
    });

    it('submits with defaults: one core, group default, name from the command', async () => {
      const p = await store.submitPayload({ command: ['/usr/bin/sim', '--n', '5'] }, T);
      expect(p).toMatchObject({
        name: 'sim',
        group: 'default',
        cores: { min: 1, max: 1, wholeNode: false },
        priority: 0,
        state: 'queued',
        pilotId: null,
        attempts: 0,
        submittedAt: T,
      });
    });

    it('moves a payload queued → assigned → running → done and records the end', async () => {
      const pilotId = await pilot();
      const { id } = await store.submitPayload({ command: ['true'], cores: { min: 2, max: 4, wholeNode: false } }, T);
      const a = await store.claimPayload(pilotId, { ...offer, freeCores: 3 }, pick, T + 1);
      expect(a).toMatchObject({ id, cores: 3, command: ['true'], env: {} });
      expect((await store.getPayload(id))?.state).toBe('assigned');
      expect(await store.applyReport(pilotId, { seq: 1, at: T + 2, type: 'payload-started', payloadId: id }, T + 2)).toEqual({ kind: 'applied' });
      expect((await store.getPayload(id))?.state).toBe('running');
      await store.applyReport(
        pilotId,
        { seq: 2, at: T + 3, type: 'payload-ended', payloadId: id, exitCode: 0, signal: null, outputTail: 'all good\n' },
        T + 3,
      );
      expect(await store.getPayload(id)).toMatchObject({
        state: 'done',
        exitCode: 0,
        signal: null,
        outputTail: 'all good\n',
        allocatedCores: 3,
        pilotId,
        assignedAt: T + 1,
        startedAt: T + 2,
        endedAt: T + 3,
        attempts: 1,
      });
    });

    it('marks a payload failed when it exits non-zero or by a signal', async () => {
      const pilotId = await pilot();
      const a = await store.submitPayload({ command: ['false'] }, T);
      const b = await store.submitPayload({ command: ['sleep'] }, T);
      await store.claimPayload(pilotId, offer, pick, T);
      await store.claimPayload(pilotId, offer, pick, T);
      await store.applyReport(pilotId, { seq: 1, at: T, type: 'payload-ended', payloadId: a.id, exitCode: 1, signal: null }, T);
      await store.applyReport(pilotId, { seq: 2, at: T, type: 'payload-ended', payloadId: b.id, exitCode: null, signal: 'SIGKILL' }, T);
      expect((await store.getPayload(a.id))?.state).toBe('failed');
      expect(await store.getPayload(b.id)).toMatchObject({ state: 'failed', signal: 'SIGKILL' });
    });

    it('applies each seq once: a repeated report changes nothing, another report under an applied seq is refused', async () => {
      const pilotId = await pilot();
      const { id } = await store.submitPayload({ command: ['true'] }, T);
      await store.claimPayload(pilotId, offer, pick, T);
      await store.applyReport(pilotId, { seq: 1, at: T, type: 'payload-started', payloadId: id }, T);
      const ended = { seq: 2, at: T, type: 'payload-ended', payloadId: id, exitCode: 0, signal: null } as const;
      await store.applyReport(pilotId, ended, T);
      const before = await store.getPayload(id);
      expect(await store.applyReport(pilotId, { ...ended }, T)).toEqual({ kind: 'duplicate' });
      expect(await store.applyReport(pilotId, { ...ended, exitCode: 9 }, T)).toMatchObject({ kind: 'refused', code: 'VMP_REPORT_CONFLICT' });
      expect(await store.applyReport(pilotId, { seq: 1, at: T, type: 'shutdown', code: 700, message: 'late' }, T)).toMatchObject({ kind: 'refused', code: 'VMP_REPORT_CONFLICT' });
      expect(await store.getPayload(id)).toEqual(before);
      expect((await store.getPilot(pilotId))?.state).toBe('booting');
      expect(await store.appliedSeq(pilotId)).toBe(2);
    });

    it('refuses a report beyond the applied seq + 1 and applies nothing of it', async () => {
      const pilotId = await pilot();
      await store.applyReport(pilotId, { seq: 1, at: T, type: 'state', state: 'serving', reason: 'x' }, T);
      expect(await store.applyReport(pilotId, { seq: 3, at: T, type: 'shutdown', code: 100, message: 'x' }, T)).toMatchObject({ kind: 'out-of-order', appliedSeq: 1 });
      expect((await store.getPilot(pilotId))?.state).toBe('running');
      expect(await store.appliedSeq(pilotId)).toBe(1);
    });

    it('refuses to start a payload that is not assigned to the pilot, and asks it to kill it', async () => {
      const mine = await pilot();
      const other = await pilot();
      const { id } = await store.submitPayload({ command: ['true'] }, T);
      await store.claimPayload(mine, offer, pick, T);
      const outcome = await store.applyReport(other, { seq: 1, at: T, type: 'payload-started', payloadId: id }, T);
      expect(outcome).toMatchObject({ kind: 'refused', code: 'VMP_PAYLOAD_NOT_YOURS', instruction: { type: 'kill-payload', payloadId: id } });
      expect((await store.getPayload(id))?.state).toBe('assigned');
      expect(await store.pendingInstructions(other)).toMatchObject([{ type: 'kill-payload', payloadId: id }]);
      // the refused report counts as delivered
      expect(await store.appliedSeq(other)).toBe(1);
    });

    it('refuses an ended report for a payload that already ended, leaving it as it was', async () => {
      const pilotId = await pilot();
      const { id } = await store.submitPayload({ command: ['true'] }, T);
      await store.claimPayload(pilotId, offer, pick, T);
      await store.applyReport(pilotId, { seq: 1, at: T, type: 'payload-ended', payloadId: id, exitCode: 0, signal: null }, T);
      const again = await store.applyReport(pilotId, { seq: 2, at: T, type: 'payload-ended', payloadId: id, exitCode: 3, signal: null }, T);
      expect(again).toMatchObject({ kind: 'refused', code: 'VMP_PAYLOAD_STATE' });
      expect(await store.getPayload(id)).toMatchObject({ state: 'done', exitCode: 0 });
    });

    it('puts a payload the pilot released back in the queue, with no attempt counted and its history kept; refuses anything else', async () => {
      const pilotId = await pilot();
      const other = await pilot();
      const { id } = await store.submitPayload({ command: ['true'] }, T);
      await store.claimPayload(pilotId, offer, pick, T + 1);
      expect(await store.applyReport(other, { seq: 1, at: T + 2, type: 'payload-released', payloadId: id, reason: 'draining' }, T + 2)).toMatchObject({
        kind: 'refused',
        code: 'VMP_PAYLOAD_NOT_YOURS',
      });
      const released = { seq: 1, at: T + 2, type: 'payload-released' as const, payloadId: id, reason: 'not started: the pilot is draining' };
      expect(await store.applyReport(pilotId, released, T + 2)).toEqual({ kind: 'applied' });
      expect(await store.getPayload(id)).toMatchObject({ state: 'queued', pilotId: null, allocatedCores: null, assignedAt: null, attempts: 0 });
      expect(await store.applyReport(pilotId, released, T + 2)).toEqual({ kind: 'duplicate' });
      const history = await store.payloadHistory(id);
      expect(history.at(-1)).toMatchObject({ state: 'queued', reason: `released by pilot ${pilotId}: not started: the pilot is draining` });
      // a started payload is never released: it ran, so it must end
      await store.claimPayload(pilotId, offer, pick, T + 3);
      await store.applyReport(pilotId, { seq: 2, at: T + 4, type: 'payload-started', payloadId: id }, T + 4);
      expect(await store.applyReport(pilotId, { seq: 3, at: T + 5, type: 'payload-released', payloadId: id, reason: 'x' }, T + 5)).toMatchObject({
        kind: 'refused',
        code: 'VMP_PAYLOAD_STATE',
      });
      expect(await store.getPayload(id)).toMatchObject({ state: 'running', attempts: 1 });
    });

    it('on shutdown: requeues assigned payloads, records running ones lost and requeues them, halts the pilot', async () => {
      const pilotId = await pilot();
      const running = await store.submitPayload({ command: ['run'] }, T);
      const waiting = await store.submitPayload({ command: ['wait'] }, T);
      await store.claimPayload(pilotId, offer, pick, T);
      await store.claimPayload(pilotId, offer, pick, T);
      await store.applyReport(pilotId, { seq: 1, at: T, type: 'payload-started', payloadId: running.id }, T);
      await store.applyReport(pilotId, { seq: 2, at: T + 5, type: 'shutdown', code: 100, message: 'Shutdown as requested' }, T + 5);
      expect(await store.getPilot(pilotId)).toMatchObject({ state: 'halted', shutdownCode: 100, shutdownMessage: 'Shutdown as requested', coresUsed: 0 });
      expect(await store.getPayload(waiting.id)).toMatchObject({ state: 'queued', pilotId: null, allocatedCores: null, attempts: 1 });
      expect(await store.getPayload(running.id)).toMatchObject({ state: 'queued', pilotId: null, startedAt: null, attempts: 1 });
      expect((await store.getPayload(running.id))?.message).toMatch(/halted while it ran/);
      expect((await store.listPayloads({})).length).toBe(2);
      // the requeued payloads go to the next pilot, oldest first
      const next = await pilot();
      expect((await store.claimPayload(next, offer, pick, T + 6))?.id).toBe(running.id);
      expect((await store.claimPayload(next, offer, pick, T + 6))?.id).toBe(waiting.id);
      expect((await store.getPayload(waiting.id))?.attempts).toBe(2);
    });

    it('keeps a halted pilot halted and its history in order', async () => {
      const pilotId = await pilot();
      await store.recordHeartbeat(pilotId, heartbeat({ state: 'serving' }), T + 1);
      await store.applyReport(pilotId, { seq: 1, at: T + 2, type: 'state', state: 'draining', reason: 'admin asked' }, T + 2);
      await store.applyReport(pilotId, { seq: 2, at: T + 3, type: 'shutdown', code: 300, message: 'No more work' }, T + 3);
      const late = await store.applyReport(pilotId, { seq: 3, at: T + 4, type: 'state', state: 'serving', reason: 'oops' }, T + 4);
      expect(late).toMatchObject({ kind: 'refused', code: 'VMP_PILOT_HALTED' });
      await store.recordHeartbeat(pilotId, heartbeat({ state: 'serving' }), T + 5);
      expect((await store.getPilot(pilotId))?.state).toBe('halted');
      expect((await store.pilotHistory(pilotId)).map((h) => h.state)).toEqual(['booting', 'running', 'draining', 'halted']);
    });

    it('redelivers an assigned, unstarted payload the pilot does not hold', async () => {
      const pilotId = await pilot();
      const { id } = await store.submitPayload({ command: ['true'] }, T);
      await store.claimPayload(pilotId, offer, pick, T);
      expect((await store.redeliverable(pilotId, []))?.id).toBe(id);
      expect(await store.redeliverable(pilotId, [id])).toBeNull();
      expect(await store.redeliverable(await pilot(), [])).toBeNull();
    });

    it('hands out nothing when nothing fits, and leaves the queue as it was', async () => {
      const pilotId = await pilot();
      await store.submitPayload({ command: ['big'], cores: { min: 8, max: 8, wholeNode: false } }, T);
      expect(await store.claimPayload(pilotId, offer, pick, T)).toBeNull();
      expect(await store.queuedCount()).toBe(1);
    });

    it('marks instructions done so they are not sent again', async () => {
      const pilotId = await pilot();
      const ins = await store.addInstruction(pilotId, { type: 'drain', reason: 'maintenance' }, T);
      expect(await store.pendingInstructions(pilotId)).toEqual([ins]);
      await store.applyReport(pilotId, { seq: 1, at: T, type: 'instruction-done', instructionId: ins.id, ok: true }, T);
      expect(await store.pendingInstructions(pilotId)).toEqual([]);
    });

    it('finds everything again after the store is closed and opened again', async () => {
      const pilotId = await pilot();
      const { id } = await store.submitPayload({ command: ['true'], env: { A: '1' } }, T);
      await store.claimPayload(pilotId, offer, pick, T);
      await store.addInstruction(pilotId, { type: 'ping' }, T);
      await store.setSetting('admin_token_sha256', 'abc');
      const payloads = await store.listPayloads({});
      const pilots = await store.listPilots({});
      await store.close();
      store = await world.open();
      expect(await store.listPayloads({})).toEqual(payloads);
      expect(await store.listPilots({})).toEqual(pilots);
      expect(await store.getSetting('admin_token_sha256')).toBe('abc');
      expect(await store.pendingInstructions(pilotId)).toMatchObject([{ type: 'ping' }]);
      expect((await store.redeliverable(pilotId, []))?.env).toEqual({ A: '1' });
      expect(id).toBeGreaterThan(0);
    });

    it('filters payloads by state, group and pilot', async () => {
      const pilotId = await pilot();
      await store.submitPayload({ command: ['a'], group: 'atlas' }, T);
      await store.submitPayload({ command: ['b'], group: 'cms' }, T);
      await store.claimPayload(pilotId, offer, pick, T);
      expect((await store.listPayloads({ group: 'cms' })).map((p) => p.name)).toEqual(['b']);
      expect((await store.listPayloads({ state: 'assigned' })).map((p) => p.name)).toEqual(['a']);
      expect((await store.listPayloads({ pilotId })).map((p) => p.name)).toEqual(['a']);
      expect(await store.listPayloads({ limit: 1 })).toHaveLength(1);
    });
  });
  recordsContract(name, make);
  endingsContract(name, make);
  concurrencyContract(name, make);
}
