import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
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
  it('refuses links to a sibling whose name starts with the destination\'s', () => {
    // "/srv/dest-evil" starts with "/srv/dest" but is not inside it
    expect(entryProblem(dest, { path: 'evil', type: 'SymbolicLink', linkpath: '../dest-evil' })).toBe('link "evil" -> "../dest-evil" points out of the destination');
    expect(entryProblem(dest, { path: 'sub/evil', type: 'SymbolicLink', linkpath: '../../dest-evil/x' })).toMatch(/points out of the destination/);
    expect(entryProblem(dest, { path: 'hl', type: 'Link', linkpath: '../dest-evil/x' })).toMatch(/points out of the destination/);
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

  it('refuses a link into a sibling directory sharing the destination\'s prefix, before writing anything', async () => {
    // beside dest: dest-evil, whose path starts with dest's
    const sibling = path.join(dir, 'dest-evil');
    mkdirSync(sibling);
    writeFileSync(path.join(sibling, 'marker'), 'untouched');
    // the archive: "evil" -> ../dest-evil, then "evil/owned" written through it
    mkdirSync(path.join(dir, 'through/evil'), { recursive: true });
    writeFileSync(path.join(dir, 'through/evil/owned'), 'written through the link');
    symlinkSync('../dest-evil', path.join(dir, 'src/evil'));
    const archive = path.join(dir, 'sibling.tar');
    execFileSync('tar', ['-cf', archive, 'evil'], { cwd: path.join(dir, 'src'), stdio: 'ignore' });
    execFileSync('tar', ['-rf', archive, 'evil/owned'], { cwd: path.join(dir, 'through'), stdio: 'ignore' });
    execFileSync('gzip', ['-n', archive]);
    const dest = path.join(dir, 'dest');
    await expect(safeUnpack(`${archive}.gz`, dest)).rejects.toThrow('refusing to unpack sibling.tar.gz: link "evil" -> "../dest-evil" points out of the destination');
    expect(existsSync(dest)).toBe(false);
    expect(readdirSync(sibling)).toEqual(['marker']);
    expect(readFileSync(path.join(sibling, 'marker'), 'utf8')).toBe('untouched');
  });

  it('refuses a file that is not a tar archive', async () => {
    writeFileSync(path.join(dir, 'junk.tgz'), 'this is not a tarball');
    await expect(safeUnpack(path.join(dir, 'junk.tgz'), path.join(dir, 'dest'))).rejects.toThrow(/not a readable tar archive|refusing/);
  });
});
