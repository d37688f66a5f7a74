/**
 * The agent's PBS/Torque path in the environment a real Torque job has, with
 * no batch system installed: test/fixtures/pbs/pbs-job.sh stands for the
 * execution host (pbs_mom) and gives the job what Torque gives it (PBS_JOBID,
 * PBS_NODEFILE, PBS_NUM_PPN, NCPUS, PBS_WALLTIME, PBS_O_WORKDIR, a clean
 * environment, output in NAME.oSEQ). Debian has no PBS server; the Slurm
 * test's "PBS" job goes through Slurm's qsub wrapper, which sets none of
 * these variables (test/integration/delivery/slurm.test.ts).
 *
 * The job gets 1 core of this 2-core node and a wall time (300 s) shorter
 * than the script's own lifetime (600 s): the pilot's cores and deadline on
 * the server can only come from the PBS variables.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PilotView } from '../../src/protocol/index.js';
import { makeBatchScript, queueWork, recordLines } from './delivery/batch-harness.js';
import { AGENT, FIXTURES, PILOT_TOKEN, admin, killAll, startServer, tempDir, type Server } from './harness.js';

const PBS_JOB = path.join(FIXTURES, 'pbs/pbs-job.sh');
const WALLTIME_SEC = 300;

/** Run `script` as the Torque job `jobId` with `ppn` cores; its status, output and when it ran. */
async function runJob(jobId: string, ppn: number, workDir: string, script: string) {
  const file = path.join(workDir, `${jobId}.sh`);
  writeFileSync(file, script, { mode: 0o755 });
  const startedAt = Date.now();
  const exit = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    execFile('/bin/bash', [PBS_JOB, jobId, String(ppn), String(WALLTIME_SEC), workDir, file], { timeout: 120_000 }, (err, _stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stderr }),
    );
  });
  const name = /^#PBS -N (\S+)/m.exec(script)?.[1] ?? `${jobId}.sh`;
  const output = path.join(workDir, `${name}.o${jobId.split('.')[0]}`);
  return { ...exit, startedAt, endedAt: Date.now(), output: existsSync(output) ? readFileSync(output, 'utf8') : `(no ${output}) ${exit.stderr}` };
}

/** The agent's `resources` log line from a job's output. */
function resourcesLine(output: string): { cores: { value: number; source: string }; deadline: number; deadlineSource: string } {
  const line = output.split('\n').find((l) => l.includes('"msg":"resources"'));
  if (!line) throw new Error(`no resources line in the job output:\n${output}`);
  return JSON.parse(line);
}

describe('a PBS/Torque job environment (the job wrapper of the test, no batch system)', () => {
  const tmp = tempDir('vmpilot-pbs-job-');
  let server: Server;
  let api: ReturnType<typeof admin>;
  beforeAll(async () => {
    expect(cpus().length, 'the job must get fewer cores than the node has').toBeGreaterThan(1);
    server = await startServer(path.join(tmp.dir, 'server.db'));
    api = admin(server.url);
  });
  afterAll(async () => {
    await server?.stop();
    killAll();
    tmp.cleanup();
  });

  /** The pilot that registered since `known` pilots, once it halted. */
  const newPilot = async (known: number): Promise<PilotView> => {
    const pilots = await api.pilots();
    expect(pilots).toHaveLength(known + 1);
    return pilots[known]!;
  };

  it('the --system pbs job script runs on the cores and wall time of the job, in a directory named by its id', async () => {
    const known = (await api.pilots()).length;
    const log = path.join(tmp.dir, 'script.log');
    const ids = await queueWork(server.url, log, 2);
    const script = await makeBatchScript('pbs', server.url, [
      // the job gets 300 s: the default drain (300 s before its end) would drain it at once
      '--agent', 'bundle', '--cores', '1', '--walltime', '600', '--drain-before', '60', '--idle-timeout', '3', '--grace', '2',
      '--cache-dir', path.join(tmp.dir, 'cache'), '--work-dir', tmp.dir,
    ]);
    const job = await runJob('4242.pbs.test.invalid', 1, tmp.dir, script);
    expect(job.code, job.output).toBe(0);
    // the script read the job's id (without the server's name) and PBS_NUM_PPN
    expect(job.output).toMatch(/^vmpilot job 4242: agent .*, cores 1, lifetime 600s$/m);
    expect(existsSync(path.join(tmp.dir, 'vmpilot-job-4242', 'state', 'state.json'))).toBe(true);
    // the agent read PBS_WALLTIME: its deadline is the job's end (300 s), not the script's lifetime (600 s)
    const resources = resourcesLine(job.output);
    expect(resources.deadlineSource).toBe('batch');
    const pilot = await newPilot(known);
    expect(pilot).toMatchObject({ state: 'halted', shutdownCode: 300, cores: 1 });
    expect(pilot.deadline).toBe(resources.deadline);
    expect(pilot.deadline!).toBeGreaterThanOrEqual(job.startedAt + WALLTIME_SEC * 1000);
    expect(pilot.deadline!).toBeLessThanOrEqual(job.endedAt + WALLTIME_SEC * 1000);
    const jobs = (await api.jobs()).filter((j) => ids.includes(j.id));
    expect(jobs.map((j) => [j.state, j.allocatedCores]), `${JSON.stringify(jobs)}\n${job.output}`).toEqual([['done', 1], ['done', 1]]);
    expect(recordLines(log).map((l) => l.split(' ')[1])).toEqual(['1', '1']);
  });

  it('the agent alone, given no --cores or --lifetime, takes its cores from NCPUS/PBS_NUM_PPN and its deadline from PBS_WALLTIME', async () => {
    const known = (await api.pilots()).length;
    const log = path.join(tmp.dir, 'direct.log');
    const ids = await queueWork(server.url, log, 1);
    const state = path.join(tmp.dir, 'direct-state');
    const script = [
      '#!/bin/bash',
      '#PBS -N direct',
      `VMPILOT_PILOT_TOKEN=${PILOT_TOKEN} exec node ${AGENT} run --server ${server.url} --isolation none --halt exit --state-dir ${state} --idle-timeout 3 --grace 2`,
      '',
    ].join('\n');
    const job = await runJob('4243.pbs.test.invalid', 1, tmp.dir, script);
    expect(job.code, job.output).toBe(0);
    const resources = resourcesLine(job.output);
    expect(resources.cores).toMatchObject({ value: 1, source: 'batch' });
    expect(resources.deadlineSource).toBe('batch');
    const pilot = await newPilot(known);
    expect(pilot).toMatchObject({ state: 'halted', shutdownCode: 300, cores: 1 });
    expect(pilot.deadline!).toBeGreaterThanOrEqual(job.startedAt + WALLTIME_SEC * 1000);
    expect(pilot.deadline!).toBeLessThanOrEqual(job.endedAt + WALLTIME_SEC * 1000);
    const ran = await api.job(ids[0]!);
    expect(ran.state, `${JSON.stringify(ran)}\n${job.output}`).toBe('done');
  });
});
