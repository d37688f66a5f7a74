/**
 * What the relay's unit tests talk to: the real API (fastify, SQLite in a
 * temporary file) listening on 127.0.0.1, in this process, with the real
 * clock (long polls really wait); and the relay's parts wired to it.
 */
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { paths } from '../../../src/protocol/paths.js';
import { buildApp } from '../../../src/server/api/app.js';
import { sha256Hex } from '../../../src/server/api/auth.js';
import type { ApiLimits } from '../../../src/server/api/limits.js';
import { relaysFrom } from '../../../src/server/relay-config.js';
import { openSqliteStore } from '../../../src/server/store/sqlite.js';
import { systemClock } from '../../../src/shared/clock.js';
import { silentLogger } from '../../../src/shared/log.js';
import { PilotForwarder } from '../../../src/relay/forward.js';
import { Upstream } from '../../../src/relay/upstream.js';
import { tempDir } from '../server/helpers.js';

export const ADMIN = 'admin-token-of-the-relay-tests';
export const PILOT = 'pilot-token-of-the-relay-tests';
export const RELAY_TOKEN = 'relay-token-of-the-relay-tests';

/** The real API on 127.0.0.1:0, knowing RELAY_TOKEN as relay login01 of site TEST. */
export async function liveServer(matchWaitMaxSec = 20, limits: Partial<ApiLimits> = {}) {
  const tmp = tempDir();
  const store = openSqliteStore(path.join(tmp.dir, 'server.db'));
  const app = buildApp({
    store,
    clock: systemClock,
    log: silentLogger(),
    tokens: { adminHash: sha256Hex(ADMIN), pilotHash: sha256Hex(PILOT) },
    heartbeatIntervalSec: 60,
    matchWaitMaxSec,
    relays: relaysFrom({ tokens: [{ name: 'login01', site: 'TEST', sha256: sha256Hex(RELAY_TOKEN) }] }, 'test'),
    limits,
  });
  let connections = 0;
  let closed = 0;
  app.server.on('connection', (socket) => {
    connections++;
    socket.on('close', () => closed++);
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const call = async (method: string, route: string, body?: unknown, token = ADMIN) => {
    const res = await fetch(url + route, { method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as unknown) : null };
  };
  return {
    url,
    store,
    app,
    /** TCP connections the server accepted so far. */
    connections: () => connections,
    /** Of those, the ones closed since. */
    closed: () => closed,
    submit: async (command: string[]) => ((await call('POST', paths.payloads, { command })).body as { id: number }).id,
    call,
    close: async () => {
      await app.close();
      await store.close();
      tmp.remove();
    },
  };
}

/** The relay's forwarder to `url`, with the relay token unless told otherwise. */
export function forwarderTo(url: string, relayToken: string | null = RELAY_TOKEN, o: { callSockets?: number } = {}) {
  const upstream = new Upstream({ server: url, relayToken, ...o });
  return { upstream, forwarder: new PilotForwarder(upstream, silentLogger()) };
}
