import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { OverviewReply, PayloadView, PilotDetailReply, PilotView } from '../../../../src/protocol/index.js';
import { paths } from '../../../../src/protocol/paths.js';
import { coreSecByGroup, overviewGroups } from '../../../../src/server/api/overview-routes.js';
import { buildApp } from '../../../../src/server/api/app.js';
import { sha256Hex } from '../../../../src/server/api/auth.js';
import { openSqliteStore } from '../../../../src/server/store/sqlite.js';
import { FakeClock } from '../../../../src/shared/clock.js';
import { silentLogger } from '../../../../src/shared/log.js';
import path from 'node:path';
import { heartbeat, matchRequest, tempDir } from '../helpers.js';
import { ADMIN, PILOT, bearer, harness, type Harness } from './harness.js';

describe('what the dashboard reads: totals, counted and filtered pages, a pilot in detail', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness(0);
  });
  afterEach(async () => {
    await h.close();
  });
  const get = (url: string) => h.app.inject({ method: 'GET', url, headers: bearer(ADMIN) });

  it('counts every page of payloads, pages by offset either way, and finds by a name that holds no wildcard', async () => {
    const names = ['mc-a', 'mc-b', 'reco_1', 'reco%', 'mc-c'];
    const ids = [];
    for (const name of names) ids.push(await h.submit({ command: ['x'], name, group: name.startsWith('mc') ? 'atlas' : 'cms' }));
    const first = await get(`${paths.payloads}?limit=2&offset=0`);
    expect(first.headers['x-total-count']).toBe('5');
    expect(first.json<PayloadView[]>().map((p) => p.id)).toEqual([ids[4], ids[3]]);
    expect(first.headers.link).toBe(`<${paths.payloads}?limit=2&offset=2>; rel="next"`);
    const second = await get(`${paths.payloads}?limit=2&offset=2`);
    expect(second.json<PayloadView[]>().map((p) => p.id)).toEqual([ids[2], ids[1]]);
    const oldest = await get(`${paths.payloads}?limit=2&order=oldest`);
    expect(oldest.json<PayloadView[]>().map((p) => p.id)).toEqual([ids[0], ids[1]]);
    // the cursor of an oldest-first page names the ids above it
    expect(oldest.headers.link).toBe(`<${paths.payloads}?order=oldest&limit=2&cursor=${ids[1]}>; rel="next"`);
    expect((await get(`${paths.payloads}?limit=2&order=oldest&cursor=${ids[1]}`)).json<PayloadView[]>().map((p) => p.id)).toEqual([ids[2], ids[3]]);
    const group = await get(`${paths.payloads}?group=cms&state=queued`);
    expect(group.headers['x-total-count']).toBe('2');
    const wild = await get(`${paths.payloads}?name=${encodeURIComponent('%')}`);
    expect(wild.json<PayloadView[]>().map((p) => p.name)).toEqual(['reco%']);
    expect(wild.headers['x-total-count']).toBe('1');
    const underscore = await get(`${paths.payloads}?name=o_`);
    expect(underscore.json<PayloadView[]>().map((p) => p.name)).toEqual(['reco_1']);
    const both = await get(`${paths.payloads}?offset=2&cursor=3`);
    expect(both.statusCode).toBe(400);
    expect(both.json().error.message).toMatch(/query\.offset and query\.cursor/);
  });

  it('sorts payloads by a column the query names, paged by offset with the sort kept in the Link header; refuses a sort it has not', async () => {
    const ids = [];
    for (const name of ['b', 'c', 'a']) ids.push(await h.submit({ command: ['x'], name }));
    const first = await get(`${paths.payloads}?sort=name&limit=2`);
    expect(first.json<PayloadView[]>().map((p) => p.name)).toEqual(['a', 'b']);
    expect(first.headers.link).toBe(`<${paths.payloads}?sort=name&limit=2&offset=2>; rel="next"`);
    expect((await get(`${paths.payloads}?sort=name&limit=2&offset=2`)).json<PayloadView[]>().map((p) => p.name)).toEqual(['c']);
    expect((await get(`${paths.payloads}?sort=-name`)).json<PayloadView[]>().map((p) => p.name)).toEqual(['c', 'b', 'a']);
    const bad = await get(`${paths.payloads}?sort=command`);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toEqual({ code: 'VMP_BAD_REQUEST', message: expect.stringMatching(/^query\.sort "command" is not one of id, name, group, state, cores, pilot, exit, attempts, started, ended/) });
    expect((await get(`${paths.payloads}?sort=name&cursor=${ids[0]}`)).json().error.message).toMatch(/with query\.sort, page by query\.offset/);
    expect((await get(`${paths.payloads}?sort=name&order=oldest`)).json().error.message).toMatch(/query\.sort and query\.order cannot be given together/);
  });

  it('sorts pilots by a column the query names, paged by offset; refuses a sort it has not', async () => {
    for (const hostname of ['b.example', 'c.example', 'a.example']) await h.app.inject({ method: 'POST', url: paths.register, headers: bearer(PILOT), payload: { hostname, version: '0.1.0', cores: 2, memoryMb: 1000 } });
    const first = await get(`${paths.pilots}?sort=host&limit=2`);
    expect(first.json<PilotView[]>().map((p) => p.hostname)).toEqual(['a.example', 'b.example']);
    expect(first.headers.link).toBe(`<${paths.pilots}?sort=host&limit=2&offset=2>; rel="next"`);
    expect((await get(`${paths.pilots}?sort=-host`)).json<PilotView[]>().map((p) => p.hostname)).toEqual(['c.example', 'b.example', 'a.example']);
    const bad = await get(`${paths.pilots}?sort=labels`);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toMatch(/^query\.sort "labels" is not one of id, host, state, cores, heartbeat, shutdown/);
  });

  it('counts pilots in the states asked for and pages them by offset', async () => {
    const a = await h.register('node-a');
    await h.register('node-b');
    await h.register('node-c');
    await h.store.setPilotState(a.pilotId, 'halted', 'test', h.clock.now());
    const live = await get(`${paths.pilots}?state=submitted,booting,running&limit=1&offset=1`);
    expect(live.headers['x-total-count']).toBe('2');
    expect(live.json<PilotView[]>().map((p) => p.hostname)).toEqual(['node-b']);
    expect((await get(paths.pilots)).headers['x-total-count']).toBe('3');
  });

  it('gives totals: payloads and pilots by state, cores used and free, each queue with its oldest, shares against the last hour', async () => {
    const reg = await h.register();
    await h.app.inject({ method: 'POST', url: paths.heartbeat(reg.pilotId), headers: bearer(reg.credential), payload: heartbeat() });
    const a = await h.submit({ command: ['a'], group: 'atlas', cores: { min: 2, max: 2, wholeNode: false } });
    const queuedAt = h.clock.now();
    await h.clock.advance(1000);
    await h.submit({ command: ['b'], group: 'cms' });
    await h.submit({ command: ['c'], group: 'cms' });
    const m = await h.app.inject({ method: 'POST', url: paths.match(reg.pilotId), headers: bearer(reg.credential), payload: matchRequest({ freeCores: 2 }) });
    expect(m.json().payload.id).toBe(a);
    await h.app.inject({ method: 'POST', url: paths.reports(reg.pilotId), headers: bearer(reg.credential), payload: { reports: [{ seq: 1, at: h.clock.now(), type: 'payload-started', payloadId: a }] } });
    await h.clock.advance(60_000);
    const o = (await get(paths.overview)).json<OverviewReply>();
    expect(o.payloads).toEqual({ running: 1, queued: 2 });
    expect(o.pilots).toEqual({ running: 1 });
    expect(o.cores.used).toBe(2);
    expect(o.cores.free).toBe(o.cores.total - 2);
    expect(o.groups.map((g) => [g.group, g.queued, g.target, g.lastHour])).toEqual([['atlas', 0, 0.5, 1], ['cms', 2, 0.5, 0]]);
    expect(o.groups[1]!.oldestQueuedAt).toBe(queuedAt + 1000);
    expect(o.groups[0]!.lastHourCoreSec).toBeCloseTo(120, 0);
    expect(o.instances).toEqual([]);
    expect((await h.app.inject({ method: 'GET', url: paths.overview })).statusCode).toBe(401);
  });

  it("shows a pilot's instructions with their acknowledgement and its last heartbeat", async () => {
    const reg = await h.register();
    await h.app.inject({ method: 'POST', url: paths.instructions(reg.pilotId), headers: bearer(ADMIN), payload: { type: 'drain', reason: 'maintenance' } });
    let d = (await get(paths.pilotDetail(reg.pilotId))).json<PilotDetailReply>();
    expect(d.lastHeartbeat).toBeNull();
    expect(d.instructions).toMatchObject([{ instruction: { type: 'drain', reason: 'maintenance' }, doneAt: null, ok: null }]);
    await h.app.inject({ method: 'POST', url: paths.heartbeat(reg.pilotId), headers: bearer(reg.credential), payload: heartbeat({ load: [1.5, 1, 0.5], features: { hs06: 12.5 } }) });
    d = (await get(paths.pilotDetail(reg.pilotId))).json<PilotDetailReply>();
    expect(d.lastHeartbeat?.beat).toMatchObject({ load: [1.5, 1, 0.5], features: { hs06: 12.5 } });
    expect((await get(paths.pilotDetail(999))).statusCode).toBe(404);
  });

  it('measures the last hour as runs clipped to it, and targets as shares over the groups seen', () => {
    const used = coreSecByGroup(
      [
        { group: 'a', cores: 2, startedAt: 0, endedAt: 10_000 },
        { group: 'a', cores: 1, startedAt: 5_000, endedAt: null },
        { group: 'b', cores: 4, startedAt: -5_000, endedAt: 1_000 },
      ],
      0,
      10_000,
    );
    expect(Object.fromEntries(used)).toEqual({ a: 25, b: 4 });
    const groups = overviewGroups(new Map(), used, new Map([['a', 3], ['c', 1]]), 1);
    expect(groups.map((g) => [g.group, g.target])).toEqual([['a', 0.6], ['b', 0.2], ['c', 0.2]]);
  });
});

