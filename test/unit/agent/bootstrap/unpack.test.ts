import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { archiveProblems, entryProblem, safeUnpack } from '../../../../src/agent/bootstrap/unpack.js';
import { rawTar } from '../../../security/tar.js';

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

describe('archiveProblems: links followed as the file system will', () => {
  const dest = '/srv/dest';
  it('accepts links that stay inside, through other links too', () => {
    expect(archiveProblems(dest, [
      { path: 'lib-1.2/x.so', type: 'File' },
      { path: 'lib', type: 'SymbolicLink', linkpath: 'lib-1.2' },
      { path: 'bin/x', type: 'SymbolicLink', linkpath: '../lib/x.so' },
      { path: 'here', type: 'SymbolicLink', linkpath: '.' },
      { path: 'again', type: 'SymbolicLink', linkpath: 'here/lib/../lib-1.2' },
    ])).toEqual([]);
  });
  it('refuses a link whose target climbs out once another link is followed, though it stays inside as written', () => {
    // "s/../x" is dest/x as written; with s -> "sub/.." ... and s -> "." it is the parent of dest
    expect(entryProblem(dest, { path: 't', type: 'SymbolicLink', linkpath: 's/../escaped' })).toBeNull();
    expect(archiveProblems(dest, [
      { path: 's', type: 'SymbolicLink', linkpath: '.' },
      { path: 't', type: 'SymbolicLink', linkpath: 's/../escaped' },
    ])).toEqual(['link "t" -> "s/../escaped" points out of the destination once its links are followed']);
    expect(archiveProblems(dest, [
      { path: 'a/b', type: 'SymbolicLink', linkpath: '..' },
      { path: 'h', type: 'Link', linkpath: 'a/b/../etc/shadow' },
    ])).toEqual(['link "h" -> "a/b/../etc/shadow" points out of the destination once its links are followed']);
  });
  it('refuses links that loop', () => {
    expect(archiveProblems(dest, [
      { path: 'x', type: 'SymbolicLink', linkpath: 'y' },
      { path: 'y', type: 'SymbolicLink', linkpath: 'x/z' },
    ])).toContain('link "x" -> "y" loops');
  });
});

describe('safeUnpack: what it unpacks, and what it leaves when it cannot', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'vmpilot-unpack2-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('clears setuid and setgid bits, keeps the rest of the mode', async () => {
    mkdirSync(path.join(dir, 'src/d'), { recursive: true });
    writeFileSync(path.join(dir, 'src/su'), '#!/bin/sh\n');
    chmodSync(path.join(dir, 'src/su'), 0o6755);
    chmodSync(path.join(dir, 'src/d'), 0o2775);
    execFileSync('tar', ['-czf', path.join(dir, 'a.tgz'), '-C', path.join(dir, 'src'), 'su', 'd']);
    const dest = path.join(dir, 'dest');
    await safeUnpack(path.join(dir, 'a.tgz'), dest);
    expect(statSync(path.join(dest, 'su')).mode & 0o7777).toBe(0o755 & ~process.umask());
    expect(statSync(path.join(dest, 'd')).mode & 0o6000).toBe(0);
  });

  it('refuses a link that escapes through another link, and writes nothing', async () => {
    writeFileSync(path.join(dir, 'evil.tar'), rawTar([
      { name: 's', type: '2', link: '.' },
      { name: 't', type: '2', link: 's/../escaped' },
    ]));
    const dest = path.join(dir, 'dest');
    await expect(safeUnpack(path.join(dir, 'evil.tar'), dest)).rejects.toThrow(/refusing to unpack evil.tar: link "t" -> "s\/..\/escaped" points out of the destination once its links are followed/);
    expect(readdirSync(dir)).toEqual(['evil.tar']);
  });

  it('an archive that breaks half-way (a hard link to nothing) leaves no partial tree', async () => {
    writeFileSync(path.join(dir, 'half.tar'), rawTar([
      { name: 'a', type: '0', body: 'first' },
      { name: 'b', type: '0', body: 'second' },
      { name: 'c', type: '1', link: 'missing' },
    ]));
    const dest = path.join(dir, 'dest');
    await expect(safeUnpack(path.join(dir, 'half.tar'), dest)).rejects.toThrow(/cannot unpack half.tar: .*ENOENT/);
    expect(readdirSync(dir)).toEqual(['half.tar']);
  });
});
