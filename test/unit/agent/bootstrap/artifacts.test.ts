import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { installArtifact } from '../../../../src/agent/bootstrap/artifacts.js';
import { download } from '../../../../src/agent/bootstrap/download.js';
import type { Clock } from '../../../../src/shared/clock.js';

/** Sleeps return at once: retries are counted, not waited for. */
const instant: Clock = { now: () => 0, sleep: async () => undefined };
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('download and installArtifact, against a real HTTP server on 127.0.0.1', () => {
  let dir: string;
  let server: Server;
  let base: string;
  let body: Buffer;
  /** Requests seen: the Range header of each. */
  let ranges: (string | undefined)[];
  /** Cut the connection of the first N requests after half the body. */
  let cutFirst: number;
  let failStatus: number | null;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'vmpilot-artifacts-'));
    body = Buffer.alloc(256 * 1024, 7);
    for (let i = 0; i < body.length; i += 997) body[i] = i % 251;
    ranges = [];
    cutFirst = 0;
    failStatus = null;
    server = createServer((req, res) => {
      ranges.push(req.headers.range);
      if (failStatus) return res.writeHead(failStatus).end();
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      const start = m ? Number(m[1]) : 0;
      const part = body.subarray(start);
      res.writeHead(m ? 206 : 200, { 'content-length': part.length, ...(m ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}) });
      if (ranges.length <= cutFirst) {
        // FIN, not RST: the client reads the half that was sent, then sees the body end early
        res.write(part.subarray(0, part.length >> 1), () => res.socket?.end());
      } else {
        res.end(part);
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('resumes a cut download from where it stopped and checks the sha256', async () => {
    cutFirst = 1;
    const part = path.join(dir, 'x.part');
    await download(`${base}/x`, part, sha(body), { clock: instant, attempts: 3 });
    expect(sha(readFileSync(part))).toBe(sha(body));
    expect(ranges[0], JSON.stringify(ranges)).toBeUndefined();
    expect(ranges[1], JSON.stringify(ranges)).toMatch(/^bytes=\d+-$/);
    expect(Number(/\d+/.exec(ranges[1]!)![0])).toBeGreaterThan(0);
  });

  it('deletes a download whose sha256 is wrong and says both hashes', async () => {
    const part = path.join(dir, 'x.part');
    await expect(download(`${base}/x`, part, 'e'.repeat(64), { clock: instant })).rejects.toThrow(`has sha256 ${sha(body)}, expected ${'e'.repeat(64)}`);
    expect(() => lstatSync(part)).toThrow();
  });

  it('gives up after the attempts, and at once on a 404', async () => {
    failStatus = 503;
    await expect(download(`${base}/x`, path.join(dir, 'a'), sha(body), { clock: instant, attempts: 3 })).rejects.toThrow(/after 3 attempts: GET .* HTTP 503/);
    expect(ranges).toHaveLength(3);
    ranges = [];
    failStatus = 404;
    await expect(download(`${base}/x`, path.join(dir, 'b'), sha(body), { clock: instant, attempts: 3 })).rejects.toThrow(/after 1 attempt: .*HTTP 404/);
    expect(ranges).toHaveLength(1);
  });

  it('installs an unpacked tarball through the cache; a second agent reuses it without downloading', async () => {
    mkdirSync(path.join(dir, 'pkg/bin'), { recursive: true });
    writeFileSync(path.join(dir, 'pkg/bin/tool'), '#!/bin/sh\necho tool-ok\n', { mode: 0o755 });
    execFileSync('tar', ['-czf', path.join(dir, 'pkg.tgz'), '-C', path.join(dir, 'pkg'), 'bin']);
    body = readFileSync(path.join(dir, 'pkg.tgz'));
    const cacheDir = path.join(dir, 'cache');
    const a = { url: `${base}/pkg.tgz`, sha256: sha(body), dest: path.join(dir, 'agent1/software/tool'), unpack: true };
    const first = await installArtifact(a, { cacheDir, clock: instant });
    expect(first.cached).toBe(false);
    expect(execFileSync(path.join(a.dest, 'bin/tool'), { encoding: 'utf8' })).toBe('tool-ok\n');

    const second = await installArtifact({ ...a, dest: path.join(dir, 'agent2/software/tool') }, { cacheDir, clock: instant });
    expect(second.cached).toBe(true);
    expect(ranges).toHaveLength(1);
    expect(execFileSync(path.join(dir, 'agent2/software/tool/bin/tool'), { encoding: 'utf8' })).toBe('tool-ok\n');
    // idempotent: the same install again changes nothing
    await installArtifact(a, { cacheDir, clock: instant });
    expect(readdirSync(cacheDir).sort()).toEqual([`${a.sha256}.d`, `${a.sha256}.file`, `${a.sha256}.ok`]);
  });

  it('never replaces a destination it did not make', async () => {
    const dest = path.join(dir, 'mine');
    mkdirSync(dest);
    writeFileSync(path.join(dest, 'precious'), 'x');
    await expect(installArtifact({ url: `${base}/x`, sha256: sha(body), dest, unpack: false }, { cacheDir: path.join(dir, 'cache'), clock: instant })).rejects.toThrow(
      `${dest} exists and is not a link made by vmpilot`,
    );
    expect(readFileSync(path.join(dest, 'precious'), 'utf8')).toBe('x');
  });

  it('takes over the lock of an agent that died while filling the cache', async () => {
    const cacheDir = path.join(dir, 'cache');
    mkdirSync(cacheDir);
    writeFileSync(path.join(cacheDir, `${sha(body)}.lock`), '999999');
    const r = await installArtifact({ url: `${base}/x`, sha256: sha(body), dest: path.join(dir, 'f'), unpack: false }, { cacheDir, clock: instant, alive: () => false });
    expect(r.cached).toBe(false);
    expect(sha(readFileSync(path.join(dir, 'f')))).toBe(sha(body));
  });
});
