/**
 * Attack (issue 11, point 8): slow or idle clients holding the server.
 * Today a request may take for ever to send its body, a refused request
 * still has its body read, a pilot may pile up long polls, and every refusal
 * is a log line. Now headers and whole requests must arrive in time, a 401
 * closes the connection unread, long polls are capped per pilot (a new one
 * answers the oldest) and in all, and refusals are logged at a rate.
 */
import { connect, type Socket } from 'node:net';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, PILOT_TOKEN, killAll, startServer, tempDir, waitFor, type Server } from '../integration/harness.js';

/** A raw TCP connection to the server: what it answered, and whether it closed. */
async function raw(url: string): Promise<{ socket: Socket; text: () => string; closed: Promise<void> }> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  await new Promise<void>((r) => socket.once('connect', () => r()));
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString()));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  return { socket, text: () => text, closed };
}

/** Resolves true when `p` settles within `ms`, false otherwise (the test then fails on it). */
const within = (p: Promise<unknown>, ms: number) => Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

async function openPolls(server: Server): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text();
  return Number(/^vmpilot_match_requests_open (\d+)$/m.exec(text)?.[1] ?? -1);
}

describe('security: slow or idle clients cannot hold the server', () => {
  const tmp = tempDir('vmpilot-sec-slow-');
  let server: Server;
  afterEach(() => killAll());
  afterAll(() => tmp.cleanup());

  it('closes a connection whose headers or body do not arrive in time, answering in the API\'s error shape', async () => {
    const config = path.join(tmp.dir, 'timeouts.yaml');
    writeFileSync(config, 'limits: { headersTimeoutSec: 2, requestTimeoutSec: 3 }\n');
    server = await startServer(path.join(tmp.dir, 'a.db'), ['--config', config]);
    // headers that never end
    const a = await raw(server.url);
    a.socket.write('GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    // a body sent a byte at a time
    const b = await raw(server.url);
    b.socket.write(`POST /v1/register HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${PILOT_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{`);
    const trickle = setInterval(() => b.socket.write(' '), 500);
    try {
      expect(await within(a.closed, 20_000)).toBe(true);
      expect(await within(b.closed, 20_000)).toBe(true);
    } finally {
      clearInterval(trickle);
    }
    expect(b.text()).toMatch(/^HTTP\/1\.1 408 /);
    expect(JSON.parse(b.text().split('\r\n\r\n')[1]!)).toEqual({ error: { code: 'VMP_BAD_REQUEST', message: expect.stringMatching(/did not arrive in time/) } });
    await server.stop();
  });

  it('closes a socket that stays silent for longer than the longest long poll plus the slack', async () => {
    const config = path.join(tmp.dir, 'slack.yaml');
    // every other timeout far away: only the silent-socket one can close it
    writeFileSync(config, 'limits: { socketSlackSec: 2, keepAliveSec: 3600, headersTimeoutSec: 3600, requestTimeoutSec: 3600 }\n');
    server = await startServer(path.join(tmp.dir, 'slack.db'), ['--config', config, '--match-wait-max', '1']);
    const silent = await raw(server.url);
    expect(await within(silent.closed, 20_000)).toBe(true);
    await server.stop();
  });

  it('answers a request with a bad token at once and closes the connection without reading its body', async () => {
    server = await startServer(path.join(tmp.dir, 'b.db'));
    const c = await raw(server.url);
    // 100 MB announced, none sent
    c.socket.write('POST /v1/register HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n');
    expect(await within(c.closed, 20_000)).toBe(true);
    expect(c.text()).toMatch(/^HTTP\/1\.1 401 /);
    expect(c.text()).toMatch(/\r\nconnection: close\r\n/i);
    await server.stop();
  });

  it('caps the long polls of one pilot: its newest replaces its oldest', async () => {
    server = await startServer(path.join(tmp.dir, 'c.db'), ['--match-wait-max', '60']);
    const reg = await (await fetch(`${server.url}/v1/register`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PILOT_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ hostname: 'greedy', version: '0.1.0', cores: 1, memoryMb: 100 }),
    })).json() as { pilotId: number; credential: string };
    const poll = () =>
      fetch(`${server.url}/v1/pilots/${reg.pilotId}/match`, {
        method: 'POST',
        headers: { authorization: `Bearer ${reg.credential}`, 'content-type': 'application/json' },
        body: JSON.stringify({ freeCores: 1, totalCores: 1, freeMemoryMb: 100, remainingSec: null, holding: [], waitSec: 60 }),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as { payload: unknown } }));
    const first = poll();
    await waitFor('one poll open', async () => (await openPolls(server)) === 1);
    const second = poll();
    await waitFor('two polls open', async () => (await openPolls(server)) === 2);
    const third = poll();
    // the oldest is answered at once (not after its 60 s), with no payload; the other two stay open
    expect(await within(first, 20_000)).toBe(true);
    expect(await first).toMatchObject({ status: 200, body: { payload: null } });
    await waitFor('two polls open again', async () => (await openPolls(server)) === 2);
    // work arrives: the two still waiting get it
    const batch = { payloads: [{ command: ['/bin/true'] }, { command: ['/bin/true'] }] };
    await fetch(`${server.url}/v1/payloads/batch`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(batch) });
    const answers = await Promise.all([second, third]);
    expect(answers.filter((a) => a.body.payload !== null)).toHaveLength(2);
    await server.stop();
  });

  it('caps the long polls in all (429), and logs a flood of refusals as a few lines', async () => {
    const config = path.join(tmp.dir, 'polls.yaml');
    writeFileSync(config, 'limits: { longPollsTotal: 1 }\n');
    server = await startServer(path.join(tmp.dir, 'd.db'), ['--match-wait-max', '20', '--config', config]);
    const pilots = await Promise.all(
      ['p1', 'p2'].map(async (hostname) =>
        (await (await fetch(`${server.url}/v1/register`, {
          method: 'POST',
          headers: { authorization: `Bearer ${PILOT_TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify({ hostname, version: '0.1.0', cores: 1, memoryMb: 100 }),
        })).json()) as { pilotId: number; credential: string },
      ),
    );
    const poll = (p: { pilotId: number; credential: string }) =>
      fetch(`${server.url}/v1/pilots/${p.pilotId}/match`, {
        method: 'POST',
        headers: { authorization: `Bearer ${p.credential}`, 'content-type': 'application/json' },
        body: JSON.stringify({ freeCores: 1, totalCores: 1, freeMemoryMb: 100, remainingSec: null, holding: [], waitSec: 20 }),
      });
    const open = poll(pilots[0]!);
    await waitFor('one poll open', async () => (await openPolls(server)) === 1);
    const refused = await poll(pilots[1]!);
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('VMP_RATE_LIMITED');

    // 300 requests with a bad token: 300 refusals, a few log lines
    const answers = await Promise.all(
      Array.from({ length: 300 }, () => fetch(`${server.url}/v1/pilots`, { headers: { authorization: 'Bearer nope' } }).then((r) => r.status)),
    );
    expect(answers.every((s) => s === 401)).toBe(true);
    const lines = server.stderr().split('\n').filter((l) => l.includes('"msg":"authentication failed"'));
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.length).toBeLessThan(5);
    await fetch(`${server.url}/v1/payloads`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ command: ['/bin/true'] }) });
    expect((await open).status).toBe(200);
    await server.stop();
  });
});
