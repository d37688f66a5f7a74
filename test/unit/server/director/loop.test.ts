import { describe, expect, it } from 'vitest';
import { credentialHash, resourcePrefix } from '../../../../src/server/director/credential.js';
import type { QueuedWork } from '../../../../src/server/director/demand.js';
import { FakeCloud, FakeDriver } from '../../../../src/server/director/drivers/fake.js';
import type { EndpointConfig } from '../../../../src/server/director/endpoint-config.js';
import { backoffAt } from '../../../../src/server/director/failure-memory.js';
import { Director } from '../../../../src/server/director/loop.js';
import { MemoryDirectorStore } from '../../../../src/server/director/memory-store.js';
import { FakeClock } from '../../../../src/shared/clock.js';
import { silentLogger } from '../../../../src/shared/log.js';
import { endpoint } from './fixtures.js';

let nextId = 1;
const work = (n: number, cores = 1, group = 'g'): QueuedWork[] =>
  Array.from({ length: n }, () => ({ id: nextId++, group, priority: 0, cores: { min: cores, max: cores, wholeNode: false }, memoryMb: null, wallSec: null, submittedAt: nextId }));

/** A store, a fake cloud and a director over them; `restart()` makes a new director on the same store and cloud. */
function world(endpoints: EndpointConfig[] = [endpoint('a', { limits: { instances: 10, startsPerCycle: 5 } })]) {
  const clock = new FakeClock();
  const store = new MemoryDirectorStore();
  const cloud = new FakeCloud(clock);
  let n = 0;
  const make = (holder?: string, elected = false) =>
    new Director({
      ...(holder === undefined ? {} : { holder }),
      ...(elected ? { elected } : {}),
      store,
      clock,
      log: silentLogger(),
      endpoints,
      drivers: new Map(endpoints.map((e) => [e.name, new FakeDriver(cloud, resourcePrefix('test', e.name))])),
      directorId: 'test',
      serverUrl: 'http://127.0.0.1:9',
      demandPolicy: { shares: new Map(), defaultShare: 1, defaultWallSec: 3600 },
      secrets: { key: (prefix) => `${prefix}k${++n}`, credential: () => `vmpi_secret-${++n}` },
    });
  return { clock, store, cloud, director: make(), restart: make };
}
/** Boot every machine of the cloud that is not running yet and register its pilot with its credential. */
function bootAll(w: ReturnType<typeof world>) {
  for (const r of w.cloud.resources.values()) {
    if (r.state !== 'pending') continue;
    w.cloud.run(r.id);
    w.store.registerPilot(r.request.bootstrap.credential, { cores: r.request.cores, registeredAt: w.clock.now() });
  }
}
const states = (s: MemoryDirectorStore) => [...s.instances.values()].map((i) => i.state);
const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

