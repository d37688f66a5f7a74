import { mkdtemp, mkdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dirsToRemove, pruneEndedDirs } from '../../../../src/agent/executor/payload-dirs.js';
import { collectResult } from '../../../../src/agent/executor/payload-runner.js';
import { createProcessRunner } from '../../../../src/agent/executor/process-runner.js';
import { truncationNote } from '../../../../src/agent/executor/output-pump.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'vmp-pump-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const runner = createProcessRunner({ sampleMs: 100, cgroupRoot: null });
const spec = (command: string[], stdoutPath: string, stderrPath: string) => ({ command, cwd: dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, stdoutPath, stderrPath });

describe('the output pump', () => {
  it('passes output through to the files, and says nothing was dropped', async () => {
    const s = spec(['sh', '-c', 'echo out; echo err >&2; head -c 300000 /dev/zero | tr "\\0" y'], path.join(dir, 'stdout'), path.join(dir, 'stderr'));
    const p = await runner.start(s);
    const exit = await p.exited;
    expect(exit).toMatchObject({ exitCode: 0, signal: null });
    expect(exit.outputTruncated).toBeUndefined();
    const out = await readFile(s.stdoutPath, 'utf8');
    expect(out.startsWith('out\n')).toBe(true);
    expect(out.length).toBe(4 + 300000);
    expect(await readFile(s.stderrPath, 'utf8')).toBe('err\n');
  });

  it('a full disk (/dev/full): the payload writes on without an error and ends 0; the report says its output was truncated', async () => {
    // tr stops with "write error" and status 1 when its own writes fail: here they never do
    const s = spec(['sh', '-c', 'head -c 2000000 /dev/zero | tr "\\0" x && echo finished > marker'], '/dev/full', path.join(dir, 'stderr'));
    const p = await runner.start(s);
    const exit = await p.exited;
    expect(exit).toMatchObject({ exitCode: 0, signal: null, outputTruncated: 'output truncated: no space left on device' });
    expect(await readFile(path.join(dir, 'marker'), 'utf8')).toBe('finished\n');
    const result = await collectResult(s, exit);
    expect(result.message).toBe('output truncated: no space left on device');
    expect(result.outputTail).toMatch(/\[vmpilot: output truncated: no space left on device\]$/);
    // with another reason for the end, both are said
    expect((await collectResult(s, exit, 'stopped: drain')).message).toBe('stopped: drain; output truncated: no space left on device');
  });

  it('lives outside the payload tree: output written just before a SIGKILL of the whole tree still reaches the file', async () => {
    const s = spec(['sh', '-c', 'echo last-words; sleep 30'], path.join(dir, 'stdout'), path.join(dir, 'stderr'));
    const p = await runner.start(s);
    const read = () => readFile(s.stdoutPath, 'utf8').catch(() => '');
    for (let i = 0; i < 250 && !(await read()).includes('last-words'); i++) await new Promise((r) => setTimeout(r, 20));
    p.signalGroup('SIGKILL');
    const exit = await p.exited;
    expect(exit.signal).toBe('SIGKILL');
    expect(await readFile(s.stdoutPath, 'utf8')).toBe('last-words\n');
  });

  it('names each reason a pump gives', () => {
    expect(truncationNote(0)).toBeNull();
    expect(truncationNote(null)).toBeNull();
    expect(truncationNote(3)).toBe('output truncated: no space left on device');
    expect(truncationNote(4)).toBe('output truncated: disk quota exceeded');
  });
});

describe('ended payload directories', () => {
  it('keeps the newest N, or none when the disk is short', () => {
    const dirs = [1, 2, 3, 4, 5].map((id) => ({ id, mtimeMs: id * 1000 }));
    expect(dirsToRemove(dirs, 2, false).sort()).toEqual([1, 2, 3]);
    expect(dirsToRemove(dirs, 20, false)).toEqual([]);
    expect(dirsToRemove(dirs, 20, true).sort()).toEqual([1, 2, 3, 4, 5]);
  });

  it('removes ended ones only: never a running payload\'s or one whose end report is not delivered', async () => {
    for (const id of [1, 2, 3, 4]) {
      await mkdir(path.join(dir, 'payloads', String(id)), { recursive: true });
      await writeFile(path.join(dir, 'payloads', String(id), 'stdout'), 'x');
      await utimes(path.join(dir, 'payloads', String(id)), id, id);
    }
    expect(await pruneEndedDirs(dir, new Set([4]), { keep: 1, shortBelowBytes: 0 })).toEqual([2, 1]);
    expect([1, 2, 3, 4].map((id) => existsSync(path.join(dir, 'payloads', String(id))))).toEqual([false, false, true, true]);
    // short disk (less free than asked for): none kept
    expect(await pruneEndedDirs(dir, new Set([4]), { keep: 1, shortBelowBytes: Number.MAX_SAFE_INTEGER })).toEqual([3]);
    expect(existsSync(path.join(dir, 'payloads', '4'))).toBe(true);
  });
});
