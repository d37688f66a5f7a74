/**
 * A moved deadline reaches the payloads in time, and no payload is started
 * that cannot finish before it (issue 22 point 1, issue 12 point 3): the
 * pilot looks at the site's shutdowntime every fraction of the grace, and
 * before it matches and admits, not only at heartbeats.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../../../src/agent/config/load.js';
import { FakeControlPlane, fakeAssignment } from '../../../../src/agent/control/fake-control-plane.js';
import { FakeProcessRunner } from '../../../../src/agent/executor/fake-process-runner.js';
import { FakeHalter } from '../../../../src/agent/halt/halter.js';
import { Pilot } from '../../../../src/agent/pilot.js';
import { FakeProbe } from '../../../../src/agent/probe/node-probe.js';
import type { CommandRunner } from '../../../../src/agent/ports.js';
import { NodeResources } from '../../../../src/agent/resources/node-resources.js';
import { PilotResources } from '../../../../src/agent/resources/pilot-resources.js';
import { MemoryStateStore } from '../../../../src/agent/state/memory-store.js';
import { FakeClock } from '../../../../src/shared/clock.js';
import { silentLogger } from '../../../../src/shared/log.js';
import { vac, writeSide } from '../mjf/sites.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'vmp-watch-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const noCommands: CommandRunner = async () => ({ exitCode: null, stdout: '', error: 'not run in this test' });

/** A pilot at a Vac-like site (features in directories), grace 4 s: it looks at the deadline every second. */
async function pilotAt(o: { shutdownInSec?: number; env?: Record<string, string>; run?: CommandRunner; mjf?: boolean } = {}) {
  const clock = new FakeClock();
  const nowSec = Math.floor(clock.now() / 1000);
  const site = vac(nowSec, { processors: 2, shutdownInSec: o.shutdownInSec ?? 86_400 });
  const machine = await writeSide(path.join(dir, 'machinefeatures'), site.machine);
  const job = await writeSide(path.join(dir, 'jobfeatures'), site.job);
  const stateDir = path.join(dir, 'state');
  const env = { ...(o.mjf === false ? {} : { MACHINEFEATURES: machine, JOBFEATURES: job }), ...o.env };
  const config = loadConfig({ flags: { server: 'http://s', grace: '4', stateDir, idleTimeout: '0' }, env: { VMPILOT_PILOT_TOKEN: 't', ...env } });
  const control = new FakeControlPlane();
  const runner = new FakeProcessRunner();
  const halter = new FakeHalter();
  const probe = new FakeProbe();
  const source = new NodeResources({ config, probe, log: silentLogger(), startedAt: clock.now(), run: o.run ?? noCommands, cgroupRoot: path.join(dir, 'none'), clock });
  const pilot = new Pilot({
    config,
    control,
    runner,
    probe,
    halter,
    store: new MemoryStateStore(),
    clock,
    log: silentLogger(),
    resources: new PilotResources(source, config, silentLogger()),
    // the first heartbeat comes 9.9 s in: everything below happens before it
    random: () => 0.99,
  });
  const until = (check: () => void | Promise<void>) => vi.waitFor(check, { timeout: 10_000, interval: 5 });
  const moveShutdown = (atSec: number) => writeFile(path.join(machine, 'shutdowntime'), `${atSec}\n`);
  const read = (file: string) => readFile(file, 'utf8').catch(() => '');
  void pilot.run();
  await until(() => expect(control.openMatches).toBe(1));
  return { clock, nowSec, control, runner, halter, stateDir, until, moveShutdown, read, pilot };
}

