import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Capabilities, MatchReply, PayloadView, PilotView, RegisterReply } from '../../../../src/protocol/index.js';
import { paths } from '../../../../src/protocol/paths.js';
import { heartbeat, matchRequest, registration } from '../helpers.js';
import { ADMIN, PILOT, bearer, harness, type Harness } from './harness.js';

const GPU_NODE: Capabilities = { arch: 'x86_64', cpuLevel: 3, platform: 'el9', site: 'CERN', tags: ['cvmfs'], gpus: [{ id: '0', model: 'T4', memoryMb: 15360 }, { id: '1', model: 'T4', memoryMb: 15360 }], scratchMb: 50_000 };
const CPU_NODE: Capabilities = { arch: 'x86_64', cpuLevel: 2, platform: 'debian12', site: 'RAL', tags: [], gpus: [], scratchMb: 50_000 };

describe('requirements and capabilities at the API', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness(0);
  });
  afterEach(async () => {
    await h.close();
  });
  const admin = (method: 'GET' | 'POST', url: string, payload?: object) => h.app.inject({ method, url, headers: bearer(ADMIN), ...(payload ? { payload } : {}) });
  const register = async (hostname: string, capabilities?: Capabilities) => {
    const r = await h.app.inject({ method: 'POST', url: paths.register, headers: bearer(PILOT), payload: registration({ hostname, ...(capabilities ? { capabilities } : {}) }) });
    expect(r.statusCode, r.body).toBe(201);
    return r.json<RegisterReply>();
  };
  const match = async (reg: RegisterReply, m: object = {}) =>
    (await h.app.inject({ method: 'POST', url: paths.match(reg.pilotId), headers: bearer(reg.credential), payload: matchRequest(m) })).json<MatchReply>();

  it('stores requirements normalised, shows them, and hands them to the pilot with the payload', async () => {
    const id = await h.submit({ command: ['train'], requirements: { gpus: 1, arch: ['amd64-v3'], site: ['CERN', 'CERN'] } });
    const view = (await admin('GET', paths.payload(id))).json<PayloadView>();
    expect(view.requirements).toEqual({ arch: ['x86_64-v3'], site: ['CERN'], gpus: 1 });
    const gpu = await register('gpu-1', GPU_NODE);
    const reply = await match(gpu, { freeGpus: ['0', '1'], freeScratchMb: 50_000 });
    expect(reply.payload).toMatchObject({ id, requirements: { arch: ['x86_64-v3'], site: ['CERN'], gpus: 1 } });
  });

  it('refuses a bad requirement naming the field, the value and what was expected, and queues nothing', async () => {
    const bad = await admin('POST', paths.payloads, { command: ['x'], requirements: { arch: ['x86_64-v9'] } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({ code: 'VMP_BAD_REQUEST' });
    expect(bad.json().error.message).toMatch(/^body\.requirements\.arch "x86_64-v9": expected an architecture/);
    const batch = await admin('POST', paths.payloadsBatch, { payloads: [{ command: ['a'] }, { command: ['b'], requirements: { gpuMemoryMb: 1000 } }] });
    expect(batch.statusCode).toBe(400);
    expect(batch.json().error.message).toMatch(/^body\.payloads\[1\]\.requirements\.gpuMemoryMb 1000: expected gpus as well/);
    const typo = await admin('POST', paths.payloads, { command: ['x'], requirements: { gpu: 1 } });
    expect(typo.statusCode).toBe(400);
    expect(typo.json().error.message).toMatch(/requirements must NOT have additional property "gpu"/);
    expect(await h.store.listPayloads({})).toEqual([]);
  });

  it('matches each payload only to a pilot whose capabilities meet it, and counts its free GPUs', async () => {
    const cpu = await register('cpu-1', CPU_NODE);
    const gpu = await register('gpu-1', GPU_NODE);
    const onGpu = await h.submit({ command: ['train'], requirements: { gpus: 2 } });
    expect((await match(cpu)).payload).toBeNull();
    // one GPU free is not enough for two
    expect((await match(gpu, { freeGpus: ['1'] })).payload).toBeNull();
    expect((await match(gpu, { freeGpus: ['0', '1'] })).payload?.id).toBe(onGpu);
    const atRal = await h.submit({ command: ['reco'], requirements: { site: ['RAL'] } });
    expect((await match(gpu, { holding: [onGpu] })).payload).toBeNull();
    expect((await match(cpu)).payload?.id).toBe(atRal);
  });

  it('takes back a GPU payload its pilot gave back for want of a free GPU: queued again, no attempt counted, no eviction', async () => {
    const gpu = await register('gpu-1', GPU_NODE);
    const id = await h.submit({ command: ['train'], requirements: { gpus: 1 } });
    expect((await match(gpu, { freeGpus: ['0'] })).payload?.id).toBe(id);
    // as the agent reports it when its GPUs were taken meanwhile (agent/matcher/requirements.ts)
    const reason = 'not started: needs a GPU free (this node: 0 free of 2)';
    const sent = await h.app.inject({
      method: 'POST',
      url: paths.reports(gpu.pilotId),
      headers: bearer(gpu.credential),
      payload: { reports: [{ seq: 1, at: h.clock.now(), type: 'payload-released', payloadId: id, reason }] },
    });
    expect(sent.statusCode, sent.body).toBe(200);
    expect((await admin('GET', paths.payload(id))).json<PayloadView>()).toMatchObject({ state: 'queued', pilotId: null, attempts: 0, evictions: 0, evictedCoreSec: 0 });
    const history = (await admin('GET', paths.payloadHistory(id))).json<{ state: string; reason: string }[]>();
    expect(history.map((e) => e.state)).toEqual(['queued', 'assigned', 'queued']);
    expect(history.at(-1)!.reason).toBe(`released by pilot ${gpu.pilotId}: ${reason}`);
    // handed out again once a GPU is free: its first attempt
    expect((await match(gpu, { freeGpus: ['1'] })).payload?.id).toBe(id);
    expect((await admin('GET', paths.payload(id))).json<PayloadView>()).toMatchObject({ state: 'assigned', attempts: 1, evictions: 0 });
  });

  it('keeps the capabilities a heartbeat brings, and shows them in the pilot view', async () => {
    const reg = await register('node-1');
    expect((await admin('GET', paths.pilot(reg.pilotId))).json<PilotView>().capabilities).toBeUndefined();
    const tagged = await h.submit({ command: ['x'], requirements: { tag: ['cvmfs'] } });
    expect((await match(reg)).payload).toBeNull();
    const beat = await h.app.inject({ method: 'POST', url: paths.heartbeat(reg.pilotId), headers: bearer(reg.credential), payload: heartbeat({ capabilities: { tags: ['cvmfs'] } }) });
    expect(beat.statusCode, beat.body).toBe(200);
    expect((await admin('GET', paths.pilot(reg.pilotId))).json<PilotView>().capabilities).toEqual({ tags: ['cvmfs'] });
    expect((await match(reg)).payload?.id).toBe(tagged);
  });

  it('says in the payload view why no live pilot can run a queued payload', async () => {
    const id = await h.submit({ command: ['train'], requirements: { gpus: 1 } });
    expect((await admin('GET', paths.payload(id))).json<PayloadView>().waiting).toBe('no live pilot');
    await register('cpu-1', CPU_NODE);
    expect((await admin('GET', paths.payload(id))).json<PayloadView>().waiting).toBe('no live pilot has a GPU (live pilots: no GPU)');
    const gpu = await register('gpu-1', GPU_NODE);
    expect((await admin('GET', paths.payload(id))).json<PayloadView>().waiting).toBeNull();
    // a list does not compute it, and a payload no longer queued has none
    expect((await admin('GET', paths.payloads)).json<PayloadView[]>()[0]).not.toHaveProperty('waiting');
    await match(gpu, { freeGpus: ['0'] });
    expect((await admin('GET', paths.payload(id))).json<PayloadView>()).not.toHaveProperty('waiting');
  });

  it('says a payload of a group that requires isolation waits for a pilot that isolates', async () => {
    const secure = await harness(0, { isolationPolicy: new Set(['secure']) });
    try {
      const id = await secure.submit({ command: ['x'], group: 'secure' });
      const open = await secure.submit({ command: ['x'], group: 'open' });
      const reg = (isolation: 'none' | 'slot-users') =>
        secure.app.inject({ method: 'POST', url: paths.register, headers: bearer(PILOT), payload: registration({ hostname: `node-${isolation}`, isolation }) });
      expect((await reg('none')).statusCode).toBe(201);
      const view = (p: number) => secure.app.inject({ method: 'GET', url: paths.payload(p), headers: bearer(ADMIN) }).then((r) => r.json<PayloadView>());
      expect((await view(id)).waiting).toBe('no live pilot has payload isolation (live pilots: isolation none)');
      expect((await view(open)).waiting).toBeNull();
      expect((await reg('slot-users')).statusCode).toBe(201);
      expect((await view(id)).waiting).toBeNull();
    } finally {
      await secure.close();
    }
  });
});
