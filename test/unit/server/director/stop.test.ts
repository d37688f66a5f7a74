import { describe, expect, it } from 'vitest';
import { INSTANCE_STATE_NAMES } from '../../../../src/protocol/index.js';
import { resourcePrefix } from '../../../../src/server/director/credential.js';
import { FakeCloud, FakeDriver } from '../../../../src/server/director/drivers/fake.js';
import { INSTANCE_STATES } from '../../../../src/server/director/instance-states.js';
import { Director } from '../../../../src/server/director/loop.js';
import { MemoryDirectorStore } from '../../../../src/server/director/memory-store.js';
import type { InstanceRecord } from '../../../../src/server/director/ports.js';
import { STOPPED_REASON, stopResultOf, stopStepFor } from '../../../../src/server/director/stop.js';
import { FakeClock } from '../../../../src/shared/clock.js';
import { silentLogger } from '../../../../src/shared/log.js';
import { T0, endpoint } from './fixtures.js';

const rec = (o: Partial<InstanceRecord>): InstanceRecord => ({
  id: 1,
  key: 'vmp-test-a-k1',
  endpoint: 'a',
  shape: 's',
  cores: 4,
  memoryMb: 8000,
  forGroup: null,
  requirementClass: '',
  groups: null,
  state: 'registered',
  reason: 'pilot 3 registered',
  driverId: 'd1',
  credentialHash: 'h',
  pilotId: 3,
  costPerHour: 0,
  manual: true,
  requestedAt: T0,
  startedAt: T0,
  bootedAt: T0,
  registeredAt: T0,
  drainAt: null,
  endedAt: null,
  deletedAt: null,
  ...o,
});

describe('the stop rule', () => {
  it('drains a registered instance through its pilot, once', () => {
    expect(stopStepFor(rec({}))).toEqual({ kind: 'drain', pilotId: 3 });
    // a second stop does not push the drain grace back
    expect(stopStepFor(rec({ drainAt: T0 + 1000 }))).toEqual({ kind: 'none', outcome: 'already-draining' });
  });

  it('fails an instance that has no pilot yet, so that the next cycle deletes it', () => {
    for (const state of ['requested', 'starting', 'booting'] as const) expect(stopStepFor(rec({ state, pilotId: null }))).toEqual({ kind: 'fail' });
  });

  it('does nothing to an ended one, and names an unknown id', () => {
    for (const state of ['halted', 'failed', 'deleted'] as const) expect(stopStepFor(rec({ state }))).toEqual({ kind: 'none', outcome: 'already-ended' });
    expect(stopResultOf(99, null, stopStepFor(null))).toEqual({ id: 99, outcome: 'unknown', state: null, message: 'no instance 99' });
    expect(stopResultOf(1, rec({ state: 'deleted', reason: 'pilot 3 halted' }), { kind: 'none', outcome: 'already-ended' }).message).toBe('instance 1 has already ended (deleted: pilot 3 halted)');
  });

  it('has a rule for every instance state, and the protocol names the same states', () => {
    expect([...INSTANCE_STATE_NAMES]).toEqual([...INSTANCE_STATES]);
    for (const state of INSTANCE_STATES) expect(stopStepFor(rec({ state })).kind).toMatch(/^(drain|fail|none)$/);
  });
});