describe('a moved shutdown reaches the payloads in time', () => {
  it('shutdowntime moved to two minutes away: within a second $MACHINEFEATURES and the running payload’s shutdowntime_job say so, the match is asked again, and SIGTERM comes grace before the deadline', async () => {
    const t = await pilotAt();
    t.control.offer(fakeAssignment(1, { cores: 1, wallSec: null }));
    await t.until(() => expect(t.runner.started).toHaveLength(1));
    const jobFeatures = t.runner.started[0]!.spec.env.JOBFEATURES!;
    await t.until(async () => expect(await t.read(path.join(jobFeatures, 'shutdowntime_job'))).toBe(`${t.nowSec + 86_400 - 4}\n`));
    let termAt: number | null = null;
    const p = t.runner.started[0]!;
    const signal = p.signalGroup.bind(p);
    p.signalGroup = (sig) => {
      if (sig === 'SIGTERM') termAt ??= t.clock.now();
      return signal(sig);
    };
    const matches = t.control.matches.length;

    const deadline = t.nowSec + 120;
    await t.moveShutdown(deadline);
    await t.clock.advance(1000);
    await t.until(async () => expect(await t.read(path.join(jobFeatures, 'shutdowntime_job'))).toBe(`${deadline - 4}\n`));
    expect(await t.read(path.join(t.stateDir, 'machinefeatures', 'shutdowntime'))).toBe(`${deadline}\n`);
    await t.until(() => expect(t.control.matches.length).toBeGreaterThan(matches));
    expect(t.control.matches.at(-1)!.remainingSec).toBeLessThanOrEqual(120 - 4 - 1);
    // all of it before any heartbeat
    expect(t.control.heartbeats).toHaveLength(0);
    expect(p.signals).toEqual([]);

    for (let i = 0; i < 130 && !t.halter.call; i++) await t.clock.advance(1000);
    await t.until(() => expect(t.halter.call).not.toBeNull());
    expect(p.signals[0]).toBe('SIGTERM');
    expect(termAt).toBe((deadline - 4) * 1000);
  });

  it('the open match request is asked again with the new remaining time as soon as the move is seen', async () => {
    const t = await pilotAt();
    expect(t.control.matches.at(-1)!.remainingSec).toBe(86_400 - 4);
    await t.moveShutdown(t.nowSec + 1800);
    await t.clock.advance(1000);
    await t.until(() => expect(t.control.matches.at(-1)!.remainingSec).toBe(1800 - 4 - 1));
    expect(t.control.openMatches).toBe(1);
    expect(t.control.heartbeats).toHaveLength(0);
  });
});

describe('a payload that cannot finish before the deadline is not started', () => {
  it('a request is asked with the deadline of the moment: moved just before the pilot asks again (its last request answered by an instruction)', async () => {
    const t = await pilotAt();
    const before = t.control.matches.length;
    await t.moveShutdown(t.nowSec + 900);
    t.control.instruct({ id: 1, type: 'ping' });
    await t.until(() => expect(t.control.matches.length).toBeGreaterThan(before));
    expect(t.control.matches[before]!.remainingSec).toBe(900 - 4);
  });

  it('deadline moved closer while a match is open: the payload handed out on it, wall 3600, goes back to the queue; one that fits starts', async () => {
    const t = await pilotAt();
    expect(t.control.matches.at(-1)!.remainingSec).toBe(86_400 - 4);
    // the site moves shutdowntime 10 minutes ahead; the server answers the request it holds, made before
    await t.moveShutdown(t.nowSec + 600);
    t.control.offer(fakeAssignment(1, { cores: 1, wallSec: 3600 }));
    await t.until(() => expect(t.control.applied.some((r) => r.type === 'payload-released')).toBe(true));
    const released = t.control.applied.find((r) => r.type === 'payload-released');
    expect(released).toMatchObject({ payloadId: 1, reason: 'not started: needs 3600 s, only 596 s left before the pilot\'s deadline' });
    t.control.offer(fakeAssignment(2, { cores: 1, wallSec: 300 }));
    await t.until(() => expect(t.runner.started.map((p) => p.spec.env.VMPILOT_PAYLOAD_ID)).toEqual(['2']));
    expect(t.control.applied.filter((r) => r.type === 'payload-ended')).toEqual([]);
    expect(t.control.matches.at(-1)!.holding).toContain(1);
  });

  it('the batch end time is asked again (at most once a minute): Slurm moved the job’s end, the next request has the new remaining time', async () => {
    const clock0 = new FakeClock();
    const local = (ms: number) => {
      const d = new Date(ms);
      const p = (n: number) => String(n).padStart(2, '0');
      return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
    };
    let end = clock0.now() + 7200_000;
    const asked: number[] = [];
    const run: CommandRunner = async (argv) => {
      // the squeue calls only (the GPU probe asks nvidia-smi once at start)
      if (argv[0] === 'squeue') asked.push(argv.length);
      return argv[0] === 'squeue' ? { exitCode: 0, stdout: `${local(end)}\n` } : { exitCode: null, stdout: '', error: 'no such command' };
    };
    const t = await pilotAt({ mjf: false, env: { SLURM_JOB_ID: '42', SLURM_CPUS_ON_NODE: '2' }, run });
    expect(t.control.matches.at(-1)!.remainingSec).toBe(7200 - 4);
    expect(asked).toHaveLength(1);
    // scontrol update TimeLimit: the job now ends in 15 minutes
    end = t.clock.now() + 900_000;
    await t.clock.advance(30_000);
    expect(asked).toHaveLength(1);
    await t.clock.advance(31_000);
    await t.until(() => expect(t.control.matches.at(-1)!.remainingSec).toBeLessThanOrEqual(900 - 4 - 61));
    expect(asked.length).toBeLessThanOrEqual(2);
  });
});
