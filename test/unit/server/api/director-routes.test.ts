import { afterEach, describe, expect, it } from 'vitest';
import type { DirectorStatusReply, EndpointView, InstanceCostEntry, InstanceDetailReply, InstanceView, StartInstancesReply, StopInstancesReply } from '../../../../src/protocol/index.js';
import { paths } from '../../../../src/protocol/paths.js';
import { resourcePrefix } from '../../../../src/server/director/credential.js';
import { FakeCloud, FakeDriver } from '../../../../src/server/director/drivers/fake.js';
import { Director } from '../../../../src/server/director/loop.js';
import { silentLogger } from '../../../../src/shared/log.js';
import { endpoint } from '../director/fixtures.js';
import { ADMIN, PILOT, bearer, harness, type Harness } from './harness.js';

let h: Harness | null = null;
let base: Harness | null = null;
afterEach(async () => {
  await h?.close();
  await base?.close();
  h = null;
  base = null;
});

describe('director routes without endpoints', () => {
  it('listings are empty, the status says there is no director, and every POST says no endpoints are configured', async () => {
    h = await harness(0);
    const get = (url: string) => h!.app.inject({ method: 'GET', url, headers: bearer(ADMIN) });
    expect((await get(paths.endpoints)).json()).toEqual([]);
    expect((await get(`${paths.instances}?state=booting&state=registered,halted`)).json()).toEqual([]);
    expect((await get(paths.director)).json<DirectorStatusReply>()).toEqual({ directorId: null, running: false, everySec: null, endpoints: [], lastCycle: null });
    for (const [url, payload] of [
      [paths.instances, { endpoint: 'laptop' }],
      [paths.instancesStop, { ids: [1] }],
      [paths.endpointDisable('laptop'), {}],
      [paths.endpointEnable('laptop'), {}],
    ] as const) {
      const r = await h.app.inject({ method: 'POST', url, headers: bearer(ADMIN), payload });
      expect(r.statusCode, url).toBe(409);
      expect(r.json().error).toMatchObject({ code: 'VMP_CONFLICT', message: expect.stringContaining('no endpoints are configured in serve --config') });
    }
  });

  it('a bad state is a 400 naming the valid ones; the routes need the admin token', async () => {
    h = await harness(0);
    const bad = await h.app.inject({ method: 'GET', url: `${paths.instances}?state=booting,running`, headers: bearer(ADMIN) });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toBe('query.state "running" is not an instance state (requested, starting, booting, registered, halted, failed, deleted)');
    for (const url of [paths.endpoints, paths.instances, paths.director, paths.accountingInstances]) {
      expect((await h.app.inject({ method: 'GET', url })).statusCode, url).toBe(401);
      expect((await h.app.inject({ method: 'GET', url, headers: bearer(PILOT) })).statusCode, url).toBe(401);
    }
    const body = await h.app.inject({ method: 'POST', url: paths.instances, headers: bearer(ADMIN), payload: { endpoint: 'laptop', count: 0 } });
    expect(body.statusCode).toBe(400);
    expect(body.json().error.message).toMatch(/count/);
  });
});

