import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** The dashboard's browser module, loaded in node: it needs only fetch (node's) and sessionStorage. */
interface DashboardLib {
  api(method: string, path: string, body?: unknown): Promise<unknown>;
  setToken(t: string | null): void;
  whenUnauthorized(f: (message: string) => void): void;
}

const store = new Map<string, string>();
const sessionStorage = { getItem: (k: string) => store.get(k) ?? null, setItem: (k: string, v: string) => void store.set(k, v), removeItem: (k: string) => void store.delete(k) };

let server: http.Server;
let base = '';
let lib: DashboardLib;

beforeAll(async () => {
  (globalThis as { sessionStorage?: unknown }).sessionStorage = sessionStorage;
  // a real HTTP server answering as the admin API does: its error envelope, whatever the message says
  server = http.createServer((req, res) => {
    const [status, code, message] = req.url === '/refused' ? [401, 'VMP_UNAUTHORIZED', 'the token is not valid'] : [409, 'VMP_CONFLICT', 'unauthorized'];
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code, message } }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const file = '../../../../src/server/dashboard/lib.js';
  lib = (await import(file)) as DashboardLib;
  lib.setToken('tok');
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

describe('the dashboard API call', () => {
  it("rejects with the server's code, so a refused token is told apart by code, not by message text", async () => {
    const signedOut: string[] = [];
    lib.whenUnauthorized((m) => signedOut.push(m));
    await expect(lib.api('GET', `${base}/refused`)).rejects.toMatchObject({ code: 'VMP_UNAUTHORIZED' });
    expect(signedOut).toEqual(['The token was refused: the token is not valid']);
    // a conflict whose message happens to read "unauthorized" is a conflict: it is shown, and nobody is signed out
    await expect(lib.api('POST', `${base}/conflict`, {})).rejects.toMatchObject({ code: 'VMP_CONFLICT', message: 'unauthorized' });
    expect(signedOut).toHaveLength(1);
  });
});