describe('director loop', () => {
  it('starts machines for queued work, counts them as supply, and deletes them when their pilots halt', async () => {
    const w = world();
    w.store.queued = work(6);
    const first = await w.director.cycle();
    expect(first.decision.starts).toHaveLength(2); // 6 one-core payloads on 4-core machines
    expect(states(w.store)).toEqual(['starting', 'starting']);
    expect(w.cloud.resources.size).toBe(2);
    // the driver got the instance's own credential, whose hash is what the store keeps
    for (const r of w.cloud.resources.values()) {
      const rec = [...w.store.instances.values()].find((i) => i.key === r.key)!;
      expect(credentialHash(r.request.bootstrap.credential)).toBe(rec.credentialHash);
      expect(r.request.bootstrap).toMatchObject({ serverUrl: 'http://127.0.0.1:9', idleTimeoutSec: 300, graceSec: 30 });
    }
    // still queued a cycle later: the machines coming are counted, nothing more starts
    expect((await w.director.cycle()).decision.starts).toEqual([]);

    bootAll(w);
    await w.director.cycle();
    expect(states(w.store)).toEqual(['registered', 'registered']);
    expect((await w.director.cycle()).decision.starts).toEqual([]);

    w.store.queued = [];
    await w.clock.advance(1_000_000);
    for (const p of w.store.pilotsById.values()) w.store.setPilot(p.id, { state: 'halted', shutdownCode: 300, payloadsRun: 3, haltedAt: w.clock.now() });
    const end = await w.director.cycle();
    expect(states(w.store)).toEqual(['deleted', 'deleted']);
    expect(w.cloud.resources.size).toBe(0);
    expect(end.actions.map((a) => a.kind)).toEqual(['mark', 'delete', 'mark', 'delete']);
    expect(w.store.history.get(1)!.map((h) => h.state)).toEqual(['requested', 'starting', 'registered', 'halted', 'deleted']);
    // what was learnt: a boot time, no fizzle
    expect(w.store.stats.get('a/s')).toMatchObject({ bootSamples: 2, endSamples: 2, noWorkShare: 0 });
    expect(w.store.memory.size).toBe(0);
  });

  it('a director restart mid-create, after the create took effect, neither duplicates nor leaks: the resource is adopted', async () => {
    const w = world();
    w.store.queued = work(1);
    w.cloud.hangAfterEffect = true;
    void w.director.cycle(); // killed while the create call is under way: it never answers
    await settle();
    expect(w.cloud.createCalls).toHaveLength(1);
    expect(states(w.store)).toEqual(['requested']);

    w.cloud.hangAfterEffect = false;
    const restarted = w.restart();
    const rec = await restarted.cycle();
    expect(rec.actions.map((a) => a.kind)).toEqual(['mark']);
    expect(w.cloud.resources.size).toBe(1);
    expect(w.cloud.createCalls).toHaveLength(1);
    const inst = [...w.store.instances.values()];
    expect(inst).toHaveLength(1);
    expect(inst[0]).toMatchObject({ state: 'starting', driverId: [...w.cloud.resources.keys()][0] });
    expect(rec.decision.starts).toEqual([]);
    expect((await restarted.cycle()).decision.starts).toEqual([]);
  });

  it('a director restart mid-create, before the create took effect, issues it again under the same key with a new credential', async () => {
    const w = world();
    w.store.queued = work(1);
    w.cloud.hangBeforeEffect = true;
    void w.director.cycle();
    await settle();
    expect(w.cloud.resources.size).toBe(0);
    const key = [...w.store.instances.values()][0]!.key;

    w.cloud.hangBeforeEffect = false;
    const rec = await w.restart().cycle();
    expect(rec.actions.map((a) => a.kind)).toEqual(['create-again']);
    expect([...w.cloud.resources.values()].map((r) => r.key)).toEqual([key]);
    const inst = [...w.store.instances.values()];
    expect(inst).toHaveLength(1);
    expect(inst[0]!.state).toBe('starting');
    // only the credential the machine got is good: the one of the create that never got through is not
    const given = w.cloud.byKey(key)!.request.bootstrap.credential;
    expect(inst[0]!.credentialHash).toBe(credentialHash(given));
    expect(w.cloud.createCalls[0]!.bootstrap.credential).not.toBe(given);
    expect(rec.decision.starts).toEqual([]);
  });

  it('a create that hangs fails after driverCallMs without stopping the loop; what it made is removed by its key', async () => {
    const w = world();
    w.store.queued = work(1);
    w.cloud.hangAfterEffect = true;
    const cycle = w.director.cycle();
    await settle();
    await w.clock.advance(300_000);
    const rec = await cycle;
    expect(rec.actions[0]).toMatchObject({ kind: 'start', error: `creating ${[...w.store.instances.values()][0]!.key} took longer than 300 s` });
    expect(states(w.store)).toEqual(['failed']);
    expect(w.cloud.resources.size).toBe(1);
    w.cloud.hangAfterEffect = false;
    w.store.queued = [];
    await w.director.cycle();
    expect(states(w.store)).toEqual(['deleted']);
    expect(w.cloud.resources.size).toBe(0);
  });

  it('an endpoint whose driver fails backs off and says so; another endpoint takes the work', async () => {
    const cheap = endpoint('cheap', { shapes: { s: { cores: 4, memoryMb: 8000, costPerHour: 0.1 } } });
    const dear = endpoint('dear', { shapes: { s: { cores: 4, memoryMb: 8000, costPerHour: 0.5 } } });
    const w = world([cheap, dear]);
    w.store.queued = work(2);
    w.cloud.failCreates = ['quota exceeded in region'];
    const first = await w.director.cycle();
    expect(first.actions).toEqual([{ kind: 'start', endpoint: 'cheap', instanceId: 1, detail: 's for 2 queued payload(s) of g', error: 'fake cloud refused the create: quota exceeded in region' }]);
    expect(w.store.instances.get(1)!.state).toBe('failed');
    expect(backoffAt(w.store.memory, 'cheap/s', w.clock.now())).toMatchObject({ kind: 'driver-error', failures: 1 });

    const second = await w.director.cycle();
    expect(w.store.instances.get(1)!.state).toBe('deleted');
    expect(second.decision.starts.map((s) => s.endpoint)).toEqual(['dear']);
    const why = second.decision.endpoints.find((e) => e.endpoint === 'cheap')!.notMore;
    expect(why).toEqual([{ reason: 'backoff', detail: expect.stringMatching(/^cheap\/s backed off for 60 s more \(1 failure; last: driver-error: fake cloud refused the create: quota exceeded in region\)$/), payloads: 2 }]);
  });

  it('terminates a machine that does not boot in time and backs its offering off; a good life later clears it', async () => {
    const w = world([endpoint('a', { timeouts: { bootSec: 300 } })]);
    w.store.queued = work(1);
    await w.director.cycle();
    await w.clock.advance(301_000);
    await w.director.cycle();
    expect(w.store.history.get(1)!.map((h) => h.state)).toEqual(['requested', 'starting', 'failed', 'deleted']);
    expect(w.cloud.resources.size).toBe(0);
    expect(w.store.memory.get('a/s')).toMatchObject({ kind: 'boot-timeout', failures: 1 });

    await w.clock.advance(61_000);
    await w.director.cycle(); // backoff over: a new one starts
    bootAll(w);
    await w.director.cycle();
    await w.clock.advance(3_600_000);
    for (const p of w.store.pilotsById.values()) w.store.setPilot(p.id, { state: 'halted', shutdownCode: 300, payloadsRun: 1, haltedAt: w.clock.now() });
    await w.director.cycle();
    expect(w.store.memory.size).toBe(0);
  });

  it('drains a pilot at its instance\'s maximum lifetime', async () => {
    const w = world([endpoint('a', { timeouts: { maxLifetimeSec: 3600 } })]);
    w.store.queued = work(1);
    await w.director.cycle();
    bootAll(w);
    await w.director.cycle();
    await w.clock.advance(3_600_000);
    await w.director.cycle();
    expect(w.store.drains).toEqual([{ pilotId: 1, reason: 'maximum lifetime of 3600 s reached', at: w.clock.now() }]);
    expect(w.store.instances.get(1)!.drainAt).toBe(w.clock.now());
    await w.director.cycle();
    expect(w.store.drains).toHaveLength(1); // asked once
  });

  it('removes a resource tagged ours that no record knows after the safety window, and never another endpoint\'s', async () => {
    const a = endpoint('a', { timeouts: { orphanSec: 600 } });
    const b = endpoint('b');
    const w = world([a, b]);
    const req = { key: '', cores: 1, memoryMb: 1, lifetimeSec: 60, bootstrap: { serverUrl: 'x', credential: 'x', idleTimeoutSec: 1, graceSec: 1, lifetimeSec: 60 } };
    const stray = w.cloud.add(`${resourcePrefix('test', 'a')}stray`, req);
    const foreign = w.cloud.add('vmp-other-a-zzz', req);
    await w.director.cycle();
    await w.clock.advance(599_000);
    await w.director.cycle();
    expect(w.cloud.resources.has(stray.id)).toBe(true);
    await w.clock.advance(1000);
    const rec = await w.director.cycle();
    expect(w.cloud.resources.has(stray.id)).toBe(false);
    expect(w.cloud.resources.has(foreign.id)).toBe(true);
    expect(rec.actions).toEqual([{ kind: 'remove-orphan', endpoint: 'a', instanceId: null, detail: `${stray.id} (${stray.key})`, error: null }]);
  });

  it('a listing that fails marks nothing vanished; deletes that fail are tried again next cycle', async () => {
    const w = world();
    w.store.queued = work(1);
    await w.director.cycle();
    w.cloud.failList = true;
    await w.clock.advance(120_000);
    await w.director.cycle();
    expect(states(w.store)).toEqual(['starting']);
    w.cloud.failList = false;
    bootAll(w);
    await w.director.cycle();
    expect(states(w.store)).toEqual(['registered']);
  });

  it('an operator\'s disabled endpoint starts nothing', async () => {
    const w = world();
    w.store.disabled.add('a');
    w.store.queued = work(3);
    const rec = await w.director.cycle();
    expect(rec.decision.starts).toEqual([]);
    expect(rec.decision.endpoints[0]!.notMore[0]!.reason).toBe('disabled');
    expect(w.store.cycles).toHaveLength(1);
  });

  it('runs a cycle at start, then every everyMs and at once when poked; close waits for the cycle under way', async () => {
    const w = world();
    w.director.start();
    await settle();
    expect(w.store.cycles).toHaveLength(1);
    w.store.queued = work(1);
    w.director.poke();
    await settle();
    expect(w.store.cycles).toHaveLength(2);
    expect(w.cloud.resources.size).toBe(1);
    await w.clock.advance(w.director.everyMs);
    await settle();
    expect(w.store.cycles).toHaveLength(3);
    await w.director.close();
    await w.clock.advance(w.director.everyMs * 3);
    expect(w.store.cycles).toHaveLength(3);
  });

  it('one director at a time on one store: the second stands by until the first gives its lease back or stops renewing it', async () => {
    const w = world();
    const a = w.restart('server-a');
    const b = w.restart('server-b');
    w.store.queued = work(6);
    expect((await a.cycle()).decision.starts).toHaveLength(2);
    const idle = await b.cycle();
    // b did nothing: no second pair of machines for the same queue (the race of two directors on one queue)
    expect(idle.standby).toMatchObject({ holder: 'server-a' });
    expect(idle.actions).toEqual([]);
    expect(w.cloud.resources.size).toBe(2);
    expect(b.standby?.holder).toBe('server-a');
    expect(w.store.cycles).toHaveLength(1);

    // a crashes (no close): b takes over once a's lease has run out, and adopts what a started
    await w.clock.advance(29_000);
    expect((await b.cycle()).standby?.holder).toBe('server-a');
    await w.clock.advance(2_000);
    const taken = await b.cycle();
    expect(taken.standby).toBeUndefined();
    expect(b.standby).toBeNull();
    expect(taken.decision.starts).toEqual([]);
    expect(w.cloud.resources.size).toBe(2);

    // b closes: the lease is given back, and a third takes over at its first cycle
    await b.close();
    const c = w.restart('server-c');
    w.store.queued = work(20);
    const next = await c.cycle();
    expect(next.standby).toBeUndefined();
    expect(next.decision.starts.length).toBeGreaterThan(0);
  });

  it('on an elected leader: paused when it steps down (the lease given back, the drivers kept), started again later; the lease of one that died lasts 10 s', async () => {
    const w = world();
    const a = w.restart('server-a', true);
    const b = w.restart('server-b', true);
    w.store.queued = work(6);
    a.start();
    await settle();
    expect(a.runs).toBe(true);
    expect(w.store.cycles).toHaveLength(1);
    await a.pause();
    expect(a.runs).toBe(false);
    // nothing cycles while paused
    await w.clock.advance(a.everyMs * 3);
    expect(w.store.cycles).toHaveLength(1);
    // given back: another leader directs at its first cycle, and its drivers still answer after a's pause
    expect((await b.cycle()).standby).toBeUndefined();
    await b.pause();
    a.start();
    await settle();
    expect(a.runs).toBe(true);
    expect(w.store.cycles.length).toBe(3);
    expect(w.store.cycles.at(-1)?.standby).toBeUndefined();

    await a.close();
    a.start();
    expect(a.runs).toBe(false);

    // c dies leading (it cycled, and neither paused nor closed): b waits out c's short lease only
    const c = w.restart('server-c', true);
    expect((await c.cycle()).standby).toBeUndefined();
    await w.clock.advance(9_000);
    expect((await b.cycle()).standby?.holder).toBe('server-c');
    await w.clock.advance(2_000);
    expect((await b.cycle()).standby).toBeUndefined();
  });
});
