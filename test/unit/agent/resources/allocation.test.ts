/**
 * Cores from the job's own allocation, not the whole machine (issue 22,
 * point 5): at each site the job's allocation (allocated_cpu, the older
 * allocated_CPU, NSLOTS, SLURM_CPUS_ON_NODE, an HTCondor slot's Cpus) wins
 * over machine-wide counts (total_cpu, log_cores, jobslots), which are a
 * fallback only; the view says which won and why (`vmpilot probe --json`).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../../src/agent/config/load.js';
import { parseMachineAd } from '../../../../src/agent/resources/condor.js';
import { NodeResources } from '../../../../src/agent/resources/node-resources.js';
import { FakeProbe, fakeSnapshot } from '../../../../src/agent/probe/node-probe.js';
import { FakeClock } from '../../../../src/shared/clock.js';
import { captureLogger } from '../log-capture.js';
import { gridka, htcondor, SiteServer, vac, writeSide } from '../mjf/sites.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'vmp-alloc-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const clock = new FakeClock();
const nowSec = Math.floor(clock.now() / 1000);
const noCommands = async () => ({ exitCode: null, stdout: '', error: 'not run in this test' });

/** What the agent offers on a node the probe sees with `probeCores`, given these flags and environment. */
async function offered(env: Record<string, string>, probeCores: number, flags: Record<string, string> = {}) {
  const config = loadConfig({ flags: { stateDir: path.join(dir, 'state'), ...flags }, env });
  const probe = new FakeProbe(fakeSnapshot({ cores: probeCores, memoryMb: { total: 128_000, free: 120_000 } }));
  const { log } = captureLogger();
  const source = new NodeResources({ config, probe, log, startedAt: clock.now(), run: noCommands, cgroupRoot: path.join(dir, 'no-cgroup'), procSelfCgroup: path.join(dir, 'self'), clock });
  return (await source.init()).offered;
}