describe('Director.stopByHand', () => {
  function world() {
    const clock = new FakeClock(T0);
    const store = new MemoryDirectorStore();
    const cloud = new FakeCloud(clock);
    const ep = endpoint('a', { limits: { instances: 4 }, timeouts: { drainGraceSec: 120 } });
    let n = 0;
    const director = new Director({
      store,
      clock,
      log: silentLogger(),
      endpoints: [ep],
      drivers: new Map([['a', new FakeDriver(cloud, resourcePrefix('test', 'a'))]]),
      directorId: 'test',
      serverUrl: () => 'http://127.0.0.1:9',
      demandPolicy: { shares: new Map(), defaultShare: 1, defaultWallSec: 3600 },
      secrets: { key: (prefix) => `${prefix}k${++n}`, credential: () => `vmpi_secret-${++n}` },
    });
    return { clock, store, cloud, director };
  }

  it('drains a registered one (deleted once its pilot halts), discards a coming one, and names the rest', async () => {
    const w = world();
    const [a, b] = await w.director.startByHand('a', { count: 2 });
    await w.director.cycle(); // both created at the fake cloud
    const first = [...w.cloud.resources.values()].find((r) => r.key === a!.key)!;
    w.cloud.run(first.id);
    const pilot = w.store.registerPilot(first.request.bootstrap.credential, { cores: 4, registeredAt: w.clock.now() })!;
    await w.director.cycle();
    expect((await w.store.getInstance(a!.id))!.state).toBe('registered');

    const { results, drained } = await w.director.stopByHand([a!.id, b!.id, 999]);
    expect(results.map((r) => [r.id, r.outcome, r.state])).toEqual([
      [a!.id, 'draining', 'registered'],
      [b!.id, 'stopping', 'failed'],
      [999, 'unknown', null],
    ]);
    expect(drained).toEqual([pilot.id]);
    expect(w.store.drains).toEqual([{ pilotId: pilot.id, reason: STOPPED_REASON, at: T0 }]);
    expect((await w.store.getInstance(a!.id))!.drainAt).toBe(T0);
    // asked again: nothing more, the drain's time stays
    expect((await w.director.stopByHand([a!.id])).results[0]!.outcome).toBe('already-draining');

    // the coming one goes at the next cycle; the registered one once its pilot halts
    await w.director.cycle();
    expect((await w.store.getInstance(b!.id))!.state).toBe('deleted');
    expect((await w.store.getInstance(a!.id))!.state).toBe('registered');
    w.store.setPilot(pilot.id, { state: 'halted', haltedAt: w.clock.now(), shutdownCode: 100 });
    await w.director.cycle();
    expect((await w.store.getInstance(a!.id))!.state).toBe('deleted');
    expect(w.cloud.resources.size).toBe(0);
    expect((await w.director.stopByHand([a!.id])).results[0]).toMatchObject({ outcome: 'already-ended', state: 'deleted' });
  });

  it('terminates a drained instance whose pilot does not halt within the drain grace', async () => {
    const w = world();
    const [a] = await w.director.startByHand('a');
    await w.director.cycle();
    const r = [...w.cloud.resources.values()][0]!;
    w.cloud.run(r.id);
    w.store.registerPilot(r.request.bootstrap.credential, { cores: 4, registeredAt: w.clock.now() });
    await w.director.cycle();
    await w.director.stopByHand([a!.id]);
    await w.clock.advance(119_000);
    await w.director.cycle();
    expect((await w.store.getInstance(a!.id))!.state).toBe('registered');
    await w.clock.advance(2_000);
    await w.director.cycle();
    const after = (await w.store.getInstance(a!.id))!;
    expect(after.state).toBe('deleted');
    expect(w.store.history.get(a!.id)!.map((h) => h.reason)).toContain('stopped by an operator: drained 120 s ago and still not halted');
  });
});

describe('a stop while the create is under way', () => {
  it('is not taken for a failure of the offering, and what the create made is removed by its key', async () => {
    const clock = new FakeClock(T0);
    const store = new MemoryDirectorStore();
    const cloud = new FakeCloud(clock);
    const director = new Director({
      store,
      clock,
      log: silentLogger(),
      endpoints: [endpoint('a')],
      drivers: new Map([['a', new FakeDriver(cloud, resourcePrefix('test', 'a'))]]),
      directorId: 'test',
      serverUrl: 'http://127.0.0.1:9',
      demandPolicy: { shares: new Map(), defaultShare: 1, defaultWallSec: 3600 },
      driverCallMs: 1000,
    });
    const [a] = await director.startByHand('a');
    cloud.hangAfterEffect = true; // the machine is made, the answer never comes
    const cycle = director.cycle();
    for (let i = 0; i < 20 && cloud.resources.size === 0; i++) await new Promise((r) => setImmediate(r));
    expect(cloud.resources.size).toBe(1);
    expect((await director.stopByHand([a!.id])).results[0]!.outcome).toBe('stopping');
    await clock.advance(1000);
    const record = await cycle;
    expect(record.actions.find((x) => x.instanceId === a!.id)).toMatchObject({ kind: 'create-again', error: null, detail: expect.stringContaining('stopped by an operator while it was being created') });
    expect(store.memory.size).toBe(0); // no backoff
    expect((await store.getInstance(a!.id))!.reason).toBe(STOPPED_REASON);
    cloud.hangAfterEffect = false;
    await director.cycle();
    expect((await store.getInstance(a!.id))!.state).toBe('deleted');
    expect(cloud.resources.size).toBe(0);
  });
});
