/**
 * `vmpilot-server user-data` checked by Debian's cloud-init itself
 * (`cloud-init schema --config-file`, installed by
 * test/systems/cloud-init/setup.sh), for each option; and bad options give a
 * clear error and no user-data at all.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { PILOT_TOKEN, ROOT, SERVER, runCommand, tempDir } from '../harness.js';
import { systemScript } from './batch-harness.js';

const run = promisify(execFile);

describe('user-data, validated by cloud-init', () => {
  const tmp = tempDir('vmpilot-cloud-init-test-');
  let cloudInit = '';
  beforeAll(async () => {
    cloudInit = (await systemScript('cloud-init/setup.sh')).CLOUD_INIT!;
  }, 300_000);
  afterAll(() => tmp.cleanup());

  const userData = (args: string[]) => runCommand([SERVER, 'user-data', '--server', 'http://10.0.2.100:8080', '--pilot-token', PILOT_TOKEN, ...args]);
  /** cloud-init's verdict on a file. */
  const schema = async (text: string) => {
    const file = path.join(tmp.dir, `ud-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, text);
    try {
      const r = await run(cloudInit, ['schema', '--config-file', file]);
      return { code: 0, out: r.stdout + r.stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, out: e.stdout + e.stderr };
    }
  };

  const variants: Record<string, string[]> = {
    defaults: [],
    'cores and lifetime': ['--cores', '4', '--lifetime', '7200', '--idle-timeout', '60', '--grace', '10'],
    'halt exit': ['--halt', 'exit'],
    'halt command': ['--halt', 'echo halted >> /var/log/vmpilot-halt.log; poweroff'],
    'packages and ssh keys': ['--package', 'curl', '--package', 'ca-certificates', '--ssh-key', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake user@host'],
    'pinned checksum': ['--agent-sha256', 'f'.repeat(64)],
  };

  it.each(Object.entries(variants))('is valid cloud-config with %s', async (_name, args) => {
    const r = await userData(args);
    expect(r.code, r.stderr).toBe(0);
    const verdict = await schema(r.stdout);
    expect(verdict, verdict.out).toMatchObject({ code: 0 });
    expect(verdict.out).toMatch(/Valid cloud-config/);
    const doc = parse(r.stdout) as { write_files: { path: string; permissions: string }[] };
    expect(doc.write_files.filter((f) => f.path.startsWith('/etc/vmpilot/')).map((f) => f.permissions)).toEqual(['0600', '0600']);
  });

  it('the template in cloud-init/ is valid cloud-config', async () => {
    const verdict = await schema((await import('node:fs')).readFileSync(path.join(ROOT, 'cloud-init/vmpilot.yaml'), 'utf8'));
    expect(verdict.out).toMatch(/Valid cloud-config/);
  });

  it('catches what cloud-init would catch: the validator is not a rubber stamp', async () => {
    const r = await userData([]);
    const broken = r.stdout.replace('permissions: "0600"', 'permissions: [0600]');
    expect((await schema(broken)).code).not.toBe(0);
  });

  it.each([
    [['--cores', 'two'], /--cores "two": expected a whole number/],
    [['--halt', ''], /--halt/],
    [['--package', 'curl;reboot'], /--package "curl;reboot"/],
    [['--ssh-key', 'hello'], /--ssh-key/],
    [['--agent-sha256', 'xyz'], /--agent-sha256 "xyz": expected 64 lower-case hex digits/],
    [['--server', 'file:///etc/passwd'], /--server "file:\/\/\/etc\/passwd": expected an http/],
  ])('refuses %j with a clear error, exit 2 and no output', async (args, message) => {
    const r = await userData(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });
});
