import { describe, expect, it } from 'vitest';
import { checkSpec } from '../../../../src/agent/bootstrap/spec.js';
import { runSetupCommands } from '../../../../src/agent/bootstrap/setup-commands.js';
import { systemCommandRunner } from '../../../../src/agent/executor/command-runner.js';

const shellRunner = systemCommandRunner({});
import { checkNode, type NodeFacts } from '../../../../src/agent/bootstrap/check-node.js';

const check = (doc: unknown) => checkSpec(doc, 'b.yaml', '/state/software', '/cache');
const sha = 'a'.repeat(64);

describe('checkSpec', () => {
  it('fills defaults and resolves relative destinations under the software directory', () => {
    expect(check(null)).toEqual({ check: { minDiskMb: 0, minMemoryMb: 0, paths: [] }, software: [], env: {}, setup: [], cacheDir: '/cache', setupTimeoutSec: 600 });
    const s = check({ software: [{ url: 'https://x.org/t.tgz', sha256: sha, dest: 'tool', unpack: true }], env: { A: 1 } });
    expect(s.software[0]).toEqual({ url: 'https://x.org/t.tgz', sha256: sha, dest: '/state/software/tool', unpack: true });
    expect(s.env).toEqual({ A: '1' });
  });

  it.each([
    [{ colour: 1 }, /colour: expected one of the keys/],
    [{ check: { minDiskMb: -1 } }, /check.minDiskMb: expected a whole number/],
    [{ check: { paths: ['relative'] } }, /check.paths: expected a list of absolute paths/],
    [{ software: [{ url: 'ftp://x', sha256: sha, dest: 'd' }] }, /software\[0\].url: expected an http\(s\) or file URL/],
    [{ software: [{ url: 'https://x', sha256: 'ABC', dest: 'd' }] }, /software\[0\].sha256: expected 64 lower-case hex digits/],
    [{ software: [{ url: 'https://x', sha256: sha, dest: '../../etc' }] }, /software\[0\].dest: expected an absolute path, or a relative one without/],
    [{ env: { 'BAD-NAME': 'x' } }, /env.BAD-NAME: expected a variable name/],
    [{ setup: 'echo hi' }, /setup: expected a list of shell commands/],
    [{ cacheDir: 'cache' }, /cacheDir: expected an absolute path/],
  ])('refuses %j naming the key', (doc, message) => {
    expect(() => check(doc)).toThrow(message);
  });
});

describe('checkNode', () => {
  const facts = (disk: number, mem: number, present: string[]): NodeFacts => ({
    freeDiskMb: async () => disk,
    availableMemoryMb: async () => mem,
    exists: async (p) => present.includes(p),
  });
  it('passes a node that has what is asked, and says what a small node lacks', async () => {
    await expect(checkNode({ dir: '/s', minDiskMb: 100, minMemoryMb: 100, paths: ['/cvmfs'] }, facts(200, 200, ['/cvmfs']))).resolves.toEqual({ freeDiskMb: 200, availableMemoryMb: 200 });
    await expect(checkNode({ dir: '/s', minDiskMb: 300, minMemoryMb: 0, paths: [] }, facts(200, 200, []))).rejects.toThrow('200 MB free under /s, need 300 MB');
    await expect(checkNode({ dir: '/s', minDiskMb: 0, minMemoryMb: 300, paths: [] }, facts(200, 200, []))).rejects.toThrow('200 MB memory available, need 300 MB');
    await expect(checkNode({ dir: '/s', minDiskMb: 0, minMemoryMb: 0, paths: ['/cvmfs', '/opt'] }, facts(1, 1, []))).rejects.toThrow('required paths missing: /cvmfs, /opt');
  });
});

describe('runSetupCommands (real sh)', () => {
  it('runs the commands in order with the environment and stops at the first failure, quoting its output', async () => {
    const o = { cwd: '/tmp', env: { PATH: '/usr/bin:/bin', WHO: 'setup' }, timeoutSec: 30 };
    await expect(runSetupCommands(['test "$WHO" = setup', 'true'], o, shellRunner)).resolves.toEqual({ ran: 2 });
    await expect(runSetupCommands(['true', 'echo broken >&2; exit 3', 'never'], o, shellRunner)).rejects.toThrow('setup command "echo broken >&2; exit 3" exited with 3: broken');
  });
  it('kills a command at its time limit', async () => {
    await expect(runSetupCommands(['sleep 30'], { cwd: '/tmp', env: { PATH: '/usr/bin:/bin' }, timeoutSec: 1 }, shellRunner)).rejects.toThrow('was killed (time limit 1 s)');
  });
});
