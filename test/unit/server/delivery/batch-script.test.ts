import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BATCH_SYSTEMS, batchScript } from '../../../../src/server/delivery/batch-script.js';
import { isVmpilotError } from '../../../../src/shared/errors.js';
import { batchOptions, unstamped } from './examples.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

const usageError = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    expect(isVmpilotError(err, 'VMP_USAGE'), String(err)).toBe(true);
    return (err as Error).message;
  }
  throw new Error('no error');
};

describe('batchScript', () => {
  it.each(BATCH_SYSTEMS)('writes a %s script that bash accepts, with the allocation in its header', (system) => {
    const script = batchScript(batchOptions({ system, cores: 8, walltimeSec: 7200, drainSec: 600, queue: 'short' }));
    execFileSync('bash', ['-n'], { input: script });
    expect(script.startsWith('#!/bin/bash\n')).toBe(true);
    const header = { slurm: /#SBATCH --cpus-per-task=8\n#SBATCH --time=02:00:00\n#SBATCH --signal=B:USR1@600\n#SBATCH --partition=short/, pbs: /#PBS -l nodes=1:ppn=8\n#PBS -l walltime=02:00:00/, sge: /#\$ -pe smp 8\n#\$ -l h_rt=02:00:00,s_rt=01:50:00/ };
    expect(script).toMatch(header[system]);
    // the agent runs in batch mode: halt exit, the walltime as its lifetime
    expect(script).toMatch(/run --server "\$VMPILOT_SERVER" --halt exit .*--lifetime "\$lifetime"/s);
    expect(script).toContain(`vmpilot_agent_sha256='${'1'.repeat(64)}'`);
  });

  it('puts the job state under --work-dir, else $TMPDIR', () => {
    expect(batchScript(batchOptions({ workDir: '/scratch/pilots' }))).toContain(`work='/scratch/pilots'/vmpilot-job-$job_id`);
    expect(batchScript(batchOptions())).toContain('work="${TMPDIR:-/tmp}/vmpilot-job-$job_id"');
  });

  it('quotes the token for the shell and never puts it on a command line', () => {
    const script = batchScript(batchOptions({ token: 'abc/def+ghi=jkl' }));
    expect(script).toContain("export VMPILOT_PILOT_TOKEN='abc/def+ghi=jkl'");
    expect(script).not.toMatch(/--token/);
  });

  it('names the bad option instead of writing a bad script', () => {
    expect(usageError(() => batchScript(batchOptions({ system: 'lsf' })))).toBe('--system "lsf": expected one of slurm, pbs, sge');
    expect(usageError(() => batchScript(batchOptions({ server: 'ftp://x' })))).toMatch(/^--server "ftp:\/\/x": expected an http/);
    expect(usageError(() => batchScript(batchOptions({ token: undefined })))).toMatch(/^--pilot-token/);
    expect(usageError(() => batchScript(batchOptions({ token: "it's" })))).toMatch(/^--pilot-token/);
    expect(usageError(() => batchScript(batchOptions({ cores: 0 })))).toBe('--cores 0: expected a whole number from 1 to 4096');
    expect(usageError(() => batchScript(batchOptions({ walltimeSec: 600, drainSec: 600 })))).toMatch(/^--drain-before 600: expected a whole number from 0 to 540/);
    expect(usageError(() => batchScript(batchOptions({ queue: 'a b' })))).toMatch(/^--queue "a b"/);
    expect(usageError(() => batchScript(batchOptions({ output: 'out.log' })))).toMatch(/^--output "out.log": expected an absolute path/);
    expect(usageError(() => batchScript(batchOptions({ cacheDir: '/tmp/$(rm -rf ~)' })))).toMatch(/^--cache-dir/);
  });

  it.each(BATCH_SYSTEMS)('bootstrap/vmpilot-%s.sh is what the generator writes for the placeholder values', (system) => {
    const file = path.join(ROOT, 'bootstrap', `vmpilot-${system}.sh`);
    const expected = batchScript(batchOptions({ system }));
    expect(unstamped(readFileSync(file, 'utf8')), `regenerate ${file}: see bootstrap/README.md`).toBe(unstamped(expected));
  });
});
