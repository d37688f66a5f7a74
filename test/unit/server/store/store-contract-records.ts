/**
 * What every Store keeps of records beyond one payload's life (the second
 * part of store-contract.ts): counts by state and core-seconds by outcome,
 * listings page by page, what an administrator sees of a pilot (contact,
 * cores in use, batch job id and labels, last heartbeat, instructions with
 * their acknowledgements, one drain at a time), credentials, the stall
 * sweep, accounting, the overview, and the reservation designations two
 * stores on one database share.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pick } from '../../../../src/server/queue/pick.js';
import { decideDesignation } from '../../../../src/server/queue/reservations.js';
import type { Store } from '../../../../src/server/store/store.js';
import { heartbeat, registration } from '../helpers.js';
import { T, offer, type MakeWorld, type StoreWorld } from './store-contract.js';
import { PAYLOAD_SORT_KEYS, PILOT_SORT_KEYS, parseSort } from '../../../../src/server/store/list-order.js';

const eight = { totalCores: 8, memoryMb: 16_000, remainingSec: null };
const STALE = 60_000;

/**
 * Every kind of change the counts must follow, on `store`: a payload done,
 * one lost with a stalled pilot and queued again, a halted pilot, one
 * cancelled in the queue, one evicted then failed, one killed while it runs.
 * The counts after it: payloads done 1, failed 1, cancelled 2, queued 1.
 */
export async function everyKindOfChange(store: Store): Promise<void> {
  const pilots = [];
  for (let i = 0; i < 3; i++) pilots.push((await store.createPilot(registration({ hostname: `h${i}` }), `c${i}`, T)).id);
  const [p0, p1, p2] = pilots as [number, number, number];
  await store.submitPayloads([{ command: ['a'], group: 'x' }, { command: ['b'], group: 'y' }, { command: ['c'], group: 'y' }], T);
  const offer = { freeCores: 4, totalCores: 4, freeMemoryMb: 1000, remainingSec: null };
  // done
  const a = (await store.claimPayload(p0, offer, pick, T))!;
  await store.applyReport(p0, { seq: 1, at: T, type: 'payload-started', payloadId: a.id }, T + 1000);
  await store.applyReport(p0, { seq: 2, at: T + 5000, type: 'payload-ended', payloadId: a.id, exitCode: 0, signal: null }, T + 5000);
  // lost with a stalled pilot (queued again)
  const b = (await store.claimPayload(p1, offer, pick, T))!;
  await store.applyReport(p1, { seq: 1, at: T, type: 'payload-started', payloadId: b.id }, T + 1000);
  // a halted pilot; a payload cancelled in the queue
  await store.applyReport(p2, { seq: 1, at: T, type: 'shutdown', code: 300, message: 'idle' }, T);
  await store.killPayload(3, 'no', T);
  await store.sweepStalled(T + 1500, T + 20_000);
  const p3 = (await store.createPilot(registration({ hostname: 'h3' }), 'c3', T + 30_000)).id;
  // evicted by its pilot (queued again), then failed; then killed while it runs (cancelled)
  await store.submitPayloads([{ command: ['d'], group: 'z' }, { command: ['e'], group: 'z' }], T);
  const d = (await store.claimPayload(p3, offer, pick, T + 30_000))!;
  await store.applyReport(p3, { seq: 1, at: T + 30_000, type: 'payload-started', payloadId: d.id }, T + 30_000);
  await store.applyReport(p3, { seq: 2, at: T + 32_000, type: 'payload-ended', payloadId: d.id, exitCode: null, signal: 'SIGTERM', evicted: { reason: 'halt' } }, T + 32_000);
  const d2 = (await store.claimPayload(p3, offer, pick, T + 33_000))!;
  await store.applyReport(p3, { seq: 3, at: T + 33_000, type: 'payload-started', payloadId: d2.id }, T + 33_000);
  await store.applyReport(p3, { seq: 4, at: T + 36_000, type: 'payload-ended', payloadId: d2.id, exitCode: 1, signal: null }, T + 36_000);
  const e = (await store.claimPayload(p3, offer, pick, T + 37_000))!;
  await store.applyReport(p3, { seq: 5, at: T + 37_000, type: 'payload-started', payloadId: e.id }, T + 37_000);
  await store.killPayload(e.id, 'wrong input', T + 38_000);
  await store.applyReport(p3, { seq: 6, at: T + 39_000, type: 'payload-ended', payloadId: e.id, exitCode: null, signal: 'SIGTERM' }, T + 39_000);
}

