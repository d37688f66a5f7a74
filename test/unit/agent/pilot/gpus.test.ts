import { readFile } from 'node:fs/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../../../src/agent/config/load.js';
import { FakeControlPlane, fakeAssignment } from '../../../../src/agent/control/fake-control-plane.js';
import { FakeProcessRunner } from '../../../../src/agent/executor/fake-process-runner.js';
import { FakeHalter } from '../../../../src/agent/halt/halter.js';
import { Pilot } from '../../../../src/agent/pilot.js';
import { FakeProbe } from '../../../../src/agent/probe/node-probe.js';
import { NodeResources } from '../../../../src/agent/resources/node-resources.js';
import { PilotResources } from '../../../../src/agent/resources/pilot-resources.js';
import { MemoryStateStore } from '../../../../src/agent/state/memory-store.js';
import type { Report } from '../../../../src/protocol/index.js';
import { FakeClock } from '../../../../src/shared/clock.js';
import { silentLogger } from '../../../../src/shared/log.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A pilot on fakes whose real NodeResources declare `flags` (e.g. two GPUs) over a node with none. */
function gpuPilot(flags: Record<string, string | string[]>) {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'vmp-gpus-'));
  dirs.push(stateDir);
  const config = loadConfig({ flags: { server: 'http://s', cores: '4', grace: '5', stateDir, idleTimeout: '0', ...flags }, env: { VMPILOT_PILOT_TOKEN: 't' } });
  const clock = new FakeClock();
  const control = new FakeControlPlane(clock);
  const runner = new FakeProcessRunner();
  const probe = new FakeProbe();
  const noCommands = async () => ({ exitCode: null, stdout: '', error: 'not run in this test' });
  const source = new NodeResources({ config, probe, log: silentLogger(), startedAt: clock.now(), run: noCommands, cgroupRoot: path.join(stateDir, 'none'), probeRoot: path.join(stateDir, 'no-root') });
  const pilot = new Pilot({ config, control, runner, probe, halter: new FakeHalter(), store: new MemoryStateStore(), clock, log: silentLogger(), resources: new PilotResources(source, config, silentLogger()) });
  const until = (check: () => void) => vi.waitFor(check, { timeout: 10_000, interval: 2 });
  const released = () => control.applied.filter((r): r is Extract<Report, { type: 'payload-released' }> => r.type === 'payload-released');
  void pilot.run();
  return { control, runner, pilot, until, released };
}

describe('a pilot with GPUs', () => {
  it('declares them, offers the free ones, gives each GPU payload its own and every other payload none', async () => {
    const t = gpuPilot({ gpus: '2', site: 'CERN', tag: ['cvmfs'] });
    await t.until(() => expect(t.control.matches.length).toBeGreaterThan(0));
    expect(t.control.registrations[0]!.capabilities).toMatchObject({ site: 'CERN', tags: ['cvmfs'], gpus: [{ id: '0' }, { id: '1' }] });
    expect(t.control.matches.at(-1)!.freeGpus).toEqual(['0', '1']);

    t.control.offer(fakeAssignment(1, { requirements: { gpus: 1 } }));
    await t.until(() => expect(t.runner.started).toHaveLength(1));
    t.control.offer(fakeAssignment(2, { requirements: { gpus: 1 } }));
    await t.until(() => expect(t.runner.started).toHaveLength(2));
    t.control.offer(fakeAssignment(3));
    await t.until(() => expect(t.runner.started).toHaveLength(3));
    const env = t.runner.started.map((p) => p.spec.env);
    expect(env.map((e) => e.CUDA_VISIBLE_DEVICES)).toEqual(['0', '1', '']);
    expect(env.map((e) => e.NVIDIA_VISIBLE_DEVICES)).toEqual(['0', '1', 'none']);
    expect(await readFile(path.join(env[1]!.JOBFEATURES!, 'allocated_gpu_ids'), 'utf8')).toBe('1\n');
    expect(await readFile(path.join(env[2]!.JOBFEATURES!, 'allocated_gpu'), 'utf8')).toBe('0\n');
    await t.until(() => expect(t.control.matches.at(-1)!.freeGpus).toBeUndefined());

    // both GPUs held: a third GPU payload handed out on a stale view is given back, not started
    t.control.offer(fakeAssignment(4, { requirements: { gpus: 1 } }));
    await t.until(() => expect(t.released().map((r) => r.payloadId)).toEqual([4]));
    expect(t.released()[0]!.reason).toBe('not started: needs a GPU free (this node: 0 free of 2)');
    expect(t.runner.started).toHaveLength(3);

    // the first ends: its GPU is free again, offered, and given to the next
    t.runner.started[0]!.finish();
    await t.until(() => expect(t.control.matches.at(-1)!.freeGpus).toEqual(['0']));
    t.control.offer(fakeAssignment(5, { requirements: { gpus: 1 } }));
    await t.until(() => expect(t.runner.started).toHaveLength(4));
    expect(t.runner.started[3]!.spec.env.CUDA_VISIBLE_DEVICES).toBe('0');
    t.pilot.requestHalt(100, 'test over');
  });

  it('gives back a payload whose requirements it does not meet', async () => {
    const t = gpuPilot({ site: 'RAL' });
    await t.until(() => expect(t.control.matches.length).toBeGreaterThan(0));
    t.control.offer(fakeAssignment(7, { requirements: { site: ['CERN'] } }));
    await t.until(() => expect(t.released().map((r) => r.reason)).toEqual(['not started: needs site CERN (this node: site RAL)']));
    expect(t.runner.started).toHaveLength(0);
    // a node without GPUs sets no GPU variable
    t.control.offer(fakeAssignment(8));
    await t.until(() => expect(t.runner.started).toHaveLength(1));
    expect(t.runner.started[0]!.spec.env).not.toHaveProperty('CUDA_VISIBLE_DEVICES');
    t.pilot.requestHalt(100, 'test over');
  });
});
