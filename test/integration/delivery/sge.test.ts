/**
 * A real single-node Grid Engine (sge_qmaster, sge_execd from Debian, set up
 * by test/systems/sge/setup.sh): the job script from `vmpilot-server
 * batch-script --system sge` is submitted with qsub; the agent it fetches
 * registers, runs the server's queued payloads on the job's slots, halts when
 * idle, and Grid Engine's accounting records the job as ended with status 0.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, waitFor } from '../harness.js';
import { haltedPilot, makeBatchScript, queueWork, recordLines, snapshotDist, startServerFrom, systemScript } from './batch-harness.js';

describe('batch-script --system sge, in a real Grid Engine', () => {
  const tmp = tempDir('vmpilot-sge-test-');
  let server: { url: string; stop: () => Promise<unknown> };
  let snap: { server: string; manifest: string };
  let env: NodeJS.ProcessEnv;

  const sge = (cmd: string, args: string[]) => execFileSync(cmd, args, { env, cwd: tmp.dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const qsub = (script: string, output: string) => {
    const file = path.join(tmp.dir, `job-${Date.now()}.sh`);
    writeFileSync(file, script, { mode: 0o755 });
    return sge('qsub', ['-terse', '-o', output, file]).trim();
  };
  /** qacct's record of an ended job: failed and exit_status. */
  const accounted = (id: string) =>
    waitFor(`grid engine job ${id} in the accounting`, () => {
      const text = sge('qacct', ['-j', id]);
      const failed = /^failed\s+(\d+)/m.exec(text)?.[1];
      const exit = /^exit_status\s+(\d+)/m.exec(text)?.[1];
      return failed !== undefined && exit !== undefined && { failed: Number(failed), exitStatus: Number(exit) };
    }, 180_000);

  beforeAll(async () => {
    snap = snapshotDist(tmp.dir);
    const out = await systemScript('sge/setup.sh');
    env = { ...process.env, SGE_ROOT: out.SGE_ROOT, SGE_CELL: out.SGE_CELL };
  }, 300_000);
  afterAll(async () => {
    await server?.stop();
    await systemScript('sge/teardown.sh');
    tmp.cleanup();
  }, 120_000);

  it('runs the queued payloads on the job slots, halts when idle, and the job ends with status 0', async () => {
    server = await startServerFrom(snap.server, path.join(tmp.dir, 'server.db'));
    const log = path.join(tmp.dir, 'record.log');
    const ids = await queueWork(server.url, log, 3);
    const output = path.join(tmp.dir, 'sge.out');
    const script = await makeBatchScript('sge', server.url, [
      '--cores', '2', '--walltime', '600', '--drain-before', '60', '--idle-timeout', '3', '--grace', '5',
      '--cache-dir', path.join(tmp.dir, 'cache'), '--work-dir', tmp.dir,
    ], snap.server);
    expect(script).toMatch(/^#\$ -pe smp 2$/m);
    expect(script).toMatch(/^#\$ -l h_rt=00:10:00,s_rt=00:09:00$/m);

    const job = qsub(script, output);
    const acct = await accounted(job);
    const jobOut = readFileSync(output, 'utf8');
    expect(acct, jobOut).toEqual({ failed: 0, exitStatus: 0 });

    const { pilot, jobs } = await haltedPilot(server.url);
    expect(pilot.state).toBe('halted');
    expect(pilot.shutdownCode).toBe(300);
    expect(pilot.cores).toBe(2);
    expect(jobs.filter((j) => ids.includes(j.id)).map((j) => j.state)).toEqual(['done', 'done', 'done']);
    expect(recordLines(log)).toHaveLength(3);
    expect(jobOut).toMatch(/agent \S+\/cache\/vmpilot-[0-9a-f]{64}, cores 2/);
  });
});
