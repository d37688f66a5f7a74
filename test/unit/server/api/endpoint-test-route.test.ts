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
async function withDirector(): Promise<Harness> {
  const ep = endpoint('a');
  const tmp = tempDir();
  const store = openSqliteStore(path.join(tmp.dir, 'server.db'));
  const clock = new FakeClock();
  const director = new Director({
    store,
    clock,
    log: silentLogger(),
    endpoints: [ep],
    drivers: new Map([['a', new FakeDriver(new FakeCloud(clock), resourcePrefix('t', 'a'))]]),
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
    close: async () => {
      await app.close();
      await store.close();
      tmp.remove();
    },
  } as unknown as Harness;
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
});
