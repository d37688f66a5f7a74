/**
 * What every Store's InstanceStore part does beyond the DirectorStore
 * contract (store-contract.ts), on the server's own records: what survives
 * opening the store again, the queue and the pilots as the director reads
 * them, the registration that spends an instance's credential, a claim of
 * a pilot restricted to some groups, and the director loop's life of an
 * instance. Run on SQLite (store-sqlite.test.ts) and PostgreSQL
 * (store-pg.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { credentialHash, resourcePrefix } from '../../../../src/server/director/credential.js';
import { FakeCloud, FakeDriver } from '../../../../src/server/director/drivers/fake.js';
import { Director } from '../../../../src/server/director/loop.js';
import { fairSharePicker, pick } from '../../../../src/server/queue/pick.js';
import { groupUsage, usageHorizonMs } from '../../../../src/server/queue/usage.js';
import { DEFAULT_HALF_LIFE_SEC } from '../../../../src/server/store/sqlite-payloads.js';
import type { Store } from '../../../../src/server/store/store.js';
import { FakeClock } from '../../../../src/shared/clock.js';
import { silentLogger } from '../../../../src/shared/log.js';
import { registration } from '../helpers.js';
import type { MakeWorld } from '../store/store-contract.js';
import { endpoint } from './fixtures.js';
import { draft } from './store-contract.js';

const T = 1_700_000_000_000;
const offer = { freeCores: 8, totalCores: 8, freeMemoryMb: 16000, remainingSec: null };

/** Run the InstanceStore contract on the worlds `make` gives. */
export function instanceStoreContract(name: string, make: MakeWorld): void {
  /** A store on a new database with a fake clock; `reopen()` closes it and opens the same database again. */
  async function withFile(fn: (w: { clock: FakeClock; store: () => Store; reopen: () => Promise<Store> }) => Promise<void>) {
    const world = await make();
    const clock = new FakeClock(T);
    let store = await world.open({ maxAttempts: 3, clock });
    try {
      await fn({
        clock,
        store: () => store,
        reopen: async () => {
          await store.close();
          store = await world.open({ maxAttempts: 3, clock });
          return store;
        },
      });
    } finally {
      await world.close();
    }
  }

  describe(`InstanceStore contract: ${name}`, () => {
    it('keeps instances, history, disabled endpoints, failure memory and the last cycle across opening the store again', () =>
      withFile(async ({ store, reopen }) => {
        const a = await store().createInstance(draft(), T);
        await store().updateInstance(a.id, { state: 'starting', reason: 'accepted', driverId: 'd1' }, T + 1);
        await store().setEndpointDisabled('hpc', true, T);
        await store().saveFailureMemory(new Map([['a/s', { failures: 1, kind: 'driver-error', reason: 'quota', at: T, until: T + 60_000 }]]));
        const s = await reopen();
        expect([...(await s.disabledEndpoints())]).toEqual(['hpc']);
        expect(await s.getInstance(a.id)).toMatchObject({ state: 'starting', driverId: 'd1', groups: ['atlas', 'cms'] });
        expect((await s.instanceHistory(a.id)).map((h) => h.state)).toEqual(['requested', 'starting']);
        expect((await s.failureMemory()).get('a/s')).toMatchObject({ failures: 1, kind: 'driver-error' });
        await s.setEndpointDisabled('hpc', false, T + 2);
        expect((await (await reopen()).disabledEndpoints()).size).toBe(0);
      }));

    it('reads the queue in its own order per group, at most the limit, with the usage the picker weighs', () =>
      withFile(async ({ clock, store }) => {
        const s = store();
        // atlas used 2 cores for 600 s: the usage a claim would weigh shares with
        const p = await s.createPilot(registration({ cores: 8 }), 'ph', T);
        const [busy] = await s.submitPayloads([{ command: ['x'], group: 'atlas', cores: { min: 2, max: 2, wholeNode: false } }], T);
        expect(await s.claimPayload(p.id, offer, pick, T)).toMatchObject({ id: busy });
        await s.applyReport(p.id, { seq: 1, at: T, type: 'payload-started', payloadId: busy! }, T);
        await clock.advance(600_000);
        const at = clock.now();
        const ids = await s.submitPayloads(
          [
            { command: ['x'], group: 'cms', priority: 0 },
            { command: ['x'], group: 'atlas', priority: 0, memoryMb: 500, wallSec: 60 },
            { command: ['x'], group: 'cms', priority: 5, cores: { min: 2, max: 4, wholeNode: false } },
            { command: ['x'], group: 'atlas', priority: 1, requirements: { gpus: 1 } },
          ],
          at,
        );
        const { queued, usage } = await s.queuedWork(100);
        expect(queued.map((q) => q.id)).toEqual([ids[2], ids[3], ids[0], ids[1]]);
        expect(queued.find((q) => q.id === ids[1])).toMatchObject({ group: 'atlas', memoryMb: 500, wallSec: 60, submittedAt: at, requirements: null });
        expect(queued.find((q) => q.id === ids[2])).toMatchObject({ group: 'cms', priority: 5, cores: { min: 2, max: 4, wholeNode: false } });
        expect(queued.find((q) => q.id === ids[3])?.requirements).toEqual({ gpus: 1 });
        const expected = groupUsage(await s.runIntervals(at - usageHorizonMs(DEFAULT_HALF_LIFE_SEC)), at, DEFAULT_HALF_LIFE_SEC);
        expect(usage.get('atlas')).toBeGreaterThan(1000);
        expect([...usage]).toEqual([...expected]);
        expect((await s.queuedWork(2)).queued.map((q) => q.id)).toEqual([ids[2], ids[3]]);
        expect((await s.queuedWork(0)).queued).toEqual([]);
      }));

    it('summarises pilots for supply: not halted ones, and halted ones a live instance names', () =>
      withFile(async ({ clock, store }) => {
        const s = store();
        const running = await s.createPilot(registration({ cores: 8, memoryMb: 16000, deadline: T + 3_600_000 }), 'p1', T);
        const [a, b] = await s.submitPayloads(
          [
            { command: ['x'], group: 'g', cores: { min: 3, max: 3, wholeNode: false }, memoryMb: 1000 },
            { command: ['x'], group: 'g', cores: { min: 1, max: 1, wholeNode: false } },
          ],
          T,
        );
        await s.claimPayload(running.id, offer, fairSharePicker(), T);
        await s.claimPayload(running.id, offer, fairSharePicker(), T);
        await s.applyReport(running.id, { seq: 1, at: T, type: 'payload-started', payloadId: a! }, T);
        await s.applyReport(running.id, { seq: 2, at: T, type: 'payload-ended', payloadId: b!, exitCode: 0, signal: null }, T);
        const halted = await s.createPilot(registration(), 'p2', T);
        await s.applyReport(halted.id, { seq: 1, at: T + 5, type: 'shutdown', code: 300, message: 'no more work' }, T + 5);
        const named = await s.createPilot(registration(), 'p3', T);
        await s.applyReport(named.id, { seq: 1, at: T + 6, type: 'shutdown', code: 200, message: 'done' }, T + 6);
        const inst = await s.createInstance(draft(), T);
        await s.updateInstance(inst.id, { state: 'registered', reason: 'r', pilotId: named.id }, T);
        const stalled = await s.createPilot(registration(), 'p4', T);
        await clock.advance(10_000);
        expect((await s.sweepStalled(T + 1, clock.now())).stalled).toEqual([running.id, stalled.id]);

        const list = await s.pilots();
        expect(list.map((p) => p.id)).toEqual([running.id, named.id, stalled.id]);
        expect(list[0]).toEqual({
          id: running.id,
          state: 'stalled',
          cores: 8,
          // the stall requeued nothing it ran: a running payload is lost with it, so nothing is held any more
          coresUsed: 0,
          memoryMb: 16000,
          memoryUsedMb: 0,
          deadline: T + 3_600_000,
          registeredAt: T,
          lastContactAt: T,
          stalledAt: T + 10_000,
          haltedAt: null,
          shutdownCode: null,
          payloadsRun: 2,
        });
        expect(list[1]).toMatchObject({ state: 'halted', haltedAt: T + 6, shutdownCode: 200, stalledAt: null, payloadsRun: 0 });
      }));

    it('counts the cores a pilot holds as PilotView does', () =>
      withFile(async ({ store }) => {
        const s = store();
        const p = await s.createPilot(registration({ cores: 8 }), 'p1', T);
        await s.submitPayloads([{ command: ['x'], group: 'g', cores: { min: 3, max: 3, wholeNode: false }, memoryMb: 700 }], T);
        await s.claimPayload(p.id, offer, pick, T);
        const [summary] = await s.pilots();
        expect(summary).toMatchObject({ coresUsed: 3, memoryUsedMb: 700, payloadsRun: 1 });
        expect(summary!.coresUsed).toBe((await s.getPilot(p.id))!.coresUsed);
      }));

    it('drains a pilot once with the reason; a pilot that is gone or halted: nothing', () =>
      withFile(async ({ store }) => {
        const s = store();
        const p = await s.createPilot(registration(), 'p1', T);
        await s.drainPilot(p.id, 'max lifetime', T);
        await s.drainPilot(p.id, 'max lifetime', T + 1);
        expect((await s.pendingInstructions(p.id)).map((i) => ({ type: i.type, reason: 'reason' in i ? i.reason : null }))).toEqual([{ type: 'drain', reason: 'max lifetime' }]);
        await expect(s.drainPilot(9999, 'gone', T)).resolves.toBeUndefined();
        const h = await s.createPilot(registration(), 'p2', T);
        await s.applyReport(h.id, { seq: 1, at: T, type: 'shutdown', code: 300, message: 'no more work' }, T);
        await s.drainPilot(h.id, 'late', T + 2);
        expect(await s.pendingInstructions(h.id)).toEqual([]);
      }));

    it('registers one pilot with an instance credential: tied to its instance, its groups, once', () =>
      withFile(async ({ store }) => {
        const s = store();
        const inst = await s.createInstance(draft({ credentialHash: credentialHash('vmpi_one'), groups: ['atlas'] }), T);
        expect(await s.instanceByCredential(credentialHash('vmpi_one'))).toMatchObject({ id: inst.id });
        const reg = await s.registerInstancePilot(credentialHash('vmpi_one'), registration(), 'pilot-hash', T + 1);
        expect(reg?.instance).toMatchObject({ id: inst.id, pilotId: reg?.pilot.id });
        expect(reg?.pilot).toMatchObject({ instanceId: inst.id, groups: ['atlas'], state: 'booting' });
        expect(await s.getPilot(reg!.pilot.id)).toMatchObject({ instanceId: inst.id, groups: ['atlas'] });
        // spent: no second pilot, nothing changed
        expect(await s.instanceByCredential(credentialHash('vmpi_one'))).toBeNull();
        expect(await s.registerInstancePilot(credentialHash('vmpi_one'), registration(), 'pilot-hash-2', T + 2)).toBeNull();
        expect(await s.countPilots({})).toBe(1);
        // an instance no longer coming: its credential is worth nothing
        const failed = await s.createInstance(draft({ key: 'k2', credentialHash: credentialHash('vmpi_two') }), T);
        await s.updateInstance(failed.id, { state: 'failed', reason: 'boot-timeout' }, T + 3);
        expect(await s.instanceByCredential(credentialHash('vmpi_two'))).toBeNull();
        expect(await s.registerInstancePilot(credentialHash('vmpi_two'), registration(), 'pilot-hash-3', T + 4)).toBeNull();
        expect(await s.instanceByCredential(credentialHash('vmpi_nobody'))).toBeNull();
        // a pilot of the shared token serves any group and names no instance
        const plain = await s.createPilot(registration(), 'plain', T);
        expect(plain.instanceId).toBeUndefined();
        expect(plain.groups).toBeUndefined();
      }));

    it('a claim for a pilot restricted to some groups never sees another group’s payload, whatever the picker', () =>
      withFile(async ({ store }) => {
        const s = store();
        const p = await s.createPilot(registration(), 'p1', T);
        const [cms, atlas] = await s.submitPayloads([{ command: ['x'], group: 'cms', priority: 9 }, { command: ['x'], group: 'atlas' }], T);
        // a picker that takes the first candidate it is shown, groups or not
        const first = (candidates: { id: number }[]) => (candidates[0] ? { id: candidates[0].id, cores: 1 } : null);
        expect(await s.claimPayload(p.id, { ...offer, groups: ['atlas'] }, first, T)).toMatchObject({ id: atlas });
        expect(await s.claimPayload(p.id, { ...offer, groups: ['atlas'] }, first, T)).toBeNull();
        expect(await s.claimPayload(p.id, offer, first, T)).toMatchObject({ id: cms });
      }));

    it('runs the director loop: queued work starts an instance, its pilot registers with the credential, halts, and the instance is deleted', () =>
      withFile(async ({ clock, store }) => {
        const s = store();
        const cloud = new FakeCloud(clock);
        const e = endpoint('a', { limits: { instances: 10, startsPerCycle: 5 } });
        const director = new Director({
          store: s,
          clock,
          log: silentLogger(),
          endpoints: [e],
          drivers: new Map([[e.name, new FakeDriver(cloud, resourcePrefix('test', e.name))]]),
          directorId: 'test',
          serverUrl: 'http://127.0.0.1:9',
          demandPolicy: { shares: new Map(), defaultShare: 1, defaultWallSec: 3600 },
        });
        const ids = await s.submitPayloads([1, 2, 3].map(() => ({ command: ['x'], group: 'g' })), clock.now());
        const first = await director.cycle();
        expect(first.decision.starts).toHaveLength(1);
        // the store hands the three over as one counted row: the record still counts three payloads
        expect(first.decision.demand).toEqual({ payloads: 3, cores: 3 });
        expect(first.decision.endpoints[0]!.demand).toEqual({ payloads: 3, cores: 3 });
        const [inst] = await s.liveInstances();
        expect(inst).toMatchObject({ state: 'starting', endpoint: 'a' });
        expect(await s.lastCycle()).toEqual(JSON.parse(JSON.stringify(first)));
        // nothing more while it is coming
        expect((await director.cycle()).decision.starts).toEqual([]);

        const [resource] = cloud.resources.values();
        cloud.run(resource!.id);
        const reg = await s.registerInstancePilot(credentialHash(resource!.request.bootstrap.credential), registration({ cores: 4 }), 'ph', clock.now());
        expect(reg).not.toBeNull();
        await director.cycle();
        expect(await s.getInstance(inst!.id)).toMatchObject({ state: 'registered', pilotId: reg!.pilot.id });

        for (const id of ids) await s.killPayload(id, 'test', clock.now());
        await clock.advance(120_000);
        await s.applyReport(reg!.pilot.id, { seq: 1, at: clock.now(), type: 'shutdown', code: 300, message: 'no more work' }, clock.now());
        await director.cycle();
        expect(await s.getInstance(inst!.id)).toMatchObject({ state: 'deleted' });
        expect(cloud.resources.size).toBe(0);
        expect((await s.instanceHistory(inst!.id)).map((h) => h.state)).toEqual(['requested', 'starting', 'registered', 'halted', 'deleted']);
        expect((await s.offeringStats()).get('a/s')).toMatchObject({ bootSamples: 1, endSamples: 1 });
        expect(await s.pilots()).toEqual([]);
      }));
  });
}
