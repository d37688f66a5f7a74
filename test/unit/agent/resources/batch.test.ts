import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchAllocation, batchEndTime, parseDuration, parseQstatHrt, parseSqueueEnd } from '../../../../src/agent/resources/batch.js';
import { systemCommandRunner } from '../../../../src/agent/executor/command-runner.js';

const fixtures = path.resolve(__dirname, '../../../fixtures/agent/batch');

/** A recorded job environment (KEY=value lines). */
async function recorded(name: string): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const line of (await readFile(path.join(fixtures, name), 'utf8')).split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line);
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}

describe('batchAllocation from recorded environments', () => {
  it('Slurm: job id and SLURM_CPUS_ON_NODE', async () => {
    expect(batchAllocation(await recorded('slurm.env'))).toEqual({ system: 'slurm', jobId: '17', cores: 2, memoryMb: null, wallSec: null, problems: [] });
  });
  it('PBS/Torque: job id, PBS_NUM_PPN (or NCPUS, which wins) and the walltime', async () => {
    const env = await recorded('pbs.env');
    expect(batchAllocation(env)).toEqual({ system: 'pbs', jobId: '1234.pbs.example.org', cores: 4, memoryMb: null, wallSec: 5400, problems: [] });
    expect(batchAllocation({ ...env, NCPUS: '8', PBS_WALLTIME: '01:00:00' })).toMatchObject({ cores: 8, wallSec: 3600 });
  });
  it('Grid Engine: JOB_ID and NSLOTS', async () => {
    expect(batchAllocation(await recorded('sge.env'))).toEqual({ system: 'sge', jobId: '3', cores: 2, memoryMb: null, wallSec: null, problems: [] });
  });
  it('outside a batch job: null', () => {
    expect(batchAllocation({ PATH: '/bin', JOB_ID: '5' })).toBeNull();
  });
  it('a bad value gives a problem naming it and no cores, never an error', async () => {
    const a = batchAllocation({ ...(await recorded('slurm.env')), SLURM_CPUS_ON_NODE: 'two' });
    expect(a).toMatchObject({ system: 'slurm', cores: null, problems: ['SLURM_CPUS_ON_NODE="two" is not a positive integer; ignored'] });
    const p = batchAllocation({ PBS_JOBID: '1', PBS_NUM_PPN: '0', PBS_WALLTIME: 'forever' });
    expect(p).toMatchObject({ cores: null, wallSec: null });
    expect(p!.problems).toHaveLength(2);
  });
});

describe('parsers', () => {
  it('durations', () => {
    expect(parseDuration('300')).toBe(300);
    expect(parseDuration('00:05:00')).toBe(300);
    expect(parseDuration('2:00')).toBe(120);
    expect(parseDuration('soon')).toBeNull();
  });
  it('squeue %e end time (local time) and its non-answers', () => {
    expect(parseSqueueEnd('2030-01-02T03:04:05\n')).toBe(new Date(2030, 0, 2, 3, 4, 5).getTime());
    expect(parseSqueueEnd('N/A\n')).toBeNull();
    expect(parseSqueueEnd('')).toBeNull();
  });
  it('qstat -j h_rt', async () => {
    expect(parseQstatHrt(await readFile(path.join(fixtures, 'qstat-j.txt'), 'utf8'))).toBe(300);
    expect(parseQstatHrt('hard resource_list:  mem_free=1G,h_rt=01:00:00')).toBe(3600);
    expect(parseQstatHrt('job_number: 3')).toBeNull();
  });
});

describe('batchEndTime through real commands first on PATH', () => {
  let bin: string;
  let env: Record<string, string>;
  beforeAll(async () => {
    bin = await mkdtemp(path.join(os.tmpdir(), 'vmp-bin-'));
    await writeFile(
      path.join(bin, 'squeue'),
      `#!/bin/sh\necho "$@" > "${bin}/squeue.args"\ncase "$3" in 17) echo 2030-01-02T03:04:05;; 18) exec sleep 30;; *) echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1;; esac\n`,
    );
    await writeFile(path.join(bin, 'qstat'), `#!/bin/sh\ncat "${fixtures}/qstat-j.txt"\n`);
    await chmod(path.join(bin, 'squeue'), 0o755);
    await chmod(path.join(bin, 'qstat'), 0o755);
    env = { PATH: `${bin}:/usr/bin:/bin` };
  });
  afterAll(async () => {
    await rm(bin, { recursive: true, force: true });
  });

  it('Slurm asks `squeue -h -j ID -o %e`', async () => {
    const end = await batchEndTime((batchAllocation(await recorded('slurm.env')))!, systemCommandRunner(env), 0);
    expect(end).toEqual({ at: new Date(2030, 0, 2, 3, 4, 5).getTime() });
    expect((await readFile(path.join(bin, 'squeue.args'), 'utf8')).trim()).toBe('-h -j 17 -o %e');
  });
  it('a failing or hanging squeue gives no end time and a problem, within the timeout', async () => {
    const run = systemCommandRunner(env);
    const bad = await batchEndTime({ system: 'slurm', jobId: '99', cores: 1, memoryMb: null, wallSec: null, problems: [] }, run, 0);
    expect(bad.at).toBeNull();
    expect(bad.problem).toContain('Invalid job id');
    const hung = await run(['squeue', '-h', '-j', '18', '-o', '%e'], 300);
    expect(hung).toMatchObject({ exitCode: null, error: 'timed out after 300 ms' });
    const missing = await systemCommandRunner({ PATH: '/nonexistent' })(['squeue'], 1000);
    expect(missing.exitCode).toBeNull();
  });
  it('Grid Engine adds h_rt from `qstat -j` to the start; PBS adds PBS_WALLTIME', async () => {
    const run = systemCommandRunner(env);
    expect(await batchEndTime((batchAllocation(await recorded('sge.env')))!, run, 1_000_000)).toEqual({ at: 1_300_000 });
    expect(await batchEndTime((batchAllocation(await recorded('pbs.env')))!, run, 1_000_000)).toEqual({ at: 1_000_000 + 5_400_000 });
  });
});