describe('conditional GETs of the admin API', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness(0);
  });
  afterEach(async () => {
    await h.close();
  });

  it('answers 304 with no body when the page did not change, and the new page once it did', async () => {
    await h.submit({ command: ['a'] });
    const first = await h.app.inject({ method: 'GET', url: `${paths.payloads}?limit=50&offset=0`, headers: bearer(ADMIN) });
    const etag = first.headers.etag as string;
    expect(etag).toMatch(/^"[0-9a-f]{16}"$/);
    const same = await h.app.inject({ method: 'GET', url: `${paths.payloads}?limit=50&offset=0`, headers: { ...bearer(ADMIN), 'if-none-match': etag } });
    expect(same.statusCode).toBe(304);
    expect(same.body).toBe('');
    expect(same.headers['x-total-count']).toBe('1');
    await h.submit({ command: ['b'] });
    const changed = await h.app.inject({ method: 'GET', url: `${paths.payloads}?limit=50&offset=0`, headers: { ...bearer(ADMIN), 'if-none-match': etag } });
    expect(changed.statusCode).toBe(200);
    expect(changed.json<PayloadView[]>()).toHaveLength(2);
    expect(changed.headers.etag).not.toBe(etag);
    // no token: still 401, whatever the ETag
    expect((await h.app.inject({ method: 'GET', url: `${paths.payloads}?limit=50&offset=0`, headers: { 'if-none-match': etag } })).statusCode).toBe(401);
  });
});

describe('the overview with a director and configured shares', () => {
  it('counts instances by endpoint and state when the server has a director, and takes the targets from the shares', async () => {
    const tmp = tempDir();
    const store = openSqliteStore(path.join(tmp.dir, 'server.db'));
    const app = buildApp({
      store,
      clock: new FakeClock(),
      log: silentLogger(),
      tokens: { adminHash: sha256Hex(ADMIN), pilotHash: sha256Hex('p') },
      heartbeatIntervalSec: 60,
      matchWaitMaxSec: 0,
      shares: new Map([['atlas', 70], ['cms', 30]]),
      instanceCounts: async () => [{ endpoint: 'cloud-a', state: 'running', count: 3 }],
    });
    try {
      const o = (await app.inject({ method: 'GET', url: paths.overview, headers: bearer(ADMIN) })).json<OverviewReply>();
      expect(o.instances).toEqual([{ endpoint: 'cloud-a', state: 'running', count: 3 }]);
      expect(o.groups.map((g) => [g.group, g.target, g.queued, g.oldestQueuedAt])).toEqual([['atlas', 0.7, 0, null], ['cms', 0.3, 0, null]]);
    } finally {
      await app.close();
      await store.close();
      tmp.remove();
    }
  });
});
