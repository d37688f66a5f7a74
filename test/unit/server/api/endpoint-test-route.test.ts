import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { paths } from '../../../../src/protocol/paths.js';
import { resourcePrefix } from '../../../../src/server/director/credential.js';
import { FakeCloud, FakeDriver } from '../../../../src/server/director/drivers/fake.js';
import { Director } from '../../../../src/server/director/loop.js';
import { buildApp } from '../../../../src/server/api/app.js';
import { sha256Hex } from '../../../../src/server/api/auth.js';
import { openSqliteStore } from '../../../../src/server/store/sqlite.js';
import { FakeClock } from '../../../../src/shared/clock.js';
import { tempDir } from '../helpers.js';
import { silentLogger } from '../../../../src/shared/log.js';
import { endpoint } from '../director/fixtures.js';
import { ADMIN, PILOT, bearer, harness, type Harness } from './harness.js';

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

/** An app with a director over a fake cloud (one endpoint, "a"), on a real SQLite file and a fake clock. */
async function withDirector(): Promise<Harness & { cloud: FakeCloud; director: Director }> {
  const ep = endpoint('a');
  const tmp = tempDir();
  const store = openSqliteStore(path.join(tmp.dir, 'server.db'));
  const clock = new FakeClock();
  const cloud = new FakeCloud(clock);
  const director = new Director({
    store,
    clock,
    log: silentLogger(),
    endpoints: [ep],
    drivers: new Map([['a', new FakeDriver(cloud, resourcePrefix('t', 'a'))]]),
    everyMs: 1000,
    directorId: 't',
    serverUrl: 'http://127.0.0.1:9',
    demandPolicy: { shares: new Map(), defaultShare: 1, defaultWallSec: 3600 },
  });
  const app = buildApp({ store, clock, log: silentLogger(), tokens: { adminHash: sha256Hex(ADMIN), pilotHash: sha256Hex(PILOT) }, heartbeatIntervalSec: 60, matchWaitMaxSec: 20, director, endpoints: [ep] });
  await app.ready();
  return {
    app,
    store,
    clock,
    cloud,
    director,
    close: async () => {
      await director.close();
      await app.close();
      await store.close();
      tmp.remove();
    },
  } as unknown as Harness & { cloud: FakeCloud; director: Director };
}

describe('POST /v1/endpoints/:name/test', () => {
  it('answers VMP_CONFLICT when no director runs', async () => {
    h = await harness();
    const r = await h.app.inject({ method: 'POST', url: paths.endpointTest('a'), headers: bearer(ADMIN), payload: {} });
    expect(r.statusCode).toBe(409);
    expect(r.json()).toMatchObject({ error: { code: 'VMP_CONFLICT', message: expect.stringContaining('no director runs') } });
  });

  it('answers VMP_NOT_FOUND for an endpoint that is not configured, naming those that are', async () => {
    h = await withDirector();
    const r = await h.app.inject({ method: 'POST', url: paths.endpointTest('nope'), headers: bearer(ADMIN), payload: {} });
    expect(r.statusCode).toBe(404);
    expect(r.json()).toMatchObject({ error: { code: 'VMP_NOT_FOUND', message: 'no endpoint "nope"; configured: a' } });
  });

  it('wants the admin token, and refuses a body that does not fit, naming the field', async () => {
    h = await withDirector();
    const anon = await h.app.inject({ method: 'POST', url: paths.endpointTest('a'), payload: {} });
    expect(anon.statusCode).toBe(401);
    const pilot = await h.app.inject({ method: 'POST', url: paths.endpointTest('a'), headers: bearer(PILOT), payload: {} });
    expect(pilot.json().error.code).toMatch(/VMP_UNAUTHORIZED|VMP_FORBIDDEN/);
    const bad = await h.app.inject({ method: 'POST', url: paths.endpointTest('a'), headers: bearer(ADMIN), payload: { timeoutSec: 0 } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toContain('timeoutSec');
    const extra = await h.app.inject({ method: 'POST', url: paths.endpointTest('a'), headers: bearer(ADMIN), payload: { shapes: 'x' } });
    expect(extra.statusCode).toBe(400);
  });

  it('streams NDJSON, a line per stage as it ends, then the last line: a listing that fails stops at credentials', async () => {
    const w = await withDirector();
    h = w;
    w.cloud.failList = true;
    const r = await w.app.inject({ method: 'POST', url: paths.endpointTest('a'), headers: bearer(ADMIN), payload: {} });
    expect(r.statusCode, r.body).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/x-ndjson/);
    const lines = r.body.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toMatchObject([
      { stage: 'config', ok: true },
      { stage: 'credentials', ok: false, detail: 'fake cloud: listing failed', hints: [expect.stringContaining('workDir')] },
      { done: true, ok: false, instanceId: null },
    ]);
  });

  it('a create the driver refuses: the create line carries its words, the instance on the real store is failed, then deleted', async () => {
    const w = await withDirector();
    h = w;
    w.cloud.failCreates = ['quota exceeded for instances: requested 1, used 10 of 10'];
    w.director.start();
    const reply = w.app.inject({ method: 'POST', url: paths.endpointTest('a'), headers: bearer(ADMIN), payload: { timeoutSec: 600 } });
    let done = false;
    void reply.then(() => (done = true));
    for (let i = 0; i < 2000 && !done; i++) {
      await w.clock.advance(250);
      for (let k = 0; k < 5; k++) await new Promise((r) => setImmediate(r));
    }
    const r = await reply;
    const lines = r.body.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.stage ?? 'done')).toEqual(['config', 'credentials', 'create', 'deleted', 'done']);
    expect(lines[2]).toMatchObject({ ok: false, detail: expect.stringContaining('quota exceeded for instances: requested 1, used 10 of 10') });
    expect(lines[3]).toMatchObject({ ok: true, detail: expect.stringMatching(/^cleanup: instance \d+ deleted/) });
    const id = lines[4]!.instanceId as number;
    expect((await w.store.getInstance(id))!.state).toBe('deleted');
    expect((await w.store.instanceHistory(id)).map((e) => e.state)).toEqual(['requested', 'failed', 'deleted']);
  });
});
