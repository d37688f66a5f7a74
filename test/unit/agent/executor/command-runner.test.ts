import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemCommandRunner } from '../../../../src/agent/executor/command-runner.js';

// Real commands (small sh scripts first on PATH), as squeue and qstat are run on a batch node.
describe('systemCommandRunner', () => {
  let bin: string;
  let env: Record<string, string>;
  const script = async (name: string, body: string) => {
    await writeFile(path.join(bin, name), `#!/bin/sh\n${body}\n`);
    await chmod(path.join(bin, name), 0o755);
  };
  beforeAll(async () => {
    bin = await mkdtemp(path.join(os.tmpdir(), 'vmp-cmd-'));
    env = { PATH: `${bin}:/usr/bin:/bin`, VMP_GIVEN: 'yes' };
    await script('ok', 'echo "args: $*"');
    await script('fails', 'echo partial; echo "no such job" >&2; exit 3');
    await script('env-dump', 'env');
    await script('reads-stdin', 'cat; echo done');
    await script('hangs', 'echo started; exec sleep 30');
    await script('floods', 'exec yes');
    await script('dies', 'kill -9 $$');
  });
  afterAll(async () => {
    await rm(bin, { recursive: true, force: true });
  });

  it('gives exit 0 and stdout, arguments passed as they are (no shell)', async () => {
    const r = await systemCommandRunner(env)(['ok', '-o', '%e', 'a b;c'], 5000);
    expect(r).toEqual({ exitCode: 0, stdout: 'args: -o %e a b;c\n' });
  });

  it('a failing command: its exit code, stdout and the start of stderr', async () => {
    const r = await systemCommandRunner(env)(['fails'], 5000);
    expect(r).toEqual({ exitCode: 3, stdout: 'partial\n', error: 'exit 3: no such job\n' });
  });

  it('runs with exactly the environment given, none of the agent’s', async () => {
    process.env.VMP_AGENT_ONLY = 'secret';
    try {
      const r = await systemCommandRunner(env)(['env-dump'], 5000);
      const vars = r.stdout.split('\n').filter(Boolean).map((l) => l.split('=')[0]);
      expect(vars).toContain('VMP_GIVEN');
      expect(vars).not.toContain('VMP_AGENT_ONLY');
      expect(vars).not.toContain('HOME');
    } finally {
      delete process.env.VMP_AGENT_ONLY;
    }
  });

  it('stdin is closed: a command that reads it gets EOF at once instead of hanging', async () => {
    const r = await systemCommandRunner(env)(['reads-stdin'], 10_000);
    expect(r).toEqual({ exitCode: 0, stdout: 'done\n' });
  });

  it('a command past its timeout is SIGKILLed and reported timed out, with no exit code', async () => {
    const r = await systemCommandRunner(env)(['hangs'], 300);
    expect(r).toEqual({ exitCode: null, stdout: '', error: 'timed out after 300 ms' });
  });

  it('a command printing without end is stopped at the output cap', async () => {
    const r = await systemCommandRunner(env)(['floods'], 20_000);
    expect(r.exitCode).toBeNull();
    expect(r.error).toMatch(/^floods printed more than \d+ bytes; stopped$/);
  });

  it('a command killed by a signal, a missing command, no command: no exit code and a reason', async () => {
    expect(await systemCommandRunner(env)(['dies'], 5000)).toEqual({ exitCode: null, stdout: '', error: 'dies was killed by SIGKILL' });
    const missing = await systemCommandRunner({ PATH: bin })(['squeue'], 5000);
    expect(missing.exitCode).toBeNull();
    expect(missing.error).toMatch(/squeue.*ENOENT/);
    expect(await systemCommandRunner(env)([], 5000)).toEqual({ exitCode: null, stdout: '', error: 'no command given' });
  });
});
