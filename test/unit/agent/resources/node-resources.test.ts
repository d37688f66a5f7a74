import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../../../src/agent/config/load.js';
import { FakeControlPlane, fakeAssignment } from '../../../../src/agent/control/fake-control-plane.js';
import { FakeProcessRunner } from '../../../../src/agent/executor/fake-process-runner.js';
import { FakeHalter } from '../../../../src/agent/halt/halter.js';
import { Pilot } from '../../../../src/agent/pilot.js';
import { FakeProbe, fakeSnapshot } from '../../../../src/agent/probe/node-probe.js';
import { NodeResources } from '../../../../src/agent/resources/node-resources.js';
import { PilotResources } from '../../../../src/agent/resources/pilot-resources.js';
import { MemoryStateStore } from '../../../../src/agent/state/memory-store.js';
import { FakeClock } from '../../../../src/shared/clock.js';
import { silentLogger } from '../../../../src/shared/log.js';
import { captureLogger } from '../log-capture.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'vmp-res-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function side(name: string, values: Record<string, string | number>): Promise<string> {
  const d = path.join(dir, name);
  await mkdir(d, { recursive: true });
  for (const [k, v] of Object.entries(values)) await writeFile(path.join(d, k), `${v}\n`);
  return d;
}

const noCommands = async () => ({ exitCode: null, stdout: '', error: 'not run in this test' });

function resources(flags: Record<string, string>, env: Record<string, string>, extra: { cgroupRoot?: string; probeCores?: number } = {}) {
  const config = loadConfig({ flags: { stateDir: path.join(dir, 'state'), ...flags }, env });
  const probe = new FakeProbe(fakeSnapshot({ cores: extra.probeCores ?? 64, memoryMb: { total: 256_000, free: 200_000 } }));
  const { log, lines } = captureLogger();
  const source = new NodeResources({ config, probe, log, startedAt: 1_000_000, run: noCommands, cgroupRoot: extra.cgroupRoot ?? path.join(dir, 'no-cgroup'), procSelfCgroup: path.join(dir, 'self') });
  return { source, lines };
}

describe('NodeResources: strongest source wins, each value says where it came from', () => {
  it('probe < cgroup < batch < MJF < config', async () => {
    const cg = path.join(dir, 'cg');
    await mkdir(cg);
    await writeFile(path.join(cg, 'cgroup.controllers'), 'cpu memory');
    await writeFile(path.join(cg, 'cpu.max'), '400000 100000');
    await writeFile(path.join(cg, 'memory.max'), String(16 * 1024 ** 3));
    await writeFile(path.join(dir, 'self'), '0::/\n');
    const probeOnly = await resources({}, {}, { cgroupRoot: path.join(dir, 'none') }).source.init();
    expect(probeOnly.offered.cores).toMatchObject({ value: 64, source: 'probe' });
    const cgroup = await resources({}, {}, { cgroupRoot: cg }).source.init();
    expect(cgroup.offered.cores).toMatchObject({ value: 4, source: 'cgroup', candidates: { cgroup: 4, probe: 64 } });
    expect(cgroup.offered.memoryMb).toMatchObject({ total: 16384, source: 'cgroup' });
    const batch = await resources({}, { SLURM_JOB_ID: '5', SLURM_CPUS_ON_NODE: '3' }, { cgroupRoot: cg }).source.init();
    expect(batch.offered.cores).toMatchObject({ value: 3, source: 'batch' });
    expect(batch.batch).toMatchObject({ system: 'slurm', jobId: '5', endsAt: null });
    const job = await side('job', { allocated_cpu: 2, max_rss_bytes: 4 * 1024 ** 3 });
    const mjf = await resources({}, { SLURM_JOB_ID: '5', SLURM_CPUS_ON_NODE: '3', JOBFEATURES: job }, { cgroupRoot: cg }).source.init();
    expect(mjf.offered.cores).toMatchObject({ value: 2, source: 'mjf', candidates: { mjf: 2, batch: 3, cgroup: 4, probe: 64 } });
    expect(mjf.offered.memoryMb).toMatchObject({ total: 4096, source: 'mjf' });
    const config = await resources({ cores: '1' }, { JOBFEATURES: job }, { cgroupRoot: cg }).source.init();
    expect(config.offered.cores).toMatchObject({ value: 1, source: 'config' });
  });

  it('bad values in every source give a log line and a safe default, never a crash', async () => {
    const cg = path.join(dir, 'cg');
    await mkdir(cg);
    await writeFile(path.join(cg, 'cgroup.controllers'), 'cpu memory');
    await writeFile(path.join(cg, 'cpu.max'), 'garbage');
    await writeFile(path.join(dir, 'self'), '0::/\n');
    const job = await side('job', { allocated_cpu: 'many', wall_limit_secs: '-1' });
    const { source, lines } = resources({}, { PBS_JOBID: '9', NCPUS: 'x', JOBFEATURES: job, MACHINEFEATURES: 'http://127.0.0.1:1/' }, { cgroupRoot: cg, probeCores: 8 });
    const v = await source.init();
    expect(v.offered.cores).toMatchObject({ value: 8, source: 'probe' });
    expect(v.deadline.at).toBeNull();
    const warned = lines.filter((l) => l.level === 40).map((l) => String(l.msg));
    expect(warned).toContain('bad cgroup value ignored');
    expect(warned).toContain('bad batch value ignored');
    expect(warned).toContain('bad Machine/Job Features value ignored');
  });
});

