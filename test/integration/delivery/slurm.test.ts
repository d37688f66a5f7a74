/**
 * The "PBS" job here is not PBS: Debian has no PBS/Torque server, so the
 * --system pbs script is submitted with Slurm's PBS-style qsub wrapper
 * (slurm-wlm-torque, see test/systems/pbs/setup.sh), which translates the
 * #PBS headers for sbatch and sets no PBS_* variables: the script falls back
 * to Slurm's, and the agent's PBS detection does not run. It checks that the
 * #PBS headers are accepted and the script runs. The PBS environment itself
 * (PBS_JOBID, PBS_NODEFILE, PBS_NUM_PPN, NCPUS, PBS_WALLTIME) is tested by
 * test/integration/pbs-job.test.ts with a job wrapper of its own. Both jobs
 * live in this one file: they share the Slurm daemons, which must not be
 * stopped by one while the other runs.
 *
 * A real single-node Slurm (munge, slurmctld, slurmd from Debian, set up by
 * test/systems/slurm/setup.sh): the job script from `vmpilot-server
 * batch-script --system slurm` is submitted with sbatch; the agent it fetches
 * registers, runs the server's queued payloads on the job's cores, halts when
 * idle, and Slurm records the job as completed.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, waitFor } from '../harness.js';
import { haltedPilot, makeBatchScript, queueWork, recordLines, snapshotDist, startServerFrom, systemScript } from './batch-harness.js';

describe('batch-script --system slurm, in a real Slurm', () => {
  const tmp = tempDir('vmpilot-slurm-test-');
  let server: { url: string; stop: () => Promise<unknown> };
  let snap: { server: string; manifest: string };
  let env: NodeJS.ProcessEnv;

  const slurm = (cmd: string, args: string[]) => execFileSync(cmd, args, { env: { ...env, TMPDIR: tmp.dir }, encoding: 'utf8' });
  /** scontrol's view of a job: JobState and ExitCode. */
  const jobInfo = (id: string) => {
    const line = slurm('scontrol', ['-o', 'show', 'job', id]);
    return { state: /JobState=(\S+)/.exec(line)?.[1], exit: /ExitCode=(\S+)/.exec(line)?.[1] };
  };
  const sbatch = (script: string) => {
    const file = path.join(tmp.dir, `job-${Date.now()}.sh`);
    writeFileSync(file, script, { mode: 0o755 });
    return slurm('sbatch', ['--parsable', file]).trim().split(';')[0]!;
  };
  const finished = (id: string) => waitFor(`slurm job ${id} to finish`, () => {
    const info = jobInfo(id);
    return info.state !== 'PENDING' && info.state !== 'RUNNING' && info.state !== 'COMPLETING' && info;
  }, 120_000);

  let pbsQsub = '';

  beforeAll(async () => {
    snap = snapshotDist(tmp.dir);
    const out = await systemScript('pbs/setup.sh');
    env = { ...process.env, SLURM_CONF: out.SLURM_CONF };
    pbsQsub = out.PBS_QSUB!;
  }, 300_000);
  afterAll(async () => {
    await server?.stop();
    await systemScript('slurm/teardown.sh');
    tmp.cleanup();
  }, 120_000);

  it('runs the queued payloads on the allocated cores, halts when idle, and the job completes', async () => {
    server = await startServerFrom(snap.server, path.join(tmp.dir, 'server.db'));
    const log = path.join(tmp.dir, 'record.log');
    const ids = await queueWork(server.url, log, 3);
    const output = path.join(tmp.dir, 'slurm-%j.out');
    const script = await makeBatchScript('slurm', server.url, [
      '--cores', '2', '--walltime', '600', '--drain-before', '60', '--idle-timeout', '3', '--grace', '5',
      '--output', output, '--cache-dir', path.join(tmp.dir, 'cache'), '--work-dir', tmp.dir,
    ], snap.server);
    expect(script).toMatch(/^#SBATCH --cpus-per-task=2$/m);

    const job = sbatch(script);
    const info = await finished(job);
    const jobOut = readFileSync(output.replace('%j', job), 'utf8');
    expect(info, jobOut).toEqual({ state: 'COMPLETED', exit: '0:0' });

    const { pilot, jobs } = await haltedPilot(server.url);
    expect(pilot.state).toBe('halted');
    expect(pilot.shutdownCode).toBe(300);
    // cores came from the allocation, the lifetime from the job's time limit
    expect(pilot.cores).toBe(2);
    expect(pilot.deadline).not.toBeNull();
    expect(jobs.filter((j) => ids.includes(j.id)).map((j) => j.state)).toEqual(['done', 'done', 'done']);
    expect(recordLines(log)).toHaveLength(3);
    // it ran the single executable it fetched, checked and cached
    expect(jobOut).toMatch(/agent \S+\/cache\/vmpilot-[0-9a-f]{64}, cores 2/);
  });

  it('refuses to run an agent whose sha256 is not the pinned one: the job fails with 15, no pilot registers', async () => {
    await server.stop();
    server = await startServerFrom(snap.server, path.join(tmp.dir, 'server2.db'));
    const output = path.join(tmp.dir, 'bad-%j.out');
    const script = await makeBatchScript('slurm', server.url, [
      '--agent-sha256', 'a'.repeat(64), '--walltime', '600', '--idle-timeout', '3', '--output', output, '--cache-dir', path.join(tmp.dir, 'cache2'), '--work-dir', tmp.dir,
    ], snap.server);
    const job = sbatch(script);
    const info = await finished(job);
    expect(info).toEqual({ state: 'FAILED', exit: '15:0' });
    expect(readFileSync(output.replace('%j', job), 'utf8')).toMatch(/checksum mismatch: vmpilot-linux-x64 has sha256 [0-9a-f]{64}, the manifest says a{64}; not running it/);
    const pilots = await fetch(`${server.url}/v1/pilots`, { headers: { authorization: 'Bearer test-admin-token-0123456789' } }).then((r) => r.json());
    expect(pilots).toEqual([]);
  });

  it("PBS headers on Slurm: the --system pbs script through Slurm's qsub wrapper (no PBS_* variables set) runs the payloads and ends with status 0", async () => {
    await server.stop();
    server = await startServerFrom(snap.server, path.join(tmp.dir, 'server3.db'));
    const log = path.join(tmp.dir, 'pbs-record.log');
    const ids = await queueWork(server.url, log, 2);
    const script = await makeBatchScript('pbs', server.url, [
      '--cores', '2', '--walltime', '600', '--idle-timeout', '3', '--grace', '5', '--cache-dir', path.join(tmp.dir, 'cache'), '--work-dir', tmp.dir,
    ], snap.server);
    expect(script).toMatch(/^#PBS -l nodes=1:ppn=2$/m);
    const file = path.join(tmp.dir, 'pbs-job.sh');
    writeFileSync(file, script, { mode: 0o755 });
    const job = execFileSync(pbsQsub, [file], { env: { ...env, TMPDIR: tmp.dir }, cwd: tmp.dir, encoding: 'utf8' }).trim();
    expect(job).toMatch(/^\d+$/);
    const info = await finished(job);
    const stderr = readFileSync(`${file}.e${job}`, 'utf8');
    expect(info, stderr).toEqual({ state: 'COMPLETED', exit: '0:0' });
    const { pilot, jobs } = await haltedPilot(server.url);
    expect(pilot.shutdownCode).toBe(300);
    expect(pilot.cores).toBe(2);
    expect(jobs.filter((j) => ids.includes(j.id)).map((j) => j.state)).toEqual(['done', 'done']);
    expect(recordLines(log)).toHaveLength(2);
  });
});
