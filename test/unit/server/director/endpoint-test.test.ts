import { describe, expect, it } from 'vitest';
import type { EndpointTestDone, EndpointTestLine, EndpointTestStage, PayloadView, SubmitRequest } from '../../../../src/protocol/index.js';
import { resourcePrefix } from '../../../../src/server/director/credential.js';
import { FakeCloud, FakeDriver } from '../../../../src/server/director/drivers/fake.js';
import type { EndpointConfig } from '../../../../src/server/director/endpoint-config.js';
import { runEndpointTest, type EndpointTestStore } from '../../../../src/server/director/endpoint-test.js';
import { PROBE_GROUP_PREFIX, STAGES, hintsFor, probeCommand } from '../../../../src/server/director/endpoint-test-plan.js';
import { Director } from '../../../../src/server/director/loop.js';
import { MemoryDirectorStore } from '../../../../src/server/director/memory-store.js';
import { FakeClock } from '../../../../src/shared/clock.js';
import { silentLogger } from '../../../../src/shared/log.js';
import { endpoint } from './fixtures.js';

/**
 * The director's memory store, with the parts of the server's store the
 * test uses beyond it: payloads the test plays the pilot for (the machine side is played by `tick`).
 */
class TestStore extends MemoryDirectorStore implements EndpointTestStore {
  readonly payloads = new Map<number, PayloadView>();
  readonly killed: number[] = [];
  private nextPayload = 1;

  async submitPayload(r: SubmitRequest, at: number): Promise<PayloadView> {
    const p: PayloadView = {
      id: this.nextPayload++,
      name: r.name ?? '',
      group: r.group ?? 'default',
      command: r.command,
      cores: r.cores!,
      memoryMb: null,
      wallSec: r.wallSec ?? null,
      priority: 0,
      state: 'queued',
      pilotId: null,
      allocatedCores: null,
      exitCode: null,
      signal: null,
      submittedAt: at,
      assignedAt: null,
      startedAt: null,
      endedAt: null,
      attempts: 0,
      message: null,
      outputTail: null,
    };
    this.payloads.set(p.id, p);
    return { ...p };
  }

  async getPayload(id: number) {
    const p = this.payloads.get(id);
    return p ? { ...p } : null;
  }

  async killPayload(id: number): Promise<null> {
    const p = this.payloads.get(id)!;
    if (p.state === 'queued') this.payloads.set(id, { ...p, state: 'cancelled' });
    this.killed.push(id);
    return null;
  }

  async drainOnce(pilotId: number, request: { type: 'drain'; reason?: string }, at: number) {
    await this.drainPilot(pilotId, request.reason ?? '', at);
    return { instruction: { id: this.drains.length, type: 'drain' as const }, existing: false };
  }
}

interface Script {
  /** Machines come up (the fake cloud says they run). */
  run: boolean;
  /** Their pilots register with the instance's credential. */
  register: boolean;
  /** What a pilot prints for the probe (default: the command's own echo). */
  output?: (marker: string) => string;
}

function world(raw: Record<string, unknown> = {}, script: Script = { run: true, register: true }) {
  const clock = new FakeClock();
  const store = new TestStore();
  const cloud = new FakeCloud(clock);
  const ep: EndpointConfig = endpoint('a', { timeouts: { bootSec: 60, registrationSec: 60 }, limits: { instances: 4 }, ...raw });
  let n = 0;
  const director = new Director({
    store,
    clock,
    log: silentLogger(),
    endpoints: [ep],
    drivers: new Map([[ep.name, new FakeDriver(cloud, resourcePrefix('test', ep.name))]]),
    directorId: 'test',
    serverUrl: 'http://127.0.0.1:9',
    demandPolicy: { shares: new Map(), defaultShare: 1, defaultWallSec: 3600 },
    secrets: { key: (prefix) => `${prefix}k${++n}`, credential: () => `vmpi_secret-${++n}` },
    everyMs: 1000,
  });
  const groupsOfPilot = new Map<number, readonly string[] | null>();
  /** The machines' side, once a tick: boot, register, run what they are given, halt when drained. */
  const tick = () => {
    for (const r of cloud.resources.values()) {
      if (r.state === 'pending' && script.run) cloud.run(r.id);
      if (!script.register || !script.run) continue;
      const p = store.registerPilot(r.request.bootstrap.credential, { cores: r.request.cores, registeredAt: clock.now() });
      if (p) groupsOfPilot.set(p.id, [...store.instances.values()].find((i) => i.pilotId === p.id)!.groups);
    }
    for (const p of store.payloads.values()) {
      if (p.state !== 'queued') continue;
      const pilot = [...groupsOfPilot].find(([id, groups]) => store.pilotsById.get(id)!.state === 'running' && (groups === null || groups.includes(p.group)));
      if (!pilot) continue;
      const echo = /echo '(.*)'$/.exec(p.command[2]!)![1]!;
      store.payloads.set(p.id, { ...p, state: 'done', pilotId: pilot[0], exitCode: 0, outputTail: script.output ? script.output(echo) : `${echo}\n`, endedAt: clock.now() });
      store.setPilot(pilot[0], { payloadsRun: 1 });
    }
    for (const d of store.drains) {
      const p = store.pilotsById.get(d.pilotId)!;
      if (p.state !== 'halted') store.setPilot(d.pilotId, { state: 'halted', shutdownCode: 300, haltedAt: clock.now() });
    }
  };
  return { clock, store, cloud, director, ep, tick };
}

