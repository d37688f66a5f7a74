/**
 * The directories vmpilot writes for its payloads (issue 22, points 3 and
 * 4): a reader never sees a name that is not a key nor a file that
 * vanishes between listing and reading, and everything is readable by the
 * payload user whatever the umask.
 */
import { spawn } from 'node:child_process';
import { watch } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { featuresTmpDir, rewriteFeatures, writeFeatures } from '../../../../src/agent/mjf/write.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'vmp-mjf-write-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/**
 * A client in its own process, as a payload's MJF library reads: list the
 * directory, read every file listed, again and again until told to stop;
 * prints the names it saw that are not `keys` and the reads that failed.
 */
function client(features: string, keys: string[]) {
  const script = `
    const fs = require('node:fs'); const path = require('node:path');
    const [dir, keys] = [process.argv[1], new Set(process.argv[2].split(','))];
    const stray = new Set(); const failed = []; let reads = 0; let stop = false;
    process.stdin.on('data', () => { stop = true; });
    (function loop() {
      for (let i = 0; i < 50; i++) {
        for (const name of fs.readdirSync(dir)) {
          if (!keys.has(name)) stray.add(name);
          try { fs.readFileSync(path.join(dir, name), 'utf8'); reads++; } catch (e) { failed.push(name + ': ' + e.code); }
        }
      }
      if (stop) { process.stdout.write(JSON.stringify({ stray: [...stray], failed, reads })); process.exit(0); }
      setImmediate(loop);
    })();`;
  const child = spawn(process.execPath, ['-e', script, features, keys.join(',')], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<{ stray: string[]; failed: string[]; reads: number }>((resolve) => child.on('exit', () => resolve(JSON.parse(out) as { stray: string[]; failed: string[]; reads: number })));
  return { stop: () => child.stdin.end('stop\n'), done };
}

describe('no stray files in a features directory', () => {
  it('a deadline moved 300 times: only key names ever appear in the directory, and no file vanishes under a reader', async () => {
    const features = path.join(dir, 'payloads', '7', 'jobfeatures');
    const values = { allocated_cpu: 2, jobstart_secs: 1_700_000_000, grace_secs_job: 10, job_id: '7', shutdowntime_job: 1_700_003_600 };
    await writeFeatures(features, values);
    const keys = Object.keys(values);
    // every name created or renamed in the directory, as the kernel reports it
    const seen = new Set<string>();
    const watcher = watch(features, (_event, name) => name && seen.add(name.toString()));
    const reader = client(features, keys);
    try {
      for (let i = 0; i < 300; i++) await writeFeatures(features, { shutdowntime_job: 1_700_003_600 - i });
      await new Promise((r) => setTimeout(r, 50)); // the watcher's last events
    } finally {
      watcher.close();
      reader.stop();
    }
    const r = await reader.done;
    expect([...seen].filter((n) => !keys.includes(n))).toEqual([]);
    expect(seen.has('shutdowntime_job')).toBe(true);
    expect(r.stray).toEqual([]);
    expect(r.failed).toEqual([]);
    expect(r.reads).toBeGreaterThan(0);
    expect((await readdir(features)).sort()).toEqual([...keys].sort());
    expect(await readFile(path.join(features, 'shutdowntime_job'), 'utf8')).toBe(`${1_700_003_600 - 299}\n`);
    // the values in the making live beside it, on the same filesystem, and none is left there
    expect(featuresTmpDir(features)).toBe(path.join(dir, 'payloads', '7', '.jobfeatures.tmp'));
    expect((await stat(featuresTmpDir(features))).dev).toBe((await stat(features)).dev);
    expect(await readdir(featuresTmpDir(features))).toEqual([]);
  });

  it('a key no longer given is removed (a shutdown called off), the others stay', async () => {
    const mf = path.join(dir, 'machinefeatures');
    await writeFeatures(mf, { total_cpu: 4, grace_secs: 10, shutdowntime: 1_800_000_000 });
    await writeFeatures(mf, { total_cpu: 4, grace_secs: 10 }, ['shutdowntime']);
    expect((await readdir(mf)).sort()).toEqual(['grace_secs', 'total_cpu']);
  });
});

describe('readable by the payload user whatever the umask', () => {
  it('under umask 077 the directories are 0755 and the files 0644; the values in the making are the agent’s own (0700)', async () => {
    const old = process.umask(0o077);
    try {
      const mf = path.join(dir, 'state', 'machinefeatures');
      await writeFeatures(mf, { total_cpu: 4, shutdowntime: 1_800_000_000 });
      await writeFeatures(mf, { shutdowntime: 1_790_000_000 });
      expect((await stat(mf)).mode & 0o777).toBe(0o755);
      for (const f of await readdir(mf)) expect({ f, mode: (await stat(path.join(mf, f))).mode & 0o777 }).toEqual({ f, mode: 0o644 });
      expect((await stat(featuresTmpDir(mf))).mode & 0o777).toBe(0o700);
    } finally {
      process.umask(old);
    }
  });
});

describe('rewriting a running payload’s $JOBFEATURES', () => {
  it('updates a directory the agent made; refuses one a payload replaced with a link, and writes nothing through it', async () => {
    const jf = path.join(dir, 'payloads', '3', 'jobfeatures');
    await writeFeatures(jf, { allocated_cpu: 1, shutdowntime_job: 1_800_000_000 });
    expect(await rewriteFeatures(jf, { shutdowntime_job: 1_700_000_000 })).toEqual({ kind: 'written' });
    expect(await readFile(path.join(jf, 'shutdowntime_job'), 'utf8')).toBe('1700000000\n');
    // the payload owns its directory: it swaps jobfeatures for a link to somewhere else
    const elsewhere = path.join(dir, 'elsewhere');
    await mkdir(elsewhere);
    await rm(jf, { recursive: true });
    await symlink(elsewhere, jf);
    const r = await rewriteFeatures(jf, { shutdowntime_job: 1_600_000_000 });
    expect(r).toEqual({ kind: 'refused', reason: `${jf} is a symbolic link` });
    expect(await readdir(elsewhere)).toEqual([]);
    expect((await lstat(jf)).isSymbolicLink()).toBe(true);
    // not there (yet): nothing is created
    expect(await rewriteFeatures(path.join(dir, 'payloads', '4', 'jobfeatures'), { shutdowntime_job: 1 })).toEqual({ kind: 'absent' });
    await expect(stat(path.join(dir, 'payloads', '4'))).rejects.toThrow();
  });
});