/** The records part of the contract. */
export function recordsContract(name: string, make: MakeWorld): void {
  describe(`Store contract, records: ${name}`, () => {
    let world: StoreWorld;
    let store: Store;
    beforeEach(async () => {
      world = await make();
      store = await world.open();
    });
    afterEach(async () => {
      await world.close();
    });

    const ask = async (s: Store, pilotId: number, now: number) => {
      const candidates = await s.waitingCandidates();
      return s.designate((rows) => decideDesignation(rows, candidates, pilotId, eight, now, STALE));
    };

    it('counts pilots and payloads by state and core-seconds by outcome, through every kind of change', async () => {
      await everyKindOfChange(store);
      const counts = await store.counts();
      expect(counts.pilotsByState).toEqual({ booting: 2, halted: 1, stalled: 1 });
      expect(counts.queuedByGroup).toEqual({ y: 1 });
      expect(counts.payloadsByState).toEqual({ done: 1, failed: 1, cancelled: 2, queued: 1 });
      expect(counts.coreSecByOutcome).toEqual({ done: 5, failed: 3, cancelled: 2, evicted: 22 });
      expect(Object.values(counts.coreSecByOutcome).every((v) => v > 0)).toBe(true);
    });

    it('lists payloads with their evictions, core-seconds and requeue flag, but not their environment or output', async () => {
      const pilot = (await store.createPilot(registration(), 'c', T)).id;
      const [id] = await store.submitPayloads([{ command: ['sim'], group: 'x', env: { BIG: 'x'.repeat(1000) }, requeue: true }], T);
      const offer = { freeCores: 2, totalCores: 2, freeMemoryMb: 1000, remainingSec: null };
      const report = async (seq: number, at: number, body: object) => store.applyReport(pilot, { seq, at, ...body } as never, at);
      await store.claimPayload(pilot, offer, pick, T);
      await report(1, T, { type: 'payload-started', payloadId: id });
      await report(2, T + 3000, { type: 'payload-ended', payloadId: id, exitCode: null, signal: 'SIGTERM', evicted: { reason: 'halt' }, outputTail: 'first run\n' });
      await store.claimPayload(pilot, offer, pick, T + 4000);
      await report(3, T + 4000, { type: 'payload-started', payloadId: id });
      await report(4, T + 9000, { type: 'payload-ended', payloadId: id, exitCode: 0, signal: null, outputTail: 'second run\n' });
      const [listed] = await store.listPayloads({});
      const { outputTail, ...own } = (await store.getPayload(id!))!;
      expect(outputTail).toBe('second run\n');
      expect(listed).toEqual(own);
      expect(listed).toMatchObject({ state: 'done', attempts: 2, evictions: 1, requeue: true });
      expect([listed!.evictedCoreSec, listed!.coreSec]).toEqual([3 * listed!.allocatedCores!, 5 * listed!.allocatedCores!]);
      expect(listed).not.toHaveProperty('outputTail');
    });

    it("keeps what the run that ended a payload used (CPU seconds, peak memory) and its CPU efficiency; a requeued attempt's are cleared", async () => {
      const pilot = (await store.createPilot(registration({ cores: 4 }), 'c', T)).id;
      const [id] = await store.submitPayloads([{ command: ['sim'], group: 'x', cores: { min: 2, max: 2, wholeNode: false }, requeue: true }], T);
      const offer = { freeCores: 4, totalCores: 4, freeMemoryMb: 1000, remainingSec: null };
      const report = async (seq: number, at: number, body: object) => store.applyReport(pilot, { seq, at, ...body } as never, at);
      await store.claimPayload(pilot, offer, pick, T);
      await report(1, T, { type: 'payload-started', payloadId: id });
      // evicted with figures: they are the attempt's, not the payload's end
      await report(2, T + 3000, { type: 'payload-ended', payloadId: id, exitCode: null, signal: 'SIGTERM', evicted: { reason: 'halt' }, cpuSec: 5, peakRssMb: 80 });
      expect(await store.getPayload(id!)).toMatchObject({ state: 'queued', cpuSec: null, peakRssMb: null, cpuEfficiency: null });
      await store.claimPayload(pilot, offer, pick, T + 4000);
      await report(3, T + 4000, { type: 'payload-started', payloadId: id });
      expect(await store.getPayload(id!)).toMatchObject({ state: 'running', cpuSec: null, cpuEfficiency: null });
      // 10 s on 2 cores, 15 CPU seconds: 75 %
      await report(4, T + 14_000, { type: 'payload-ended', payloadId: id, exitCode: 0, signal: null, cpuSec: 15, peakRssMb: 512.5 });
      const done = (await store.getPayload(id!))!;
      expect(done).toMatchObject({ state: 'done', allocatedCores: 2, cpuSec: 15, peakRssMb: 512.5, cpuEfficiency: 0.75 });
      const [listed] = await store.listPayloads({});
      expect(listed).toMatchObject({ cpuSec: 15, peakRssMb: 512.5, cpuEfficiency: 0.75 });
      // a pilot that measured nothing: not known, never 0
      const [other] = await store.submitPayloads([{ command: ['sim'], group: 'x' }], T + 20_000);
      await store.claimPayload(pilot, offer, pick, T + 20_000);
      await report(5, T + 20_000, { type: 'payload-started', payloadId: other });
      await report(6, T + 21_000, { type: 'payload-ended', payloadId: other, exitCode: 1, signal: null });
      expect(await store.getPayload(other!)).toMatchObject({ state: 'failed', cpuSec: null, peakRssMb: null, cpuEfficiency: null });
      // a run shorter than a second has its CPU time, but no efficiency: the agent samples about once a second
      const [brief] = await store.submitPayloads([{ command: ['sim'], group: 'x' }], T + 30_000);
      await store.claimPayload(pilot, offer, pick, T + 30_000);
      await report(7, T + 30_000, { type: 'payload-started', payloadId: brief });
      await report(8, T + 30_400, { type: 'payload-ended', payloadId: brief, exitCode: 0, signal: null, cpuSec: 0.1, peakRssMb: 3 });
      expect(await store.getPayload(brief!)).toMatchObject({ state: 'done', cpuSec: 0.1, peakRssMb: 3, cpuEfficiency: null });
    });

    it('resubmits an ended payload as a new one with the same request, leaving the original as it ended; refuses one that has not ended', async () => {
      const pilot = (await store.createPilot(registration({ cores: 4 }), 'c', T)).id;
      const request = {
        command: ['sim', '--events', '10'], group: 'atlas', name: 'mc-1', env: { SEED: '7' }, cores: { min: 1, max: 2, wholeNode: false },
        memoryMb: 900, wallSec: 600, priority: 3, requeue: false, requirements: { tag: ['cvmfs'] },
      };
      const [id] = await store.submitPayloads([request], T);
      const offer = { freeCores: 4, totalCores: 4, freeMemoryMb: 1000, remainingSec: null, capabilities: { tags: ['cvmfs'] } };
      await store.claimPayload(pilot, offer as never, pick, T);
      // not ended: nothing queued, the reason is its state
      expect(await store.resubmitPayload(id!, T)).toEqual({ kind: 'not-ended', state: 'assigned' });
      expect(await store.countPayloads({})).toBe(1);
      await store.applyReport(pilot, { seq: 1, at: T, type: 'payload-started', payloadId: id! }, T);
      await store.applyReport(pilot, { seq: 2, at: T + 1000, type: 'payload-ended', payloadId: id!, exitCode: 2, signal: null }, T + 1000);
      const before = await store.getPayload(id!);
      const done = await store.resubmitPayload(id!, T + 5000);
      expect(done).toEqual({ kind: 'resubmitted', id: expect.any(Number) });
      const copy = (await store.getPayload((done as { id: number }).id))!;
      expect(copy).toMatchObject({
        state: 'queued', name: 'mc-1', group: 'atlas', command: request.command, cores: request.cores, memoryMb: 900, wallSec: 600,
        priority: 3, requeue: false, requirements: { tag: ['cvmfs'] }, attempts: 0, pilotId: null, submittedAt: T + 5000, exitCode: null,
      });
      expect(await store.payloadHistory(copy.id)).toEqual([{ state: 'queued', pilotId: null, reason: `resubmitted from payload ${id}`, at: T + 5000 }]);
      expect(await store.getPayload(id!)).toEqual(before);
      // the copy runs with the original's environment
      const handed = await store.claimPayload(pilot, offer as never, pick, T + 6000);
      expect(handed).toMatchObject({ id: copy.id, env: { SEED: '7' } });
      expect(await store.resubmitPayload(999_999, T)).toBeNull();
    });

    it('sorts a payload listing by a column, either way, rows with no value last, ties newest first, a page at a time', async () => {
      const pilot = (await store.createPilot(registration({ cores: 8 }), 'c', T)).id;
      const ids = await store.submitPayloads(
        ['delta', 'alpha', 'charlie', 'alpha', 'bravo'].map((name, i) => ({ command: ['sim'], name, group: 'g', cores: { min: i + 1, max: i + 1, wholeNode: false } })),
        T,
      );
      const offer = { freeCores: 8, totalCores: 8, freeMemoryMb: 1000, remainingSec: null };
      // two of them start, one (the first claimed) ends: the others have no start, no end
      const a = (await store.claimPayload(pilot, offer, pick, T + 1000))!.id;
      const b = (await store.claimPayload(pilot, offer, pick, T + 2000))!.id;
      await store.applyReport(pilot, { seq: 1, at: T + 1000, type: 'payload-started', payloadId: a }, T + 1000);
      await store.applyReport(pilot, { seq: 2, at: T + 3000, type: 'payload-started', payloadId: b }, T + 3000);
      await store.applyReport(pilot, { seq: 3, at: T + 4000, type: 'payload-ended', payloadId: a, exitCode: 0, signal: null }, T + 4000);
      const names = async (sort: string, extra: object = {}) =>
        (await store.listPayloads({ sort: parseSort(PAYLOAD_SORT_KEYS, sort)!, ...extra })).map((p) => `${p.name}#${p.id}`);
      const tag = (i: number) => `${['delta', 'alpha', 'charlie', 'alpha', 'bravo'][i]}#${ids[i]}`;
      // equal names: the newer first
      expect(await names('name')).toEqual([tag(3), tag(1), tag(4), tag(2), tag(0)]);
      expect(await names('-name')).toEqual([tag(0), tag(2), tag(4), tag(3), tag(1)]);
      // the three never started come last both ways
      const started = [a, b];
      expect((await names('started')).slice(0, 2)).toEqual(started.map((id) => tag(ids.indexOf(id))));
      expect((await names('-started')).slice(0, 2)).toEqual([...started].reverse().map((id) => tag(ids.indexOf(id))));
      // states in the order of a life: queued, then running, then done
      expect((await store.listPayloads({ sort: parseSort(PAYLOAD_SORT_KEYS, 'state')! })).map((p) => p.state)).toEqual(['queued', 'queued', 'queued', 'running', 'done']);
      expect((await store.listPayloads({ sort: parseSort(PAYLOAD_SORT_KEYS, '-cores')! })).map((p) => p.cores.min)).toEqual([5, 4, 3, 2, 1]);
      // a page at a time, the filters still apply
      expect(await names('name', { limit: 2, offset: 2 })).toEqual([tag(4), tag(2)]);
      expect(await names('name', { nameContains: 'alph' })).toEqual([tag(3), tag(1)]);
    });

    it('sorts a pilot listing by a column, either way, those never heard from last, within the states asked for', async () => {
      const ids = [];
      for (const [i, host] of ['c.example', 'a.example', 'b.example', 'd.example'].entries()) ids.push((await store.createPilot(registration({ hostname: host, cores: 4 - i }), `s${i}`, T)).id);
      await store.setPilotState(ids[0]!, 'running', 'x', T);
      await store.setPilotState(ids[1]!, 'running', 'x', T);
      await store.setPilotState(ids[3]!, 'halted', 'x', T);
      await store.recordHeartbeat(ids[1]!, heartbeat(), T + 5000);
      await store.recordHeartbeat(ids[0]!, heartbeat(), T + 9000);
      const hosts = async (sort: string, extra: object = {}) => (await store.listPilots({ sort: parseSort(PILOT_SORT_KEYS, sort)!, ...extra })).map((p) => p.hostname);
      expect(await hosts('host')).toEqual(['a.example', 'b.example', 'c.example', 'd.example']);
      expect(await hosts('-host', { states: ['running', 'booting'] })).toEqual(['c.example', 'b.example', 'a.example']);
      expect(await hosts('-heartbeat')).toEqual(['c.example', 'a.example', 'd.example', 'b.example']);
      expect(await hosts('heartbeat', { limit: 2 })).toEqual(['a.example', 'c.example']);
      expect(await hosts('cores', { offset: 1, limit: 2 })).toEqual(['b.example', 'a.example']);
      // booting, then the two running (the newer first), then halted
      expect(await hosts('state')).toEqual(['b.example', 'a.example', 'c.example', 'd.example']);
    });

    it('lists newest first, page by page, by any of several states', async () => {
      const ids = [];
      for (let i = 0; i < 7; i++) ids.push((await store.createPilot(registration({ hostname: `h${i}` }), `c${i}`, T)).id);
      await store.setPilotState(ids[1]!, 'running', 'x', T);
      await store.setPilotState(ids[4]!, 'running', 'x', T);
      await store.setPilotState(ids[5]!, 'draining', 'x', T);
      expect((await store.listPilots({ limit: 3 })).map((p) => p.id)).toEqual([ids[6], ids[5], ids[4]]);
      expect((await store.listPilots({ limit: 3, before: ids[4] })).map((p) => p.id)).toEqual([ids[3], ids[2], ids[1]]);
      expect((await store.listPilots({ states: ['running', 'draining'], limit: 2 })).map((p) => p.id)).toEqual([ids[5], ids[4]]);
      expect((await store.listPilots({ states: ['running', 'draining'], before: ids[4] })).map((p) => p.id)).toEqual([ids[1]]);
    });

    it('counts the registration as contact and keeps the batch job id and labels it registered with', async () => {
      const p = await store.createPilot(registration({ externalId: '4242.pbs01', labels: { batch: 'pbs', site: 'TEST-SITE' } }), 'h1', T);
      const view = (await store.getPilot(p.id))!;
      expect(view).toMatchObject({ lastHeartbeatAt: null, lastContactAt: T, externalId: '4242.pbs01', labels: { batch: 'pbs', site: 'TEST-SITE' }, coresReported: null });
      await store.touchPilot(p.id, T + 5000);
      expect((await store.listPilots({}))[0]!.lastContactAt).toBe(T + 5000);
    });

    it("shows the cores of the payloads it was just given, before its next heartbeat says so", async () => {
      const p = await store.createPilot(registration(), 'h1', T);
      await store.recordHeartbeat(p.id, heartbeat({ cores: { total: 4, used: 0, free: 4 } }), T + 1000);
      await store.submitPayload({ command: ['sim'], cores: { min: 3, max: 3, wholeNode: false } }, T + 2000);
      await store.claimPayload(p.id, offer, pick, T + 3000);
      const view = (await store.getPilot(p.id))!;
      expect(view.coresUsed).toBe(3);
      // what the last heartbeat said stays readable beside it
      expect(view.coresReported).toBe(0);
    });

    it('keeps the last heartbeat as it came, and every instruction with its acknowledgement', async () => {
      const p = await store.createPilot(registration(), 'h1', T);
      expect(await store.lastHeartbeat(p.id)).toBeNull();
      const beat = heartbeat({ load: [0.5, 0.25, 0.125], diskFreeMb: 40_000, features: { hs06: 100, shutdowntime: 1_700_003_600 } });
      await store.recordHeartbeat(p.id, beat, T + 1000);
      expect(await store.lastHeartbeat(p.id)).toEqual(beat);
      const halt = await store.addInstruction(p.id, { type: 'halt', code: 100, reason: 'downtime' }, T + 2000);
      await store.applyReport(p.id, { seq: 1, at: T + 3000, type: 'instruction-done', instructionId: halt.id, ok: true, message: 'halting' }, T + 3000);
      const ping = await store.addInstruction(p.id, { type: 'ping' }, T + 4000);
      expect(await store.instructionsOf(p.id)).toEqual([
        { instruction: { id: halt.id, type: 'halt', code: 100, reason: 'downtime' }, createdAt: T + 2000, doneAt: T + 3000, ok: true, message: 'halting' },
        { instruction: { id: ping.id, type: 'ping' }, createdAt: T + 4000, doneAt: null, ok: null, message: null },
      ]);
    });

    it('answers a second drain with the first while it holds, and sends a new one to a pilot serving again', async () => {
      const p = await store.createPilot(registration(), 'h1', T);
      await store.recordHeartbeat(p.id, heartbeat({ state: 'serving' }), T);
      const first = await store.drainOnce(p.id, { type: 'drain', reason: 'kernel update' }, T + 1000);
      expect(first.existing).toBe(false);
      // not yet acknowledged
      expect(await store.drainOnce(p.id, { type: 'drain', reason: 'again' }, T + 2000)).toEqual({ instruction: first.instruction, existing: true });
      // acknowledged, and the pilot drains
      await store.applyReport(p.id, { seq: 1, at: T + 3000, type: 'instruction-done', instructionId: first.instruction.id, ok: true }, T + 3000);
      await store.applyReport(p.id, { seq: 2, at: T + 3000, type: 'state', state: 'draining', reason: 'drain instruction' }, T + 3000);
      expect(await store.drainOnce(p.id, { type: 'drain' }, T + 4000)).toEqual({ instruction: first.instruction, existing: true });
      expect((await store.instructionsOf(p.id)).map((i) => i.instruction.type)).toEqual(['drain']);
      // an agent restarted without its state serves again: a drain is needed again
      await store.applyReport(p.id, { seq: 3, at: T + 5000, type: 'state', state: 'serving', reason: 'drain file removed' }, T + 5000);
      expect((await store.getPilot(p.id))!.state).toBe('running');
      const again = await store.drainOnce(p.id, { type: 'drain' }, T + 6000);
      expect(again.existing).toBe(false);
      expect(again.instruction.id).not.toBe(first.instruction.id);
    });

    it('are shared by two stores on one database, and survive a reopen', async () => {
      const a = await world.open();
      const b = await world.open();
      const id = (await a.submitPayload({ command: ['big'], cores: { min: 4, max: 4, wholeNode: false } }, 0)).id;
      expect(await ask(a, 1, 1000)).toEqual({ cores: 4, waitingSec: 1 });
      // the other process does not designate the same payload to another pilot
      expect(await ask(b, 2, 2000)).toBeNull();
      await a.close();
      const c = await world.open();
      expect(await ask(c, 2, 3000)).toBeNull();
      expect(await ask(c, 1, 3000)).toEqual({ cores: 4, waitingSec: 3 });
      // once the payload leaves the queue, its designation goes
      await c.killPayload(id, 'done with it', 4000);
      expect(await ask(b, 1, 5000)).toBeNull();
      expect(await ask(b, 2, 5000)).toBeNull();
    });

    it('lapse when their pilot stops asking, for another pilot to take', async () => {
      const a = await world.open();
      await a.submitPayload({ command: ['big'], cores: { min: 8, max: 8, wholeNode: false } }, 0);
      expect(await ask(a, 1, 0)).toMatchObject({ cores: 8 });
      expect(await ask(a, 2, STALE - 1)).toBeNull();
      expect(await ask(a, 2, STALE + 1)).toMatchObject({ cores: 8 });
    });

    it('finds a pilot by its credential, and by the one a renewal replaced until that one expires', async () => {
      const p = await store.createPilot(registration(), 'first', T, T + 1000);
      expect(await store.credentialOwner('first')).toEqual({ pilotId: p.id, expiresAt: T + 1000 });
      await store.renewCredential(p.id, 'second', T + 5000);
      expect(await store.credentialOwner('second')).toEqual({ pilotId: p.id, expiresAt: T + 5000 });
      expect(await store.credentialOwner('first')).toEqual({ pilotId: p.id, expiresAt: T + 1000 });
      expect(await store.credentialExpiresAt(p.id)).toBe(T + 5000);
      expect(await store.credentialOwner('nobody')).toBeNull();
    });

    it('keeps settings, the last value written winning', async () => {
      expect(await store.getSetting('k')).toBeNull();
      await store.setSetting('k', 'one');
      await store.setSetting('k', 'two');
      expect(await store.getSetting('k')).toBe('two');
    });

    it('stalls only the pilots silent since the cutoff, once, and puts what they ran back in the queue', async () => {
      const silent = (await store.createPilot(registration(), 'a', T)).id;
      const talking = (await store.createPilot(registration(), 'b', T)).id;
      const { id } = await store.submitPayload({ command: ['x'] }, T);
      await store.claimPayload(silent, offer, pick, T);
      await store.applyReport(silent, { seq: 1, at: T + 1000, type: 'payload-started', payloadId: id }, T + 1000);
      await store.touchPilot(talking, T + 10_000);
      expect(await store.sweepStalled(T + 5000, T + 20_000)).toEqual({ stalled: [silent], requeued: [id], failed: [], cancelled: [] });
      expect((await store.getPilot(silent))?.state).toBe('stalled');
      expect((await store.getPilot(talking))?.state).toBe('booting');
      expect(await store.getPayload(id)).toMatchObject({ state: 'queued', pilotId: null, attempts: 1 });
      expect((await store.payloadHistory(id)).map((h) => h.state)).toEqual(['queued', 'assigned', 'running', 'lost', 'queued']);
      expect((await store.sweepStalled(T + 5000, T + 21_000)).stalled).toEqual([]);
      // the lost run counts for fair share
      expect(await store.runIntervals(T)).toEqual([{ group: 'default', cores: 1, startedAt: T + 1000, endedAt: T + 20_000 }]);
    });

    it('accounts what each group used on each pilot and day, and shows live cores, queues and a pilot\'s detail', async () => {
      const p = (await store.createPilot(registration({ cores: 4 }), 'a', T)).id;
      await store.recordHeartbeat(p, heartbeat({ state: 'serving' }), T);
      const [done, running] = await store.submitPayloads([{ command: ['a'], group: 'g' }, { command: ['b'], group: 'g' }], T);
      await store.submitPayload({ command: ['c'], group: 'h' }, T + 7);
      await store.claimPayload(p, offer, pick, T);
      await store.claimPayload(p, offer, pick, T);
      await store.applyReport(p, { seq: 1, at: T + 1000, type: 'payload-started', payloadId: done! }, T + 1000);
      await store.applyReport(p, { seq: 2, at: T + 6000, type: 'payload-ended', payloadId: done!, exitCode: 0, signal: null }, T + 6000);
      await store.applyReport(p, { seq: 3, at: T + 6000, type: 'payload-started', payloadId: running! }, T + 6000);
      const day = new Date(T).toISOString().slice(0, 10);
      const row = { day, group: 'g', pilotId: p, coreSec: 5, wallSec: 5, done: 1, failed: 0, cancelled: 0, evicted: 0, doneCoreSec: 5, failedCoreSec: 0, cancelledCoreSec: 0, evictedCoreSec: 0 };
      expect(await store.accounting({})).toEqual([row]);
      expect(await store.accounting({ group: 'h' })).toEqual([]);
      expect(await store.accounting({ from: day, to: day, pilotId: p })).toEqual([row]);
      const { day: _d, pilotId: _p, ...total } = row;
      expect(await store.accountingByGroup()).toEqual([total]);
      expect(await store.overviewFigures()).toEqual({ coresTotal: 4, coresUsed: 1, queues: [{ group: 'h', queued: 1, oldestSubmittedAt: T + 7 }] });
      expect(await store.runIntervals(T + 7000)).toEqual([{ group: 'g', cores: 1, startedAt: T + 6000, endedAt: null }]);
      const ping = await store.addInstruction(p, { type: 'ping' }, T + 8000);
      const detail = await store.pilotDetail(p, 10);
      expect(detail.instructions).toEqual([{ instruction: ping, createdAt: T + 8000, doneAt: null, ok: null, message: null }]);
      expect(detail.lastHeartbeat).toEqual({ at: T, beat: heartbeat({ state: 'serving' }) });
      expect(await store.countPayloads({ group: 'g' })).toBe(2);
      expect(await store.countPayloads({ state: 'queued' })).toBe(1);
      expect(await store.countPayloads({ nameContains: 'b' })).toBe(1);
      expect(await store.countPilots({ states: ['running'] })).toBe(1);
    });

    it('cancels a queued payload at once, and an assigned one through a kill instruction to its pilot', async () => {
      const p = (await store.createPilot(registration(), 'a', T)).id;
      const [held, queued] = await store.submitPayloads([{ command: ['a'] }, { command: ['b'] }], T);
      await store.claimPayload(p, offer, pick, T);
      expect(await store.killPayload(queued!, 'not needed', T + 1)).toBeNull();
      expect(await store.getPayload(queued!)).toMatchObject({ state: 'cancelled' });
      const kill = await store.killPayload(held!, 'wrong input', T + 2);
      expect(kill).toMatchObject({ type: 'kill-payload', payloadId: held });
      // asked twice: the same instruction
      expect(await store.killPayload(held!, 'again', T + 3)).toEqual(kill);
      expect(await store.pendingInstructions(p)).toEqual([kill]);
      await expect(store.killPayload(queued!, 'x', T + 4)).rejects.toMatchObject({ code: 'VMP_CONFLICT' });
      await expect(store.killPayload(9999, 'x', T + 4)).rejects.toMatchObject({ code: 'VMP_NOT_FOUND' });
    });
  });
}
