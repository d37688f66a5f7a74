/**
 * What every DirectorStore (and the reading part of InstanceStore) does,
 * run on the in-memory store (store-memory.test.ts) and the SQLite store
 * (store-sqlite.test.ts): instances with validated changes and history,
 * live and deleted, failure memory and offering stats that round-trip (Maps
 * included), the last cycle, disabled endpoints, the director's lease, and
 * the queue as the director reads it (counted per group, priority and need).
 */
import { describe, expect, it } from 'vitest';
import type { FailureMemory } from '../../../../src/server/director/failure-memory.js';
import type { CycleRecord } from '../../../../src/server/director/loop.js';
import type { OfferingStats } from '../../../../src/server/director/offerings.js';
import type { DirectorStore, NewInstance } from '../../../../src/server/director/ports.js';
import type { InstanceStore } from '../../../../src/server/store/store.js';
import { requirementClassOf } from '../../../../src/server/director/demand.js';
import type { CoreRequest, Requirements } from '../../../../src/protocol/index.js';

/** The part of InstanceStore both stores have. */
export type ContractStore = DirectorStore & Pick<InstanceStore, 'listInstances' | 'countInstances' | 'getInstance' | 'instanceHistory' | 'lastCycle' | 'setEndpointDisabled'>;

/** A payload to queue, as a submit gives it. */
export interface QueuedPayload {
  group: string;
  priority?: number;
  cores?: CoreRequest;
  memoryMb?: number | null;
  wallSec?: number | null;
  requirements?: Requirements;
}

/** A store to test, how to queue payloads in it (in this order, returning their ids), and how to end it. */
export interface ContractWorld {
  store: ContractStore;
  enqueue(payloads: QueuedPayload[], at: number): Promise<number[]>;
  close(): Promise<void>;
}

const T = 1_700_000_000_000;

/** A new instance's draft. */
export const draft = (d: Partial<NewInstance> = {}): NewInstance => ({
  key: 'vmp-test-a-k1',
  endpoint: 'a',
  shape: 's',
  cores: 4,
  memoryMb: 8000,
  forGroup: 'atlas',
  requirementClass: '',
  groups: ['atlas', 'cms'],
  credentialHash: 'h1',
  costPerHour: 0.5,
  manual: false,
  ...d,
});

const cycle = (at: number): CycleRecord => ({
  at,
  decision: { at, demand: { payloads: 3, cores: 3 }, onSupply: { payloads: 0, cores: 0 }, onStarts: { payloads: 3, cores: 3 }, supply: {} as never, starts: [], endpoints: [] },
  actions: [{ kind: 'start', endpoint: 'a', instanceId: 1, detail: 'a/s for atlas', error: null }],
  unmanaged: [],
});

