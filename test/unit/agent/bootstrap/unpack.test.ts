import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { entryProblem, safeUnpack } from '../../../../src/agent/bootstrap/unpack.js';

describe('entryProblem', () => {
  const dest = '/srv/dest';
  it('accepts plain files, directories and links that stay inside', () => {
    expect(entryProblem(dest, { path: 'bin/tool', type: 'File' })).toBeNull();
    expect(entryProblem(dest, { path: 'lib/', type: 'Directory' })).toBeNull();
    expect(entryProblem(dest, { path: 'lib/current', type: 'SymbolicLink', linkpath: '../lib-1.2' })).toBeNull();
    expect(entryProblem(dest, { path: 'bin/alias', type: 'Link', linkpath: 'bin/tool' })).toBeNull();
  });
  it('refuses absolute paths, "..", links out and devices, naming the entry', () => {
    expect(entryProblem(dest, { path: '/etc/cron.d/x', type: 'File' })).toBe('"/etc/cron.d/x" has an absolute path');
    expect(entryProblem(dest, { path: 'a/../../x', type: 'File' })).toBe('"a/../../x" has a ".." component');
    expect(entryProblem(dest, { path: 'up', type: 'SymbolicLink', linkpath: '../../etc' })).toBe('link "up" -> "../../etc" points out of the destination');
    expect(entryProblem(dest, { path: 'pw', type: 'SymbolicLink', linkpath: '/etc/passwd' })).toBe('link "pw" -> "/etc/passwd" is absolute');
    expect(entryProblem(dest, { path: 'hl', type: 'Link', linkpath: '../outside' })).toMatch(/points out/);
    expect(entryProblem(dest, { path: 'null', type: 'CharacterDevice' })).toBe('"null" is a CharacterDevice');
  });
});

describe('safeUnpack (real tar archives)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'vmpilot-unpack-'));
    mkdirSync(path.join(dir, 'src/sub'), { recursive: true });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const tarOf = (name: string, args: string[], cwd = path.join(dir, 'src')) => {
    const file = path.join(dir, name);
    execFileSync('tar', ['-czf', file, ...args], { cwd, stdio: 'ignore' });
    return file;
  };

  it('unpacks a good archive, links included', async () => {
    writeFileSync(path.join(dir, 'src/sub/tool'), '#!/bin/sh\necho ok\n', { mode: 0o755 });
    symlinkSync('sub/tool', path.join(dir, 'src/tool'));
    const archive = tarOf('good.tgz', ['sub', 'tool']);
    const dest = path.join(dir, 'dest');
    expect(await safeUnpack(archive, dest)).toBe(3);
    expect(readFileSync(path.join(dest, 'sub/tool'), 'utf8')).toContain('echo ok');
    expect(readlinkSync(path.join(dest, 'tool'))).toBe('sub/tool');
  });

  it.each([
    ['a symlink out of the destination', () => symlinkSync('/etc/passwd', path.join(dir, 'src/pw')), () => ['pw'], /link "pw" -> "\/etc\/passwd" is absolute/],
    ['a relative symlink that climbs out', () => symlinkSync('../../../../etc', path.join(dir, 'src/up')), () => ['up'], /link "up" -> "..\/..\/..\/..\/etc" points out/],
    ['an absolute member name', () => writeFileSync(path.join(dir, 'abs-victim'), 'x'), () => ['-P', path.join(dir, 'abs-victim')], /has an absolute path/],
    ['a ".." member name', () => writeFileSync(path.join(dir, 'dotdot-victim'), 'x'), () => ['-P', '../dotdot-victim'], /has a "\.\." component/],
  ])('refuses %s and writes nothing', async (_what, make, args, message) => {
    make();
    const archive = tarOf('evil.tgz', (args as () => string[])());
    const dest = path.join(dir, 'dest');
    await expect(safeUnpack(archive, dest)).rejects.toThrow(message as RegExp);
    expect(existsSync(dest)).toBe(false);
  });

  it('refuses a file that is not a tar archive', async () => {
    writeFileSync(path.join(dir, 'junk.tgz'), 'this is not a tarball');
    await expect(safeUnpack(path.join(dir, 'junk.tgz'), path.join(dir, 'dest'))).rejects.toThrow(/not a readable tar archive|refusing/);
  });
});