describe("the job's own allocation wins over machine-wide counts", () => {
  it('GridKa Grid Engine: allocated_CPU 8 (old name) and NSLOTS 8 over log_cores 32, and says so', async () => {
    const site = gridka(nowSec, { slots: 8, logCores: 32 });
    const machine = await writeSide(path.join(dir, 'etc-machinefeatures'), site.machine);
    const job = await writeSide(path.join(dir, 'tmp', `jobfeatures.${site.env.JOB_ID}`), site.job);
    const o = await offered({ ...site.env, MACHINEFEATURES: machine, JOBFEATURES: job }, 32);
    expect(o.cores).toMatchObject({
      value: 8,
      source: 'mjf',
      candidates: { mjf: 8, batch: 8, 'mjf-machine': 32, probe: 32 },
      origins: { mjf: '$JOBFEATURES/allocated_CPU', batch: 'NSLOTS', 'mjf-machine': '$MACHINEFEATURES/log_cores' },
    });
    expect(o.cores.reason).toContain("8 from mjf ($JOBFEATURES/allocated_CPU): the job's own allocation");
    expect(o.cores.reason).toContain('mjf-machine 32 ($MACHINEFEATURES/log_cores)');
    // its memory limit in the old unit (10^6 bytes)
    expect(o.memoryMb).toMatchObject({ total: Math.floor(2000e6 / 1048576), source: 'mjf', origins: { mjf: '$JOBFEATURES/mem_limit_MB' } });
  });

  it('Grid Engine without job features: NSLOTS over the machine-wide log_cores', async () => {
    const site = gridka(nowSec, { slots: 8, logCores: 32 });
    const machine = await writeSide(path.join(dir, 'mf'), site.machine);
    const o = await offered({ ...site.env, MACHINEFEATURES: machine }, 32);
    expect(o.cores).toMatchObject({ value: 8, source: 'batch', origins: { batch: 'NSLOTS' } });
    expect(o.cores.reason).toContain("the batch system's allocation for this job");
  });

  it('an HTCondor 4-CPU slot on a 16-core node: the slot ad’s Cpus over total_cpu 16', async () => {
    const site = htcondor(nowSec, { slotCpus: 4, nodeCpus: 16 });
    const machine = await writeSide(path.join(dir, 'mf'), site.machine);
    const job = await writeSide(path.join(dir, 'jf'), site.job);
    const ad = path.join(dir, 'execute', 'dir_4242', '.machine.ad');
    await writeSide(path.dirname(ad), {});
    await writeFile(ad, site.machineAd);
    const o = await offered({ MACHINEFEATURES: machine, JOBFEATURES: job, _CONDOR_MACHINE_AD: ad }, 16);
    expect(o.cores).toMatchObject({ value: 4, source: 'batch', candidates: { batch: 4, 'mjf-machine': 16, probe: 16 }, origins: { batch: '_CONDOR_MACHINE_AD Cpus' } });
    expect(o.memoryMb).toMatchObject({ total: 8192, source: 'batch' });
  });

  it('Slurm: SLURM_CPUS_ON_NODE over a machine-wide total_cpu', async () => {
    const machine = await writeSide(path.join(dir, 'mf'), { total_cpu: 64 });
    const o = await offered({ SLURM_JOB_ID: '77', SLURM_CPUS_ON_NODE: '2', MACHINEFEATURES: machine }, 64);
    expect(o.cores).toMatchObject({ value: 2, source: 'batch', origins: { batch: 'SLURM_CPUS_ON_NODE' } });
  });

  it('Vac over HTTP: allocated_cpu; jobslots 1 (one job slot, not one core) is never taken for cores', async () => {
    const site = vac(nowSec, { processors: 4 });
    await writeSide(path.join(dir, 'www', 'machinefeatures'), site.machine);
    await writeSide(path.join(dir, 'www', 'jobfeatures'), site.job);
    const server = await new SiteServer(path.join(dir, 'www'), false).start();
    try {
      const o = await offered({ MACHINEFEATURES: `${server.url}/machinefeatures`, JOBFEATURES: `${server.url}/jobfeatures` }, 4);
      expect(o.cores).toMatchObject({ value: 4, source: 'mjf', origins: { mjf: '$JOBFEATURES/allocated_cpu', 'mjf-machine': '$MACHINEFEATURES/total_cpu' } });
    } finally {
      await server.stop();
    }
  });

  it('machine-wide counts are the fallback when nothing describes the job, stronger than the probe; config wins over all', async () => {
    const machine = await writeSide(path.join(dir, 'mf'), { log_cores: 12, jobslots: 1 });
    const o = await offered({ MACHINEFEATURES: machine }, 16);
    expect(o.cores).toMatchObject({ value: 12, source: 'mjf-machine', origins: { 'mjf-machine': '$MACHINEFEATURES/log_cores' } });
    expect(o.cores.reason).toContain('nothing describes the job');
    const job = await writeSide(path.join(dir, 'jf'), { allocated_cpu: 6 });
    const flagged = await offered({ MACHINEFEATURES: machine, JOBFEATURES: job }, 16, { cores: '3' });
    expect(flagged.cores).toMatchObject({ value: 3, source: 'config', origins: { config: '--cores' } });
    expect(flagged.cores.reason).toContain('set by the operator');
  });
});

describe('parseMachineAd', () => {
  it('reads Cpus and Memory of a slot, not TotalCpus; a bad value is a problem', () => {
    expect(parseMachineAd('TotalCpus = 16.0\nCpus = 4\nMemory = 8192\nName = "slot1_3@wn"\n')).toEqual({ cores: 4, memoryMb: 8192, name: 'slot1_3@wn', problems: [] });
    expect(parseMachineAd('Cpus = 0.5\n').problems).toEqual(['machine ad Cpus = 0.5 is not a positive integer; ignored']);
  });
});
