/**
 * The small things a new operator trips over in the admin commands, against
 * a real server: a day that does not exist, `submit --file` with `--group`,
 * `submit --json`, a server behind a proxy path, an https URL for an http
 * server, commander's own errors, and a reader that closes the output.
 */
import { spawn } from 'node:child_process';
import { createServer, request, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, SERVER, admin, killAll, runCommand, startAgent, startServer, tempDir, waitFor, type Server } from '../harness.js';

/** A reverse proxy that serves the server under /api (and answers 404 elsewhere), recording the paths it was asked for. */
async function proxyUnderApi(target: string): Promise<{ url: string; seen: string[]; close: () => Promise<void> }> {
  const to = new URL(target);
  const seen: string[] = [];
  const proxy: HttpServer = createServer((req, res) => {
    seen.push(req.url ?? '');
    if (!req.url?.startsWith('/api/')) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not here\n');
    const up = request({ host: to.hostname, port: to.port, method: req.method, path: req.url.slice('/api'.length), headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.writeHead(502).end());
    req.pipe(up);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  return { url, seen, close: () => new Promise((r) => proxy.close(() => r())) };
}

describe('admin commands: rough edges', () => {
  const tmp = tempDir('vmpilot-admin-edges-');
  let server: Server;
  const cli = (...args: string[]) => runCommand([SERVER, ...args, '--server', server.url, '--token', ADMIN_TOKEN]);

  beforeAll(async () => {
    server = await startServer(path.join(tmp.dir, 'server.db'));
  });
  afterAll(async () => {
    await server.stop();
    killAll();
    tmp.cleanup();
  });

  it('refuses a day that does not exist, in the command and in the API', async () => {
    const month = await cli('accounting', '--from', '2025-13-01');
    expect(month.code).toBe(2);
    expect(month.stderr).toMatch(/^vmpilot-server: error: --from "2025-13-01" has no month 13 \(months are 01 to 12\)\n/);
    const day = await cli('accounting', '--to', '2025-02-30');
    expect(day.code).toBe(2);
    expect(day.stderr).toMatch(/^vmpilot-server: error: --to "2025-02-30" has no day 30: 2025-02 has 28 days\n/);
    expect((await cli('accounting', '--from', '2024-02-29', '--to', '2024-03-01')).code).toBe(0);
    const api = await admin(server.url).call<{ error: { code: string; message: string } }>('GET', '/v1/accounting?from=2025-13-01');
    expect(api.status).toBe(400);
    expect(api.body.error.message).toMatch(/from/);
  });

  it('submit --file with --group: the default group of the payloads that name none; other payload flags refused', async () => {
    const file = path.join(tmp.dir, 'jobs.yaml');
    writeFileSync(file, 'payloads:\n  - { command: [/bin/true] }\n  - { command: [/bin/true], group: cms }\n');
    const r = await cli('submit', '--file', file, '--group', 'atlas', '--json');
    expect(r.code, r.stderr).toBe(0);
    const ids = JSON.parse(r.stdout) as number[];
    const api = admin(server.url);
    expect(await Promise.all(ids.map(async (id) => (await api.job(id)).group))).toEqual(['atlas', 'cms']);
    const before = (await api.jobs()).length;
    const refused = await cli('submit', '--file', file, '--cores', '4');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(
      `vmpilot-server: error: --cores cannot be used with --file: it would not apply to the file's payloads\n  write "cores" in ${file}, for each payload or under "defaults:"\n`,
    );
    expect(await api.jobs()).toHaveLength(before);
  });

  it('submit --json prints an array also for one command; --cores "0" names the value once', async () => {
    const one = await runCommand([SERVER, 'submit', '--json', '--server', server.url, '--token', ADMIN_TOKEN, '--', '/bin/true']);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toMatch(/^\[\d+\]\n$/);
    const zero = await runCommand([SERVER, 'submit', '--cores', '0', '--server', server.url, '--token', ADMIN_TOKEN, '--', '/bin/true']);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toBe('vmpilot-server: error: --cores "0": at least 1 core\n  use N, MIN-MAX or whole, e.g. --cores 4 or --cores 2-8\n');
  });

  it('keeps the path of --server as a base for every call, for the admin commands and the agent', async () => {
    const proxy = await proxyUnderApi(server.url);
    try {
      const base = `${proxy.url}/api`;
      const listed = await runCommand([SERVER, 'jobs', '--json', '--server', base, '--token', ADMIN_TOKEN]);
      expect(listed.code, listed.stderr).toBe(0);
      expect(Array.isArray(JSON.parse(listed.stdout))).toBe(true);
      const sent = await runCommand([SERVER, 'submit', '--server', `${base}/`, '--token', ADMIN_TOKEN, '--', '/bin/true']);
      expect(sent.code, sent.stderr).toBe(0);
      const known = (await admin(server.url).pilots()).length;
      const agent = startAgent(base, { cores: 1, idleTimeoutSec: 1, stateDir: path.join(tmp.dir, 'agent-behind-proxy') });
      const exit = await agent.exited;
      expect(exit.code, agent.stderr()).toBe(0);
      expect(await admin(server.url).pilots()).toHaveLength(known + 1);
      expect(proxy.seen.filter((p) => !p.startsWith('/api/v1/'))).toEqual([]);
      expect(proxy.seen).toEqual(expect.arrayContaining(['/api/v1/payloads', '/api/v1/register']));
    } finally {
      await proxy.close();
    }
  });

  it('follows the Link of each page under the path of --server too', async () => {
    const other = await startServer(path.join(tmp.dir, 'paged.db'));
    const proxy = await proxyUnderApi(other.url);
    try {
      // one more than a full page of 500: the listing needs a second page, named by the first's Link
      const payloads = Array.from({ length: 501 }, (_, i) => ({ command: ['/bin/true'], name: `p${i}` }));
      const batch = await fetch(`${other.url}/v1/payloads/batch`, {
        method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ payloads }),
      });
      expect(batch.status, await batch.text()).toBe(201);
      const listed = await runCommand([SERVER, 'jobs', '--json', '--server', `${proxy.url}/api`, '--token', ADMIN_TOKEN]);
      expect(listed.code, listed.stderr).toBe(0);
      expect((JSON.parse(listed.stdout) as { name: string }[]).map((p) => p.name)).toEqual(payloads.map((p) => p.name));
      expect(proxy.seen.filter((p) => p.startsWith('/api/v1/payloads?'))).toEqual([
        '/api/v1/payloads?limit=500',
        expect.stringMatching(/^\/api\/v1\/payloads\?limit=500&cursor=\d+$/),
      ]);
      expect(proxy.seen.filter((p) => !p.startsWith('/api/v1/'))).toEqual([]);
    } finally {
      await proxy.close();
      await other.stop();
    }
  });

  it('an https URL for an http server: says to use http:// or check the port, not OpenSSL text', async () => {
    const port = new URL(server.url).port;
    const r = await runCommand([SERVER, 'jobs', '--server', `https://127.0.0.1:${port}`, '--token', ADMIN_TOKEN]);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe(
      `vmpilot-server: error: cannot reach the server at https://127.0.0.1:${port}: 127.0.0.1:${port} did not answer in TLS: it looks like a plain http:// server (or another service) on that port\n` +
        `  use http://127.0.0.1:${port} if the server does not serve TLS, or check the port\n`,
    );
    const agent = startAgent(`https://127.0.0.1:${port}`, { stateDir: path.join(tmp.dir, 'agent-tls'), extra: ['--orphan-timeout', '1'] });
    const exit = await agent.exited;
    expect(exit.code).toBe(17);
    expect(agent.stderr()).toMatch(/vmpilot: error: server unreachable .*did not answer in TLS.*use http:\/\/127\.0\.0\.1:\d+ if the server does not serve TLS, or check the port/);
    expect(agent.stderr()).not.toMatch(/ssl3_get_record|wrong version number/);
  });

  it("commander's own errors read like ours: the program's name, exit 2", async () => {
    const r = await runCommand([SERVER, 'jobs', '--bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^vmpilot-server: error: unknown option '--bogus'\n/);
    const missing = await runCommand([SERVER, 'job']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^vmpilot-server: error: missing required argument 'id'\n/);
  });

  it('a reader that closes the output (--help | head) ends it quietly, exit 0', async () => {
    for (const args of [['--help'], ['submit', '--help']]) {
      const child = spawn(process.execPath, [SERVER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      // the reader goes away before the program writes anything: every write of it meets a closed pipe
      child.stdout.destroy();
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
      expect(stderr).toBe('');
      expect(code).toBe(0);
    }
  });

  it('shows wall time rounded, not truncated', async () => {
    const api = admin(server.url);
    const id = await api.submit({ command: ['/bin/sh', '-c', 'sleep 1.6'] });
    const agent = startAgent(server.url, { cores: 1, idleTimeoutSec: 1, stateDir: path.join(tmp.dir, 'agent-wall') });
    await waitFor('the payload done', async () => (await api.job(id)).state === 'done');
    await agent.exited;
    const p = await api.job(id);
    const sec = (p.endedAt! - p.startedAt!) / 1000;
    const shown = (await cli('job', String(id))).stdout;
    expect(shown).toMatch(new RegExp(`^wall time\\s+${Math.round(sec)}s$`, 'm'));
  });
});
