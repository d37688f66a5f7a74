import { createHash } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { downloadUrl, installArtifact } from '../../../src/agent/bootstrap/artifacts.js';
import { loadConfig } from '../../../src/agent/config/load.js';
import { HttpControlPlane } from '../../../src/agent/control/http-control-plane.js';
import { RELAY_TOKEN_HEADER, type PilotView } from '../../../src/protocol/index.js';
import { AgentFiles } from '../../../src/relay/agent-files.js';
import { Artifacts } from '../../../src/relay/artifacts.js';
import { ContentCache } from '../../../src/relay/cache.js';
import { httpRelay } from '../../../src/relay/http-relay.js';
import { Outputs, outputTarget } from '../../../src/relay/outputs.js';
import { isVmpilotError } from '../../../src/shared/errors.js';
import { silentLogger } from '../../../src/shared/log.js';
import { heartbeat, matchRequest, registration, tempDir } from '../server/helpers.js';
import { ADMIN, PILOT, RELAY_TOKEN, forwarderTo, liveServer } from './server.js';

type Live = Awaited<ReturnType<typeof liveServer>>;

const until = async (what: string, check: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A web server standing in for a storage element and a software site: keeps PUTs, serves GETs of `files`. */
async function website(files: Record<string, Buffer> = {}) {
  const puts: { url: string; body: string; authorization: string | undefined }[] = [];
  const gets: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      if (req.method === 'PUT') {
        puts.push({ url: req.url ?? '', body: Buffer.concat(chunks).toString(), authorization: req.headers.authorization });
        return void res.writeHead(201).end();
      }
      gets.push(req.url ?? '');
      const file = files[req.url ?? ''];
      if (!file) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': String(file.length) }).end(file);
    });
  });
  return { url: await listen(server), puts, gets, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('the relay over HTTP', () => {
  let tmp: ReturnType<typeof tempDir>;
  let server: Live;
  let relayUrl: string;
  let relay: Server;
  let closeUpstream: () => void;
  let site: Awaited<ReturnType<typeof website>>;
  const artifact = Buffer.from('#!/bin/sh\necho the software\n'.repeat(1000));
  const artifactSha = createHash('sha256').update(artifact).digest('hex');

  const start = async (relayToken: string | null = RELAY_TOKEN, callSockets?: number, bodyTimeoutMs?: number) => {
    const { forwarder, upstream } = forwarderTo(server.url, relayToken, callSockets ? { callSockets } : {});
    closeUpstream = () => upstream.close();
    const cache = new ContentCache(path.join(tmp.dir, 'cache'), silentLogger());
    relay = httpRelay({
      forwarder,
      agentFiles: new AgentFiles(upstream, cache, silentLogger()),
      artifacts: new Artifacts(cache, [`${site.url}/releases/`], undefined, silentLogger()),
      outputs: new Outputs(new URL(`${site.url}/vo/outputs/`), undefined, silentLogger()),
      log: silentLogger(),
      ...(bodyTimeoutMs === undefined ? {} : { bodyTimeoutMs }),
    });
    relayUrl = await listen(relay);
  };

  beforeEach(async () => {
    tmp = tempDir();
    server = await liveServer(5);
    site = await website({ '/releases/sw.tar': artifact, '/releases/wrong.tar': Buffer.from('not it') });
  });
  afterEach(async () => {
    relay?.closeAllConnections();
    await new Promise((r) => relay?.close(r));
    closeUpstream?.();
    await site.close();
    await server.close();
    tmp.remove();
  });

  it('an agent works through it as with the server, and the server records the relay it came through', async () => {
    await start();
    const control = new HttpControlPlane({ server: relayUrl, token: PILOT });
    const reg = await control.register(registration({ hostname: 'cn0001' }));
    await control.heartbeat(heartbeat());
    const id = await server.submit(['/bin/true']);
    expect((await control.match(matchRequest({ waitSec: 1 }))).payload?.id).toBe(id);
    expect(((await server.call('GET', `/v1/pilots/${reg.pilotId}`)).body as PilotView).relay).toEqual({ name: 'login01', site: 'TEST' });
  });

  it("the server's per-address registration limit counts each node behind the relay by its own address, and its 429 keeps retry-after", async () => {
    await server.close();
    server = await liveServer(5, { registerBurstPerAddress: 2, registerPerSecPerAddress: 0.01 });
    await start();
    // two "nodes" on the relay's network: loopback addresses of their own
    const register = (localAddress: string, hostname: string) =>
      new Promise<{ status: number; retryAfter: string | undefined; text: string }>((resolve, reject) => {
        const body = JSON.stringify(registration({ hostname }));
        const req = request(`${relayUrl}/v1/register`, {
          method: 'POST',
          localAddress,
          headers: { authorization: `Bearer ${PILOT}`, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
        });
        req.on('response', (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], text }));
        });
        req.on('error', reject);
        req.end(body);
      });
    expect((await register('127.0.0.2', 'cn0002-a')).status).toBe(201);
    expect((await register('127.0.0.2', 'cn0002-b')).status).toBe(201);
    const held = await register('127.0.0.2', 'cn0002-c');
    expect(held.status).toBe(429);
    expect(held.retryAfter).toMatch(/^\d+$/);
    expect(held.text).toMatch(/too many registrations from address 127\.0\.0\.2 via relay login01/);
    // its neighbour, through the same relay (the same address at the server), is not held back by it
    expect((await register('127.0.0.3', 'cn0003-a')).status).toBe(201);
    expect((await register('127.0.0.3', 'cn0003-b')).status).toBe(201);
  });

  it('a relay token sent by a client never reaches the server: the relay sends its own, or none', async () => {
    await start(null);
    const r = await fetch(`${relayUrl}/v1/register`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PILOT}`, 'content-type': 'application/json', [RELAY_TOKEN_HEADER]: RELAY_TOKEN },
      body: JSON.stringify(registration()),
    });
    expect(r.status).toBe(201);
    const { pilotId } = (await r.json()) as { pilotId: number };
    // a compute node holding a relay's token cannot pass for that relay through another
    expect(((await server.call('GET', `/v1/pilots/${pilotId}`)).body as PilotView).relay).toBeNull();
  });

  it('forwards the pilot protocol only: admin routes are 404 at the relay and never reach the server', async () => {
    await start();
    const before = server.connections();
    for (const [method, route] of [['GET', '/v1/pilots'], ['POST', '/v1/payloads'], ['GET', '/metrics'], ['DELETE', '/v1/register']] as const) {
      const r = await fetch(relayUrl + route, { method, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, ...(method === 'POST' ? { body: '{"command":["/bin/true"]}' } : {}) });
      expect(r.status, route).toBe(404);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('VMP_NOT_FOUND');
    }
    expect(server.connections()).toBe(before);
    expect(await server.store.listPayloads({})).toEqual([]);
  });

  it('refuses a body larger than the server would take (413)', async () => {
    await start();
    const before = server.connections();
    const r = await fetch(`${relayUrl}/v1/register`, { method: 'POST', headers: { authorization: `Bearer ${PILOT}`, 'content-type': 'application/json' }, body: 'x'.repeat(1024 * 1024 + 10) });
    expect(r.status).toBe(413);
    expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(/request body is too large \(more than 1048576 bytes\)/);
    // refused at the relay: the wide-area link never carried it
    expect(server.connections()).toBe(before);
    expect(await server.store.listPilots({})).toEqual([]);
  });

  it('answers a body that does not arrive in time 408 and closes the connection; nothing reaches the server', async () => {
    await start(RELAY_TOKEN, undefined, 300);
    const before = server.connections();
    const { port } = new URL(relayUrl);
    const socket = connect(Number(port), '127.0.0.1');
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    // the headers promise 100 bytes; 10 come, then nothing
    socket.write(`POST /v1/register HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer ${PILOT}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"hostname`);
    await closed;
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer).toMatch(/the request body did not arrive within 0\.3 s/);
    expect(server.connections()).toBe(before);
    expect(await server.store.listPilots({})).toEqual([]);
  });

  it('with the server down, the agent gets "no answer" (it retries, counts no idle time), and the relay says why', async () => {
    await start();
    const control = new HttpControlPlane({ server: relayUrl, token: PILOT });
    await server.close();
    const err = await control.register(registration()).catch((e: unknown) => e);
    expect(isVmpilotError(err, 'VMP_SERVER')).toBe(true); // what the agent's contact tracker counts as no answer
    expect((err as Error).message).toMatch(/relay: cannot reach http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED.*\(HTTP 502\)/);
    server = await liveServer(5); // for afterEach
  });

  it('an agent that goes away from its match ends the long poll at the server too', async () => {
    await start();
    const control = new HttpControlPlane({ server: relayUrl, token: PILOT });
    const reg = await control.register(registration());
    const opened = server.connections();
    const closed = server.closed();
    const abort = new AbortController();
    const held = control.match(matchRequest({ waitSec: 5 }), abort.signal);
    // the relay opens a connection of its long-poll lane for it
    await until('the relay to take the match to the server', () => server.connections() > opened);
    abort.abort();
    await expect(held).rejects.toMatchObject({ details: { aborted: true } });
    // and closes it: the server sees the agent go
    await until('the server to see the long poll end', () => server.closed() > closed);
    // a payload submitted now waits for the next pilot to ask: the dropped poll claims nothing
    const other = new HttpControlPlane({ server: server.url, token: PILOT });
    await other.register(registration({ hostname: 'other' }));
    const id = await server.submit(['/bin/true']);
    expect((await other.match(matchRequest({ waitSec: 0 }))).payload?.id).toBe(id);
    expect((await server.call('GET', `/v1/payloads/${id}`)).body).toMatchObject({ pilotId: reg.pilotId + 1 });
  });

  it('carries many agents over a few kept-alive connections', async () => {
    await start(RELAY_TOKEN, 4);
    const agents = Array.from({ length: 40 }, () => new HttpControlPlane({ server: relayUrl, token: PILOT }));
    await Promise.all(agents.map((a, i) => a.register(registration({ hostname: `cn${i}` }))));
    for (let round = 0; round < 5; round++) await Promise.all(agents.map((a) => a.heartbeat(heartbeat())));
    // 240 calls of 40 agents, each on a connection of its own to the relay: no more connections to the server than the relay's bound
    expect(server.connections()).toBeGreaterThan(0);
    expect(server.connections()).toBeLessThanOrEqual(4);
  });

  it('forwards $JOBOUTPUTS uploads to the --outputs place only, with their Authorization and without its own token', async () => {
    await start();
    // as sent, not as a client library would clean it up
    const put = (p: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request(`${relayUrl}/outputs/x`, { method: 'PUT', path: `/outputs/${p}`, headers: { 'content-type': 'text/plain', authorization: 'Bearer se-token' } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end('100 Shutdown as requested');
      });
    expect(await put('job-7/shutdown_message')).toBe(201);
    expect(site.puts).toEqual([{ url: '/vo/outputs/job-7/shutdown_message', body: '100 Shutdown as requested', authorization: 'Bearer se-token' }]);
    // nothing climbs out of the --outputs place: refused, or not an outputs path once the URL is read
    for (const bad of ['../releases/sw.tar', 'job-7/../../../etc/passwd', '%2e%2e/%2e%2e/releases/sw.tar', 'a/%2f/b', 'a/%5c..%5c/b']) expect(await put(bad), bad).toBeGreaterThanOrEqual(400);
    expect(site.puts).toHaveLength(1);
    expect(outputTarget(new URL('https://se.example.org/vo/'), 'job-7/heartbeat').href).toBe('https://se.example.org/vo/job-7/heartbeat');
    for (const bad of ['..', 'a/../b', 'a/%2E%2e/b', 'a%2fb', 'a/%5Cb', '']) expect(() => outputTarget(new URL('https://se.example.org/vo/'), bad), bad).toThrow(/expected a relative path without \. or \.\. segments/);
  });

  it('serves a bootstrap artifact from its cache: fetched once from an allowed place, checked against its sha256', async () => {
    await start();
    const get = (url: string, sha256: string, headers: Record<string, string> = {}) =>
      fetch(`${relayUrl}/v1/relay/artifact?url=${encodeURIComponent(url)}&sha256=${sha256}`, { headers });
    const all = await Promise.all(Array.from({ length: 8 }, () => get(`${site.url}/releases/sw.tar`, artifactSha)));
    for (const r of all) {
      expect(r.status).toBe(200);
      expect(Buffer.from(await r.arrayBuffer()).equals(artifact)).toBe(true);
    }
    expect(site.gets).toEqual(['/releases/sw.tar']);
    // a resumed download (the agent's Range request)
    const part = await get(`${site.url}/releases/sw.tar`, artifactSha, { range: 'bytes=100-' });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer()).equals(artifact.subarray(100))).toBe(true);
    // not the file asked for: not kept, not served
    const wrong = await get(`${site.url}/releases/wrong.tar`, 'a'.repeat(64));
    expect(wrong.status).toBe(502);
    expect(((await wrong.json()) as { error: { message: string } }).error.message).toMatch(/sha256 .* expected .*sha256 a{64}: not kept, not served/);
    // only from where it was told
    const elsewhere = await get('http://169.254.169.254/latest/meta-data', artifactSha);
    expect(elsewhere.status).toBe(403);
    expect(site.gets).toEqual(['/releases/sw.tar', '/releases/wrong.tar']);
  });

  it("an agent's bootstrap (--artifacts-via) gets its software through the relay: one fetch for every node", async () => {
    await start();
    const url = `${site.url}/releases/sw.tar`;
    expect(loadConfig({ flags: { artifactsVia: relayUrl }, env: {} }).artifactsVia).toBe(relayUrl);
    expect(() => loadConfig({ flags: { artifactsVia: 'login01:8081' }, env: {} })).toThrow(/--artifacts-via "login01:8081": expected an http:\/\/ or https:\/\/ URL/);
    // file: artifacts (a shared filesystem) are read where they are
    expect(downloadUrl({ url: 'file:///shared/sw.tar', sha256: artifactSha }, relayUrl)).toBe('file:///shared/sw.tar');
    expect(downloadUrl({ url, sha256: artifactSha }, null)).toBe(url);
    const instant = { now: () => 0, sleep: async () => undefined };
    // three nodes, each with its own artifact cache
    const installed = await Promise.all(
      ['cn1', 'cn2', 'cn3'].map((node) =>
        installArtifact({ url, sha256: artifactSha, dest: path.join(tmp.dir, node, 'software', 'sw.tar'), unpack: false }, { cacheDir: path.join(tmp.dir, node, 'cache'), clock: instant, via: relayUrl }),
      ),
    );
    const { readFileSync } = await import('node:fs');
    for (const i of installed) expect(readFileSync(i.dest).equals(artifact)).toBe(true);
    expect(site.gets).toEqual(['/releases/sw.tar']);
  });
});
