import path from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { RegisterReply } from '../../src/protocol/index.js';
import { paths, routes } from '../../src/protocol/paths.js';
import { buildApp } from '../../src/server/api/app.js';
import { sha256Hex } from '../../src/server/api/auth.js';
import { openSqliteStore } from '../../src/server/store/sqlite.js';
import { FakeClock } from '../../src/shared/clock.js';
import { silentLogger } from '../../src/shared/log.js';
import { ADMIN_TOKEN, PILOT_TOKEN, killAll, startServer, tempDir } from '../integration/harness.js';
import { matchRequest, registration } from '../unit/server/helpers.js';
import { hostileRequest, type FuzzTargets, type HostileRequest } from './fuzz-requests.js';

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'] as const;

/** Every row of every table of the SQLite file, as one string: the store's records, all of them. */
function snapshotOf(file: string): () => string {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  const tables = () => db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>;
  return () => JSON.stringify(tables().map(({ name }) => [name, db.prepare(`SELECT * FROM "${name}" ORDER BY rowid`).all()]));
}

/** A caller: send one request, get its status. */
type Send = (r: HostileRequest) => Promise<{ status: number; body: string }>;

/** Records to aim at: two pilots, payloads queued, assigned and running. Returns the targets. */
async function seed(send: Send, endpoints: Array<[string, string]>): Promise<FuzzTargets> {
  const json = { 'content-type': 'application/json' };
  const call = async (method: string, url: string, token: string, body: unknown) => {
    const r = await send({ route: url, method, url, headers: { ...json, authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
    if (r.status >= 300) throw new Error(`${method} ${url} → ${r.status} ${r.body}`);
    return JSON.parse(r.body) as unknown;
  };
  const pilots = [
    (await call('POST', paths.register, PILOT_TOKEN, registration({ hostname: 'a' }))) as RegisterReply,
    (await call('POST', paths.register, PILOT_TOKEN, registration({ hostname: 'b' }))) as RegisterReply,
  ];
  const payloadIds: number[] = [];
  for (let i = 0; i < 3; i++) payloadIds.push(((await call('POST', paths.payloads, ADMIN_TOKEN, { command: ['/bin/true'] })) as { id: number }).id);
  const [a] = pilots;
  const claimed = (await call('POST', paths.match(a!.pilotId), a!.credential, matchRequest({ waitSec: 0 }))) as { payload: { id: number } };
  await call('POST', paths.reports(a!.pilotId), a!.credential, { reports: [{ seq: 1, at: 1, type: 'payload-started', payloadId: claimed.payload.id }] });
  await call('POST', paths.match(a!.pilotId), a!.credential, matchRequest({ waitSec: 0, holding: [claimed.payload.id] }));
  return { endpoints, pilotIds: pilots.map((p) => p.pilotId), payloadIds, tokens: [ADMIN_TOKEN, PILOT_TOKEN, ...pilots.map((p) => p.credential)] };
}

/** Fire `runs` hostile requests; fail on a 5xx, or on any change to the records by a 4xx. Returns hits per route. */
async function fuzz(send: Send, snapshot: () => string, targets: FuzzTargets, runs: number, seed?: number): Promise<Map<string, Set<number>>> {
  const seen = new Map<string, Set<number>>();
  await fc.assert(
    fc.asyncProperty(hostileRequest(targets), async (req) => {
      const before = snapshot();
      const res = await send(req);
      const statuses = seen.get(req.route) ?? new Set<number>();
      statuses.add(res.status);
      seen.set(req.route, statuses);
      expect(res.status, `${req.method} ${req.url} → ${res.status} ${res.body.slice(0, 300)}`).toBeLessThan(500);
      if (res.status >= 400) expect(snapshot() === before, `${req.method} ${req.url} → ${res.status} changed the records`).toBe(true);
      if (res.status >= 400 && req.method !== 'HEAD') expect(res.body, 'a 4xx names what was wrong').toMatch(/\S/);
    }),
    { numRuns: runs, ...(seed === undefined ? {} : { seed }), endOnFailure: false },
  );
  return seen;
}

/** Every route of `routes` was hit, and got past authentication at least once (a 2xx or a validation error). */
function expectEveryRouteCovered(seen: Map<string, Set<number>>) {
  for (const route of Object.values(routes)) {
    const statuses = [...(seen.get(route) ?? [])];
    expect(statuses.length, `route ${route} was never fuzzed`).toBeGreaterThan(0);
    expect(statuses.some((s) => s < 300 || s === 400 || s === 404 || s === 409 || s === 413 || s === 415), `route ${route} never got past authentication: ${statuses.join(',')}`).toBe(true);
  }
}

describe('fault: hostile input to every route from a property-based fuzzer', () => {
  const tmp = tempDir('vmpilot-fault-fuzz-');
  let app: FastifyInstance | null = null;
  afterEach(async () => {
    await app?.close();
    killAll();
  });
  afterAll(() => tmp.cleanup());

  it('in-process: thousands of requests, never a 500, never a change to the records on a 4xx', async () => {
    const file = path.join(tmp.dir, 'inject.db');
    const store = openSqliteStore(file);
    app = buildApp({
      store,
      clock: new FakeClock(),
      log: silentLogger(),
      tokens: { adminHash: sha256Hex(ADMIN_TOKEN), pilotHash: sha256Hex(PILOT_TOKEN) },
      heartbeatIntervalSec: 60,
      matchWaitMaxSec: 0,
    });
    await app.ready();
    const endpoints: Array<[string, string]> = [];
    for (const route of Object.values(routes)) {
      const registered = METHODS.filter((method) => app!.hasRoute({ method, url: route }));
      expect(registered, `route ${route} of src/protocol/paths.ts is not served`).not.toEqual([]);
      for (const m of registered) endpoints.push([m, route]);
      if (!registered.includes('DELETE')) endpoints.push(['DELETE', route]); // a method the route does not have
    }
    const send: Send = async (r) => {
      const res = await app!.inject({ method: r.method as 'GET', url: r.url, headers: r.headers, ...(r.body === undefined ? {} : { payload: r.body }) });
      return { status: res.statusCode, body: res.body };
    };
    const targets = await seed(send, endpoints);
    const seen = await fuzz(send, snapshotOf(file), targets, 4000);
    expectEveryRouteCovered(seen);
    await app.close();
    app = null;
    await store.close();
  });

  it('over real sockets against the built server: never a 500, never a change on a 4xx', async () => {
    const file = path.join(tmp.dir, 'socket.db');
    const server = await startServer(file, ['--match-wait-max', '1']);
    const endpoints: Array<[string, string]> = [];
    for (const route of Object.values(routes)) for (const m of ['GET', 'POST']) endpoints.push([m, route]);
    const send: Send = async (r) => {
      const res = await fetch(server.url + r.url, { method: r.method, headers: r.headers, body: r.body });
      return { status: res.status, body: await res.text() };
    };
    const targets = await seed(send, endpoints);
    // every route about 15 times (twice as many routes as methods): enough that each gets past authentication
    const seen = await fuzz(send, snapshotOf(file), targets, Math.max(800, endpoints.length * 15));
    expectEveryRouteCovered(seen);
    expect(server.child.exitCode, server.stderr().slice(-2000)).toBeNull();
    await server.stop();
  });
});