describe('the pilot follows a deadline that moves while it runs', () => {
  it('shutdowntime moved earlier: the next heartbeat re-reads it, matching stops asking for more than is left, payloads get SIGTERM at deadline minus grace, halt 100', async () => {
    const clock = new FakeClock();
    const nowSec = Math.floor(clock.now() / 1000);
    const machine = await side('machine', { total_cpu: 4, shutdowntime: nowSec + 7200 });
    const stateDir = path.join(dir, 'state');
    const config = loadConfig({ flags: { server: 'http://s', grace: '5', stateDir, idleTimeout: '0' }, env: { MACHINEFEATURES: machine, VMPILOT_PILOT_TOKEN: 't' } });
    const control = new FakeControlPlane();
    const runner = new FakeProcessRunner();
    let termAt: number | null = null;
    runner.onStart = (p) => {
      const signal = p.signalGroup.bind(p);
      p.signalGroup = (sig) => {
        if (sig === 'SIGTERM') termAt ??= clock.now();
        return signal(sig);
      };
    };
    const halter = new FakeHalter();
    const probe = new FakeProbe();
    const source = new NodeResources({ config, probe, log: silentLogger(), startedAt: clock.now(), run: noCommands, cgroupRoot: path.join(dir, 'none') });
    const pilot = new Pilot({ config, control, runner, probe, halter, store: new MemoryStateStore(), clock, log: silentLogger(), resources: new PilotResources(source, config, silentLogger()) });
    const until = (check: () => void) => vi.waitFor(check, { timeout: 10_000, interval: 2 });
    void pilot.run();
    await until(() => expect(control.matches.length).toBeGreaterThan(0));
    expect(control.registrations[0]).toMatchObject({ cores: 4, deadline: (nowSec + 7200) * 1000 });
    expect(control.matches[0]!.remainingSec).toBe(7200 - 5);
    // the node's machine features as payloads see them
    expect(await readFile(path.join(stateDir, 'machinefeatures', 'shutdowntime'), 'utf8')).toBe(`${nowSec + 7200}\n`);

    control.offer(fakeAssignment(1, { cores: 1, wallSec: null }));
    await until(() => expect(runner.started).toHaveLength(1));
    const jobDir = runner.started[0]!.spec.env.JOBFEATURES!;
    expect(await readFile(path.join(jobDir, 'shutdowntime_job'), 'utf8')).toBe(`${nowSec + 7200 - 5}\n`);
    expect(runner.started[0]!.spec.env.MACHINEFEATURES).toBe(path.join(stateDir, 'machinefeatures'));

    // The site moves shutdowntime to 10 minutes from now.
    await writeFile(path.join(machine, 'shutdowntime'), `${nowSec + 600}\n`);
    await clock.advance(31_000);
    await until(() => expect(control.heartbeats.at(-1)?.deadline).toBe((nowSec + 600) * 1000));
    await until(() => expect(control.matches.at(-1)!.remainingSec).toBeLessThanOrEqual(600 - 5 - 31));
    expect(await readFile(path.join(stateDir, 'machinefeatures', 'shutdowntime'), 'utf8')).toBe(`${nowSec + 600}\n`);
    expect(runner.started[0]!.signals).toEqual([]);

    // At deadline minus grace: SIGTERM to the payload, halt with 100.
    for (let t = 31; t < 600 && !halter.call; t += 10) await clock.advance(10_000);
    await until(() => expect(halter.call).not.toBeNull());
    expect(runner.started[0]!.signals[0]).toBe('SIGTERM');
    expect(termAt).toBe((nowSec + 600 - 5) * 1000);
    const shutdown = control.applied.find((r) => r.type === 'shutdown');
    expect(shutdown).toMatchObject({ code: 100 });
  });
});

describe('the pilot uses the Machine/Job Features it reads', () => {
  it('reports them in its heartbeat, and takes the site grace_secs when shorter than its own', async () => {
    const clock = new FakeClock();
    const nowSec = Math.floor(clock.now() / 1000);
    const machine = await side('machine-grace', { total_cpu: 2, shutdowntime: nowSec + 7200, grace_secs: 3, hs06: 20 });
    const config = loadConfig({ flags: { server: 'http://s', grace: '5', stateDir: path.join(dir, 'state-grace'), idleTimeout: '0' }, env: { MACHINEFEATURES: machine, VMPILOT_PILOT_TOKEN: 't' } });
    const control = new FakeControlPlane();
    const probe = new FakeProbe();
    const source = new NodeResources({ config, probe, log: silentLogger(), startedAt: clock.now(), run: noCommands, cgroupRoot: path.join(dir, 'none') });
    const res = new PilotResources(source, config, silentLogger());
    const pilot = new Pilot({ config, control, runner: new FakeProcessRunner(), probe, halter: new FakeHalter(), store: new MemoryStateStore(), clock, log: silentLogger(), resources: res });
    const until = (check: () => void) => vi.waitFor(check, { timeout: 10_000, interval: 2 });
    void pilot.run();
    await until(() => expect(control.matches.length).toBeGreaterThan(0));
    expect(res.graceSec()).toBe(3);
    expect(control.matches[0]!.remainingSec).toBe(7200 - 3);
    await clock.advance(31_000); // past the jittered first beat
    await until(() => expect(control.heartbeats.length).toBeGreaterThan(0));
    expect(control.heartbeats.at(-1)!.features).toMatchObject({ total_cpu: 2, grace_secs: 3, hs06: 20, shutdowntime: nowSec + 7200 });
    pilot.requestHalt(100, 'test over');
    await until(() => expect(control.applied.some((r) => r.type === 'shutdown')).toBe(true));
  });
});
