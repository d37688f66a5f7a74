import { execFile, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import type { PayloadView } from '../../../src/protocol/index.js';
import { tempDir } from '../server/helpers.js';

const BIN = path.resolve('dist/vmpilot-server.cjs');

interface Started {
  child: ChildProcess;
  url: string;
  lines: string[];
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
});

/** Start `serve` and wait for its first stdout line. */
function start(db: string, extra: string[] = []): Promise<Started> {
  const child = spawn(process.execPath, [BIN, 'serve', '--listen', '127.0.0.1:0', '--db', db, '--log-level', 'warn', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, VMPILOT_ADMIN_TOKEN: '', VMPILOT_PILOT_TOKEN: '' },
  });
  children.push(child);
  const lines: string[] = [];
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      lines.push(line);
      if (lines.length === 1) {
        const m = /^vmpilot-server listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(line);
        if (m?.[1]) resolve({ child, url: m[1], lines });
        else reject(new Error(`unexpected first line: ${line}`));
      }
    });
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}`)));
  });
}

/** Run an admin command; resolves with its exit status and output. */
function admin(args: string[], env: Record<string, string>): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const status = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ status, stdout, stderr });
    });
  });
}

function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    if (child.pid) process.kill(child.pid, 'SIGTERM');
  });
}

describe('vmpilot-server serve and the admin commands (built binary)', () => {
  it('serves, takes submissions from the CLI, and keeps them across a restart', async () => {
    const tmp = tempDir();
    const db = path.join(tmp.dir, 'server.db');
    try {
      const first = await start(db);
      const env = { VMPILOT_SERVER: first.url, VMPILOT_TOKEN: '' };
      // the generated tokens follow the first line, once
      const health = await fetch(`${first.url}/v1/health`);
      expect(health.status).toBe(200);
      const token = first.lines.find((l) => l.startsWith('admin token: '))?.slice('admin token: '.length);
      expect(token).toMatch(/^[A-Za-z0-9_-]{20,}$/);
      expect(first.lines.some((l) => /^pilot token: [A-Za-z0-9_-]{20,}$/.test(l))).toBe(true);
      env.VMPILOT_TOKEN = token ?? '';

      const sub = await admin(['submit', '--cores', '2', '--env', 'A=1', '--', '/bin/echo', '-n', 'hi'], env);
      expect(sub).toMatchObject({ status: 0, stderr: '' });
      expect(sub.stdout).toMatch(/^\d+\n$/);
      const id = Number(sub.stdout);

      const bad = await admin(['submit', '--cores', 'four', '--', '/bin/true'], env);
      expect(bad.status).toBe(2);
      expect(bad.stderr).toContain('--cores "four"');
      expect(bad.stderr).not.toMatch(/\n\s+at /);

      const wrong = await admin(['jobs', '--token', 'not-the-token'], env);
      expect(wrong.status).toBe(3);
      expect(wrong.stderr).toMatch(/401/);

      const jobs = await admin(['jobs', '--json'], env);
      expect(jobs.status).toBe(0);
      const list = JSON.parse(jobs.stdout) as PayloadView[];
      expect(list).toHaveLength(1);
      expect(list[0]).toMatchObject({ id, name: 'echo', command: ['/bin/echo', '-n', 'hi'], cores: { min: 2, max: 2, wholeNode: false }, state: 'queued' });

      const table = await admin(['jobs'], env);
      expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+NAME\s+GROUP\s+STATE\s+CORES\s+PILOT\s+EXIT\s+WALL\s+ATTEMPTS$/);
      expect(table.stdout).toMatch(new RegExp(`^${id}\\s+echo\\s+default\\s+queued\\s+2/-`, 'm'));
      expect(table.stdout).toMatch(/\n\ncore-seconds: done 0\.0, failed 0\.0, cancelled 0\.0, evicted 0\.0 \(0 attempts\)\n$/);

      expect(await stop(first.child)).toBe(0);

      const second = await start(db);
      const after = await admin(['jobs', '--json', '--server', second.url], env);
      expect(after.status).toBe(0);
      expect((JSON.parse(after.stdout) as PayloadView[]).map((p) => p.id)).toEqual([id]);
      // the stored tokens are used again: none is generated or shown
      expect(second.lines).toHaveLength(1);
      expect(await stop(second.child)).toBe(0);
    } finally {
      tmp.remove();
    }
  });

  it('says clearly when it cannot open the database, with exit status 4', async () => {
    const r = await admin(['serve', '--listen', '127.0.0.1:0', '--db', '/nonexistent-dir/server.db'], {});
    expect(r.status).toBe(4);
    expect(r.stderr).toMatch(/^vmpilot-server: error: cannot open database \/nonexistent-dir\/server.db/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('says clearly when it cannot reach a PostgreSQL database (--db or VMPILOT_DB), without its password, with exit status 4', async () => {
    // nothing listens on port 1: the connection is refused at once
    const url = 'postgres://vmpilot:s3cret@127.0.0.1:1/vmpilot';
    for (const r of [
      await admin(['serve', '--listen', '127.0.0.1:0', '--db', url], {}),
      await admin(['serve', '--listen', '127.0.0.1:0'], { VMPILOT_DB: url }),
    ]) {
      expect(r.status).toBe(4);
      expect(r.stderr).toMatch(/^vmpilot-server: error: cannot open database postgres:\/\/vmpilot:\*\*\*@127\.0\.0\.1:1\/vmpilot: /);
      expect(r.stderr).not.toContain('s3cret');
    }
  });

  it('refuses a bad --listen as a usage error (exit status 2)', async () => {
    const r = await admin(['serve', '--listen', 'localhost', '--db', '/tmp/unused.db'], {});
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--listen "localhost" is not HOST:PORT');
  });
});