describe('director routes with a director on the SQLite store', () => {
  async function withDirector() {
    const endpoints = [endpoint('laptop', { limits: { instances: 2 } }), endpoint('hpc')];
    base = await harness(0);
    const cloud = new FakeCloud(base.clock);
    const director = new Director({
      store: base.store,
      clock: base.clock,
      log: silentLogger(),
      endpoints,
      drivers: new Map(endpoints.map((e) => [e.name, new FakeDriver(cloud, resourcePrefix('test', e.name))])),
      directorId: 'test',
      serverUrl: () => 'http://127.0.0.1:9',
      demandPolicy: { shares: new Map(), defaultShare: 1, defaultWallSec: 3600 },
    });
    h = await harness(0, { store: base.store, clock: base.clock, director, endpoints });
    return { director, cloud, store: base.store };
  }
  const call = (method: 'GET' | 'POST', url: string, payload?: object) => h!.app.inject({ method, url, headers: bearer(ADMIN), ...(payload ? { payload } : {}) });

  it('starts by hand up to the limit, refuses past it naming it, lists and shows the instances, and stops them', async () => {
    const { director } = await withDirector();
    const started = await call('POST', paths.instances, { endpoint: 'laptop', count: 2 });
    expect(started.statusCode, started.body).toBe(201);
    const made = started.json<StartInstancesReply>().instances;
    expect(made.map((i) => [i.endpoint, i.shape, i.state, i.manual])).toEqual([
      ['laptop', 's', 'requested', true],
      ['laptop', 's', 'requested', true],
    ]);
    const past = await call('POST', paths.instances, { endpoint: 'laptop' });
    expect(past.statusCode).toBe(409);
    expect(past.json().error.message).toBe('endpoint laptop: limits.instances is 2 and 2 are live; 1 more would pass it');
    const unknown = await call('POST', paths.instances, { endpoint: 'nowhere' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error.message).toBe('no endpoint "nowhere"; configured: laptop, hpc');

    await director.cycle(); // created at the fake cloud
    const listed = (await call('GET', `${paths.instances}?state=starting&state=booting&endpoint=laptop`)).json<InstanceView[]>();
    expect(listed.map((i) => i.id)).toEqual([made[1]!.id, made[0]!.id]); // newest first
    const one = (await call('GET', paths.instance(made[0]!.id))).json<InstanceDetailReply>();
    expect(one.history.map((h) => h.state)).toEqual(['requested', one.state]);
    expect(one).not.toHaveProperty('credentialHash');
    expect((await call('GET', paths.instance(999))).statusCode).toBe(404);

    const stopped = await call('POST', paths.instancesStop, { ids: [made[0]!.id, 999] });
    expect(stopped.json<StopInstancesReply>().results.map((r) => r.outcome)).toEqual(['stopping', 'unknown']);
    await director.cycle();
    expect((await call('GET', paths.instance(made[0]!.id))).json<InstanceDetailReply>().state).toBe('deleted');

    const status = (await call('GET', paths.director)).json<DirectorStatusReply>();
    expect(status).toMatchObject({ directorId: 'test', running: false, everySec: 5, endpoints: ['laptop', 'hpc'] });
    expect(status.lastCycle?.actions.some((a) => a.kind === 'delete' && a.instanceId === made[0]!.id)).toBe(true);
  });

  it('accounting/instances: the instances by group started for and endpoint, by hand under (by hand), deleted ones included', async () => {
    const { director, store } = await withDirector();
    expect((await call('GET', paths.accountingInstances)).json()).toEqual([]);
    await call('POST', paths.instances, { endpoint: 'hpc', count: 2 });
    await director.cycle();
    const [one] = await store.listInstances({ endpoint: 'hpc' });
    await call('POST', paths.instancesStop, { ids: [one!.id] });
    await director.cycle(); // deleted: still counted
    const rows = (await call('GET', paths.accountingInstances)).json<InstanceCostEntry[]>();
    expect(rows).toEqual([{ group: '(by hand)', endpoint: 'hpc', instances: 2, instanceHours: expect.any(Number), coreHours: expect.any(Number), cost: 0 }]);
    expect(rows[0]!.coreHours).toBeCloseTo(rows[0]!.instanceHours * 4, 9);
  });

  it('disables and enables an endpoint (kept in the store), and lists it with its live instances', async () => {
    const { director, store } = await withDirector();
    await call('POST', paths.instances, { endpoint: 'hpc' });
    const off = await call('POST', paths.endpointDisable('hpc'));
    expect(off.json()).toEqual({ name: 'hpc', enabled: false, disabledByOperator: true });
    expect([...(await store.disabledEndpoints())]).toEqual(['hpc']);
    const refused = await call('POST', paths.instances, { endpoint: 'hpc' });
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error.message).toContain('endpoint hpc is disabled');
    const list = (await call('GET', paths.endpoints)).json<EndpointView[]>();
    expect(list.map((e) => [e.name, e.enabled, e.live.instances])).toEqual([
      ['laptop', true, 0],
      ['hpc', false, 1],
    ]);
    expect((await call('POST', paths.endpointDisable('nowhere'))).statusCode).toBe(404);
    await call('POST', paths.endpointEnable('hpc'));
    expect((await store.disabledEndpoints()).size).toBe(0);
    await director.close();
  });
});