/** Run the contract on the stores `make` gives (a new, empty one each test). */
export function directorStoreContract(name: string, make: () => Promise<ContractWorld>): void {
  const withStore = (fn: (s: ContractStore, w: ContractWorld) => Promise<void>) => async () => {
    const w = await make();
    try {
      await fn(w.store, w);
    } finally {
      await w.close();
    }
  };

  describe(`DirectorStore contract: ${name}`, () => {
    it(
      'records an instance requested, with every field, and refuses a second of the same key',
      withStore(async (s) => {
        const a = await s.createInstance(draft(), T);
        expect(a).toEqual({
          ...draft(),
          id: a.id,
          state: 'requested',
          reason: 'decided',
          driverId: null,
          pilotId: null,
          requestedAt: T,
          startedAt: null,
          bootedAt: null,
          registeredAt: null,
          drainAt: null,
          endedAt: null,
          deletedAt: null,
        });
        expect(await s.getInstance(a.id)).toEqual(a);
        const anyGroup = await s.createInstance(draft({ key: 'k2', groups: null, forGroup: null, manual: true }), T);
        expect(anyGroup).toMatchObject({ groups: null, forGroup: null, manual: true });
        await expect(s.createInstance(draft({ credentialHash: 'other' }), T + 1)).rejects.toMatchObject({ code: 'VMP_CONFLICT', message: expect.stringContaining('vmp-test-a-k1') });
        expect(await s.liveInstances()).toHaveLength(2);
      }),
    );

    it(
      'changes an instance along its states, stamps each step once, keeps its history, and refuses what is not allowed',
      withStore(async (s) => {
        const a = await s.createInstance(draft(), T);
        const started = await s.updateInstance(a.id, { state: 'starting', reason: 'accepted', driverId: 'd-1' }, T + 10);
        expect(started).toMatchObject({ state: 'starting', reason: 'accepted', driverId: 'd-1', startedAt: T + 10 });
        // a skip forward: registered straight from starting
        const reg = await s.updateInstance(a.id, { state: 'registered', reason: 'pilot 7 registered', pilotId: 7 }, T + 20);
        expect(reg).toMatchObject({ pilotId: 7, registeredAt: T + 20, bootedAt: null, startedAt: T + 10 });
        // the same state: facts change, no history entry, no new stamp
        const drained = await s.updateInstance(a.id, { state: 'registered', reason: 'drained: max lifetime', drainAt: T + 25 }, T + 25);
        expect(drained).toMatchObject({ drainAt: T + 25, registeredAt: T + 20, reason: 'drained: max lifetime' });
        await expect(s.updateInstance(a.id, { state: 'booting', reason: 'back' }, T + 30)).rejects.toMatchObject({
          code: 'VMP_CONFLICT',
          message: `instance ${a.id} cannot go from registered to booting`,
        });
        await s.updateInstance(a.id, { state: 'halted', reason: 'pilot halted' }, T + 40);
        await expect(s.updateInstance(a.id, { state: 'failed', reason: 'late' }, T + 45)).rejects.toMatchObject({ code: 'VMP_CONFLICT' });
        const del = await s.updateInstance(a.id, { state: 'deleted', reason: 'deleted at its driver' }, T + 50);
        expect(del).toMatchObject({ endedAt: T + 40, deletedAt: T + 50 });
        expect(await s.getInstance(a.id)).toEqual(del);
        expect(await s.instanceHistory(a.id)).toEqual([
          { state: 'requested', reason: 'decided', at: T },
          { state: 'starting', reason: 'accepted', at: T + 10 },
          { state: 'registered', reason: 'pilot 7 registered', at: T + 20 },
          { state: 'halted', reason: 'pilot halted', at: T + 40 },
          { state: 'deleted', reason: 'deleted at its driver', at: T + 50 },
        ]);
        await expect(s.updateInstance(a.id, { state: 'deleted', reason: 'again' }, T + 60)).resolves.toMatchObject({ deletedAt: T + 50 });
        await expect(s.updateInstance(9999, { state: 'starting', reason: 'x' }, T)).rejects.toMatchObject({ code: 'VMP_NOT_FOUND' });
        expect(await s.instanceHistory(9999)).toEqual([]);
        expect(await s.getInstance(9999)).toBeNull();
      }),
    );

    it(
      'booting stamps the start too; failed and deleted stamp the end; a new credential hash is kept',
      withStore(async (s) => {
        const a = await s.createInstance(draft(), T);
        expect(await s.updateInstance(a.id, { state: 'booting', reason: 'runs' }, T + 5)).toMatchObject({ startedAt: T + 5, bootedAt: T + 5 });
        const b = await s.createInstance(draft({ key: 'k2', credentialHash: 'h2' }), T);
        expect(await s.updateInstance(b.id, { state: 'requested', reason: 'create again', credentialHash: 'h3' }, T + 1)).toMatchObject({ credentialHash: 'h3' });
        expect(await s.updateInstance(b.id, { state: 'failed', reason: 'driver-error: quota' }, T + 2)).toMatchObject({ endedAt: T + 2 });
        const c = await s.createInstance(draft({ key: 'k3' }), T);
        expect(await s.updateInstance(c.id, { state: 'deleted', reason: 'gone' }, T + 3)).toMatchObject({ endedAt: T + 3, deletedAt: T + 3 });
      }),
    );

    it(
      'lists live instances oldest first, and every instance by filter newest first',
      withStore(async (s) => {
        const a = await s.createInstance(draft({ key: 'k1' }), T);
        const b = await s.createInstance(draft({ key: 'k2', endpoint: 'b' }), T);
        const c = await s.createInstance(draft({ key: 'k3' }), T);
        await s.updateInstance(b.id, { state: 'deleted', reason: 'gone' }, T + 1);
        await s.updateInstance(c.id, { state: 'starting', reason: 'accepted' }, T + 1);
        expect((await s.liveInstances()).map((i) => i.id)).toEqual([a.id, c.id]);
        expect((await s.listInstances({})).map((i) => i.id)).toEqual([c.id, b.id, a.id]);
        expect((await s.listInstances({ states: ['deleted'] })).map((i) => i.id)).toEqual([b.id]);
        expect((await s.listInstances({ states: ['requested', 'starting'] })).map((i) => i.id)).toEqual([c.id, a.id]);
        expect((await s.listInstances({ endpoint: 'a' })).map((i) => i.id)).toEqual([c.id, a.id]);
        expect((await s.listInstances({ limit: 1 })).map((i) => i.id)).toEqual([c.id]);
        expect((await s.listInstances({ before: c.id, limit: 1 })).map((i) => i.id)).toEqual([b.id]);
        // pages by offset, and the totals they are pages of
        expect((await s.listInstances({ offset: 1, limit: 1 })).map((i) => i.id)).toEqual([b.id]);
        expect((await s.listInstances({ offset: 1 })).map((i) => i.id)).toEqual([b.id, a.id]);
        expect((await s.listInstances({ endpoint: 'a', offset: 2, limit: 5 })).map((i) => i.id)).toEqual([]);
        expect(await s.countInstances({})).toBe(3);
        expect(await s.countInstances({ states: ['requested', 'starting'] })).toBe(2);
        expect(await s.countInstances({ endpoint: 'b' })).toBe(1);
        expect(await s.countInstances({ endpoint: 'b', states: ['registered'] })).toBe(0);
      }),
    );

    it(
      'keeps failure memory and offering stats as Maps, whole, and the last cycle only',
      withStore(async (s) => {
        expect((await s.failureMemory()).size).toBe(0);
        expect((await s.offeringStats()).size).toBe(0);
        expect(await s.lastCycle()).toBeNull();
        const memory: FailureMemory = new Map([
          ['b/s', { failures: 2, kind: 'boot-timeout', reason: 'not running after 600 s', at: T, until: T + 120_000 }],
          ['a/s', { failures: 1, kind: 'fizzle', reason: 'ended after 3 s', at: T, until: T + 60_000 }],
        ]);
        await s.saveFailureMemory(memory);
        const back = await s.failureMemory();
        expect(back).toBeInstanceOf(Map);
        expect(back).toEqual(memory);
        // saved whole: an entry forgotten is gone
        await s.saveFailureMemory(new Map([...memory].filter(([k]) => k !== 'a/s')));
        expect([...(await s.failureMemory()).keys()]).toEqual(['b/s']);
        const stats: ReadonlyMap<string, OfferingStats> = new Map([['a/s', { bootSec: 42.5, noWorkShare: 0.25, bootSamples: 3, endSamples: 2 }]]);
        await s.saveOfferingStats(stats);
        expect(await s.offeringStats()).toEqual(stats);
        await s.saveCycle(cycle(T));
        await s.saveCycle(cycle(T + 5000));
        expect(await s.lastCycle()).toEqual(cycle(T + 5000));
      }),
    );

    it(
      'disables and enables endpoints by name',
      withStore(async (s) => {
        expect([...(await s.disabledEndpoints())]).toEqual([]);
        await s.setEndpointDisabled('hpc', true, T);
        await s.setEndpointDisabled('hpc', true, T + 1);
        await s.setEndpointDisabled('cloud', true, T);
        expect([...(await s.disabledEndpoints())].sort()).toEqual(['cloud', 'hpc']);
        await s.setEndpointDisabled('hpc', false, T + 2);
        await s.setEndpointDisabled('never', false, T + 2);
        expect([...(await s.disabledEndpoints())]).toEqual(['cloud']);
      }),
    );

    it(
      "the director's lease: taken when free, renewed by its holder, refused to another until it runs out or is given back",
      withStore(async (s) => {
        expect(await s.holdLease('a', T + 30_000, T)).toEqual({ holder: 'a', until: T + 30_000 });
        expect(await s.holdLease('b', T + 31_000, T + 1000)).toEqual({ holder: 'a', until: T + 30_000 });
        expect(await s.holdLease('a', T + 35_000, T + 5000)).toEqual({ holder: 'a', until: T + 35_000 });
        // a stopped renewing: b takes it once a's time is up
        expect(await s.holdLease('b', T + 70_000, T + 35_000)).toEqual({ holder: 'b', until: T + 70_000 });
        // b gives it back (until = now): a takes it at once
        expect(await s.holdLease('b', T + 40_000, T + 40_000)).toEqual({ holder: 'b', until: T + 40_000 });
        expect(await s.holdLease('a', T + 80_000, T + 40_000)).toEqual({ holder: 'a', until: T + 80_000 });
      }),
    );

    it(
      'reads the queue counted: one row per group, priority and need, where its oldest payload is, over the first `limit` payloads',
      withStore(async (s, w) => {
        const one = { min: 1, max: 1, wholeNode: false };
        const four = { min: 4, max: 4, wholeNode: false };
        const ids = await w.enqueue(
          [
            { group: 'atlas', cores: one }, // 0
            { group: 'atlas', cores: four }, // 1
            { group: 'cms', cores: one }, // 2
            { group: 'atlas', cores: one }, // 3: with 0
            { group: 'atlas', cores: one, memoryMb: 500 }, // 4: another need
            { group: 'cms', priority: 5, cores: { min: 2, max: 4, wholeNode: false } }, // 5: first, by priority
            { group: 'atlas', cores: four }, // 6: with 1
            { group: 'atlas', cores: one, requirements: { gpus: 1 } }, // 7
            { group: 'atlas', cores: one, requirements: { gpus: 1 } }, // 8: with 7
            { group: 'cms', cores: one, wallSec: 60 }, // 9
            { group: 'atlas', cores: { min: 1, max: 1, wholeNode: true } }, // 10
            { group: 'atlas', cores: one }, // 11: with 0
          ],
          T,
        );
        const view = (rows: Awaited<ReturnType<ContractStore['queuedWork']>>['queued']) =>
          rows.map((r) => ({ id: r.id, group: r.group, priority: r.priority, cores: r.cores, memoryMb: r.memoryMb, wallSec: r.wallSec, submittedAt: r.submittedAt, cls: requirementClassOf(r.requirements), count: r.count }));
        const row = (i: number, count: number, o: { cores?: CoreRequest; memoryMb?: number | null; wallSec?: number | null; cls?: string; group?: string; priority?: number } = {}) => ({
          id: ids[i],
          group: o.group ?? 'atlas',
          priority: o.priority ?? 0,
          cores: o.cores ?? one,
          memoryMb: o.memoryMb ?? null,
          wallSec: o.wallSec ?? null,
          submittedAt: T,
          cls: o.cls ?? '',
          count,
        });
        expect(view((await s.queuedWork(100)).queued)).toEqual([
          row(5, 1, { group: 'cms', priority: 5, cores: { min: 2, max: 4, wholeNode: false } }),
          row(0, 3),
          row(1, 2, { cores: four }),
          row(2, 1, { group: 'cms' }),
          row(4, 1, { memoryMb: 500 }),
          row(7, 2, { cls: 'gpus=1' }),
          row(9, 1, { group: 'cms', wallSec: 60 }),
          row(10, 1, { cores: { min: 1, max: 1, wholeNode: true } }),
        ]);
        // the limit counts payloads in the queue's order: the priority-5 one, then 0 to 3
        expect(view((await s.queuedWork(5)).queued)).toEqual([row(5, 1, { group: 'cms', priority: 5, cores: { min: 2, max: 4, wholeNode: false } }), row(0, 2), row(1, 1, { cores: four }), row(2, 1, { group: 'cms' })]);
        expect((await s.queuedWork(0)).queued).toEqual([]);
      }),
    );
  });
}
