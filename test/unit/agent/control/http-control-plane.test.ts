import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpControlPlane } from '../../../../src/agent/control/http-control-plane.js';
import { isVmpilotError } from '../../../../src/shared/errors.js';

let server: http.Server | null = null;
const seen: { url?: string; auth?: string; body: string }[] = [];

async function serve(handler: (req: http.IncomingMessage, body: string, res: http.ServerResponse) => void): Promise<string> {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ url: req.url, auth: req.headers.authorization, body });
      handler(req, body, res);
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

afterEach(async () => {
  seen.length = 0;
  const s = server;
  server = null;
  if (!s) return;
  s.closeAllConnections();
  await new Promise((r) => s.close(r));
});

const reg = { hostname: 'h', version: '1', cores: 1, memoryMb: 1 };

describe('HttpControlPlane', () => {
  it('registers with the token, then uses the credential', async () => {
    const url = await serve((req, _body, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/v1/register') res.end(JSON.stringify({ pilotId: 3, credential: 'cred', heartbeatIntervalSec: 5, matchWaitMaxSec: 1, serverTime: 0 }));
      else res.end(JSON.stringify({ appliedSeq: 1, refused: [], instructions: [] }));
    });
    const cp = new HttpControlPlane({ server: url, token: 'tok' });
    expect((await cp.register(reg)).pilotId).toBe(3);
    await cp.report([{ type: 'ping' } as never]);
    expect(seen.map((s) => [s.url, s.auth])).toEqual([
      ['/v1/register', 'Bearer tok'],
      ['/v1/pilots/3/reports', 'Bearer cred'],
    ]);
    await cp.close();
  });

  it.each([
    [400, 'VMP_BAD_REQUEST'],
    [401, 'VMP_UNAUTHORIZED'],
    [403, 'VMP_FORBIDDEN'],
    [503, 'VMP_SERVER'],
  ])('maps HTTP %i to %s with the server message', async (status, code) => {
    const url = await serve((_req, _body, res) => {
      res.statusCode = status;
      res.end(JSON.stringify({ error: { code: 'X', message: 'cores must be an integer' } }));
    });
    const err = await new HttpControlPlane({ server: url, token: 't' }).register(reg).catch((e: unknown) => e);
    expect(isVmpilotError(err, code as never)).toBe(true);
    expect((err as Error).message).toContain('cores must be an integer');
  });

  it('maps a refused connection to VMP_UNREACHABLE', async () => {
    const url = await serve(() => undefined);
    await new Promise((r) => server!.close(r));
    server = null;
    const err = await new HttpControlPlane({ server: url, token: 't' }).register(reg).catch((e: unknown) => e);
    expect(isVmpilotError(err, 'VMP_UNREACHABLE')).toBe(true);
  });

  it('aborts an open match', async () => {
    const url = await serve((req, _b, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/v1/register') res.end(JSON.stringify({ pilotId: 1, credential: 'c', heartbeatIntervalSec: 5, matchWaitMaxSec: 30, serverTime: 0 }));
      // match: never answer
    });
    const cp = new HttpControlPlane({ server: url, token: 't' });
    await cp.register(reg);
    const abort = new AbortController();
    const p = cp.match({ freeCores: 1, totalCores: 1, freeMemoryMb: 1, remainingSec: null, holding: [], waitSec: 30 }, abort.signal).catch((e: unknown) => e);
    await new Promise((r) => setImmediate(r));
    abort.abort();
    const err = await p;
    expect(isVmpilotError(err, 'VMP_UNREACHABLE')).toBe(true);
    expect((err as { details: { aborted?: boolean } }).details.aborted).toBe(true);
  });
});
