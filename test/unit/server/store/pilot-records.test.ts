/**
 * What an administrator sees of a pilot (`pilots`, `pilot N`): its
 * registration counts as contact, its cores in use follow the server's
 * assignments at once, its batch job id and labels are kept, its last
 * heartbeat and its instructions with their acknowledgements can be read,
 * and a second drain while the first holds adds nothing.
 */
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pick } from '../../../../src/server/queue/pick.js';
import { openSqliteStore, type SqliteStore } from '../../../../src/server/store/sqlite.js';
import type { Offer } from '../../../../src/server/queue/offer.js';
import { heartbeat, registration, tempDir } from '../helpers.js';

const T = 1_700_000_000_000;
const offer: Offer = { freeCores: 4, totalCores: 4, freeMemoryMb: 8000, remainingSec: null };

describe('pilot records', () => {
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
});