/** Run the test to its end, moving the fake clock and playing the machines. */
async function runIt(w: ReturnType<typeof world>, o: { shape?: string; timeoutSec?: number } = {}) {
  const lines: EndpointTestLine[] = [];
  w.director.start();
  let finished: EndpointTestDone | null = null;
  const run = runEndpointTest({ director: w.director, store: w.store, clock: w.clock, randomHex: () => 'beef' }, { endpoint: 'a', ...o }, (l) => lines.push(l)).then((d) => (finished = d));
  for (let i = 0; i < 5000 && finished === null; i++) {
    w.tick();
    await w.clock.advance(250);
    for (let k = 0; k < 5; k++) await new Promise((r) => setImmediate(r));
  }
  await run;
  await w.director.close();
  const stages = lines.filter((l): l is EndpointTestStage => 'stage' in l);
  return { lines, stages, done: finished! as EndpointTestDone };
}

describe('endpoint test', () => {
  it('passes every stage, in order, each timed, with a pilot that served only the probe group; the instance ends deleted', async () => {
    const w = world();
    const { stages, done, lines } = await runIt(w);
    expect(stages.map((s) => [s.stage, s.ok])).toEqual(STAGES.map((s) => [s, true]));
    expect(lines.at(-1)).toEqual(done);
    expect(done).toMatchObject({ done: true, ok: true, instanceId: 1, probeGroup: `${PROBE_GROUP_PREFIX}beef` });
    expect(done.totalMs).toBe(stages.reduce((n, s) => n + s.ms, 0));
    for (const s of stages) expect(s.hints).toBeUndefined();
    expect(stages.find((s) => s.stage === 'create')!.detail).toContain('created fake-1');
    expect(stages.find((s) => s.stage === 'probe')!.detail).toMatch(/ran on pilot 1: exit 0/);
    const inst = w.store.instances.get(1)!;
    expect(inst).toMatchObject({ state: 'deleted', manual: true, groups: [`${PROBE_GROUP_PREFIX}beef`] });
    // booting is seen or skipped, as the pilot registers before or after a cycle saw its machine run
    expect(w.store.history.get(1)!.map((h) => h.state).filter((s) => s !== 'booting')).toEqual(['requested', 'starting', 'registered', 'halted', 'deleted']);
    expect(w.cloud.resources.size).toBe(0);
  });

  it('stops at credentials with the driver\'s words when its listing fails, and starts nothing', async () => {
    const w = world();
    w.cloud.failList = true;
    const { stages, done } = await runIt(w);
    expect(stages.map((s) => [s.stage, s.ok])).toEqual([['config', true], ['credentials', false]]);
    expect(stages[1]!.detail).toContain('fake cloud: listing failed');
    expect(stages[1]!.hints!.length).toBeGreaterThan(0);
    expect(done).toMatchObject({ ok: false, instanceId: null });
    expect(w.store.instances.size).toBe(0);
  });

  it("stops at create with the driver's words, and the failed instance ends deleted", async () => {
    const w = world();
    w.cloud.failCreates = ['InsufficientInstanceCapacity: no m5.large in eu-west-1a'];
    const { stages, done } = await runIt(w);
    expect(stages.map((s) => [s.stage, s.ok])).toEqual([['config', true], ['credentials', true], ['create', false], ['deleted', true]]);
    expect(stages[2]!.detail).toContain('InsufficientInstanceCapacity: no m5.large in eu-west-1a');
    expect(stages[2]!.hints).toEqual(hintsFor('create', w.ep, w.store.instances.get(1)!.key));
    expect(done.ok).toBe(false);
    expect(w.store.instances.get(1)!.state).toBe('deleted');
  });

  it('stops at registered after the registration timeout when no pilot comes, and cleans the machine up', async () => {
    const w = world({}, { run: true, register: false });
    const { stages, done } = await runIt(w);
    expect(stages.map((s) => [s.stage, s.ok])).toEqual([['config', true], ['credentials', true], ['create', true], ['booting', true], ['registered', false], ['deleted', true]]);
    const reg = stages[4]!;
    expect(reg.detail).toMatch(/registration timeout: no pilot registered 60 s after it ran/);
    expect(reg.ms).toBeGreaterThanOrEqual(60_000);
    expect(reg.hints!.join('\n')).toContain('server URL as the machine reaches it');
    expect(done.ok).toBe(false);
    expect(w.store.instances.get(1)!.state).toBe('deleted');
    expect(w.cloud.resources.size).toBe(0);
  });

  it('a probe whose output lacks the marker fails the probe stage; the registered instance is drained and deleted', async () => {
    const w = world({}, { run: true, register: true, output: () => 'something else\n' });
    const { stages } = await runIt(w);
    expect(stages.map((s) => [s.stage, s.ok])).toEqual([['config', true], ['credentials', true], ['create', true], ['booting', true], ['registered', true], ['probe', false], ['deleted', true]]);
    expect(stages[5]!.detail).toContain('does not hold the marker');
    expect(w.store.drains).toHaveLength(1);
    expect(w.store.instances.get(1)!.state).toBe('deleted');
  });

  it('a machine that never runs, under --timeout, stops at booting on the test\'s own timeout; the instance is marked failed and deleted', async () => {
    const w = world({}, { run: false, register: false });
    const { stages } = await runIt(w, { timeoutSec: 20 });
    expect(stages.map((s) => [s.stage, s.ok])).toEqual([['config', true], ['credentials', true], ['create', true], ['booting', false], ['deleted', true]]);
    expect(stages[3]!.detail).toMatch(/the test's timeout \(20 s\) passed: waiting for the driver to say it runs; instance 1 is starting: created fake-1/);
    // the machine is still there when the test gives up: what its driver says of it is in the detail
    expect(stages[3]!.detail).toMatch(/; the driver says fake-1 is pending$/);
    expect(w.store.history.get(1)!.map((h) => h.state)).toEqual(['requested', 'starting', 'failed', 'deleted']);
    expect(w.store.instances.get(1)!.reason).toBe('endpoint test: stopped: a stage failed');
  });

  it('a disabled endpoint or an unknown shape stops at config', async () => {
    const w = world();
    w.store.disabled.add('a');
    expect((await runIt(w)).stages).toMatchObject([{ stage: 'config', ok: false, detail: 'endpoint a was disabled by an operator' }]);
    const w2 = world();
    expect((await runIt(w2, { shape: 'huge' })).stages).toMatchObject([{ stage: 'config', ok: false, detail: 'endpoint a has no shape "huge"; it has s' }]);
  });
});

describe('endpoint test plan', () => {
  it('gives hints for every stage and driver kind', () => {
    const kinds: Record<string, unknown>[] = [
      { driver: 'process', process: { workDir: '/tmp/a' } },
      { driver: 'slurm', process: undefined, slurm: { queue: 'short', ssh: { host: 'login.example.org', user: 'pilot' } } },
      { driver: 'qemu', process: undefined, qemu: { image: '/var/lib/base.qcow2', workDir: '/tmp/q' } },
    ];
    for (const raw of kinds) {
      const ep = endpoint('a', raw);
      for (const s of STAGES) expect(hintsFor(s, ep, 'vmp-k1').length, `${ep.driver.kind} ${s}`).toBeGreaterThan(0);
    }
    const slurm = endpoint('a', kinds[1]!);
    expect(hintsFor('booting', slurm, 'vmp-k1').join('\n')).toContain("squeue --name vmp-k1");
    expect(hintsFor('credentials', slurm).join('\n')).toContain('pilot@login.example.org');
  });

  it("the probe's command prints its marker", () => {
    const { marker, command } = probeCommand('vmpilot-probe-1');
    expect(command.slice(0, 2)).toEqual(['/bin/sh', '-c']);
    expect(command[2]).toBe(`echo '${marker}'`);
  });
});
