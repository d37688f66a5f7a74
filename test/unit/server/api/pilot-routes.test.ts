import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HeartbeatReply, MatchReply, ReportsReply } from '../../../../src/protocol/index.js';
import { paths } from '../../../../src/protocol/paths.js';
import { heartbeat, matchRequest } from '../helpers.js';
import { ADMIN, PILOT, bearer, harness, type Harness } from './harness.js';

describe('pilot routes', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
  });
  afterEach(async () => h.close());

  it('answers health without a token', async () => {
    const r = await h.app.inject({ method: 'GET', url: paths.health });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ ok: true, protocol: 1 });
  });

  it('runs a payload through register → heartbeat → match → reports', async () => {
    const reg = await h.register();
    expect(reg).toMatchObject({ heartbeatIntervalSec: 60, matchWaitMaxSec: 20 });
    expect(reg.credential.length).toBeGreaterThan(20);
    const me = bearer(reg.credential);
    const payloadId = await h.submit({ command: ['/bin/echo', 'hi'], cores: { min: 2, max: 2, wholeNode: false } });

    const beat = await h.app.inject({ method: 'POST', url: paths.heartbeat(reg.pilotId), headers: me, payload: heartbeat() });
    expect(beat.statusCode).toBe(200);
    expect(beat.json<HeartbeatReply>()).toEqual({ intervalSec: 60, instructions: [] });
    expect((await h.store.getPilot(reg.pilotId))?.state).toBe('running');

    const match = await h.app.inject({ method: 'POST', url: paths.match(reg.pilotId), headers: me, payload: matchRequest() });
    expect(match.statusCode).toBe(200);
    expect(match.json<MatchReply>()).toEqual({
      payload: { id: payloadId, name: 'echo', group: 'default', command: ['/bin/echo', 'hi'], env: {}, cores: 2, memoryMb: null, wallSec: null },
      instructions: [],
      largestWaiting: null,
    });

    const reports = await h.app.inject({
      method: 'POST',
      url: paths.reports(reg.pilotId),
      headers: me,
      payload: {
        reports: [
          { seq: 1, at: 1, type: 'payload-started', payloadId, pid: 123 },
          { seq: 2, at: 2, type: 'payload-ended', payloadId, exitCode: 0, signal: null, outputTail: 'hi\n' },
        ],
      },
    });
    expect(reports.statusCode).toBe(200);
    expect(reports.json<ReportsReply>()).toEqual({ appliedSeq: 2, refused: [], instructions: [] });
    expect(await h.store.getPayload(payloadId)).toMatchObject({ state: 'done', exitCode: 0, outputTail: 'hi\n', pilotId: reg.pilotId });
  });

  it('hands an assigned payload out again when the pilot does not hold it', async () => {
    const reg = await h.register();
    const payloadId = await h.submit({ command: ['x'] });
    const ask = (holding: number[]) =>
      h.app.inject({ method: 'POST', url: paths.match(reg.pilotId), headers: bearer(reg.credential), payload: matchRequest({ holding }) });
    expect((await ask([])).json<MatchReply>().payload?.id).toBe(payloadId);
    expect((await ask([])).json<MatchReply>().payload?.id).toBe(payloadId);
    expect((await ask([payloadId])).json<MatchReply>().payload).toBeNull();
    expect((await h.store.getPayload(payloadId))?.attempts).toBe(1);
  });

  it('returns pending instructions in heartbeat and match replies until they are reported done', async () => {
    const reg = await h.register();
    const me = bearer(reg.credential);
    await h.submit({ command: ['x'] });
    const add = await h.app.inject({ method: 'POST', url: paths.instructions(reg.pilotId), headers: bearer(ADMIN), payload: { type: 'drain', reason: 'maintenance' } });
    expect(add.statusCode).toBe(201);
    const ins = add.json<{ instruction: { id: number } }>().instruction;
    const beat = await h.app.inject({ method: 'POST', url: paths.heartbeat(reg.pilotId), headers: me, payload: heartbeat() });
    expect(beat.json<HeartbeatReply>().instructions).toEqual([{ id: ins.id, type: 'drain', reason: 'maintenance' }]);
    const match = await h.app.inject({ method: 'POST', url: paths.match(reg.pilotId), headers: me, payload: matchRequest() });
    expect(match.json<MatchReply>()).toEqual({ payload: null, instructions: [{ id: ins.id, type: 'drain', reason: 'maintenance' }], largestWaiting: null });
    const done = await h.app.inject({
      method: 'POST',
      url: paths.reports(reg.pilotId),
      headers: me,
      payload: { reports: [{ seq: 1, at: 1, type: 'instruction-done', instructionId: ins.id, ok: true }] },
    });
    expect(done.json<ReportsReply>().instructions).toEqual([]);
  });

  it('tells a pilot to kill a payload it was never given, and counts the report as delivered', async () => {
    const a = await h.register('a');
    const b = await h.register('b');
    const payloadId = await h.submit({ command: ['x'] });
    await h.app.inject({ method: 'POST', url: paths.match(a.pilotId), headers: bearer(a.credential), payload: matchRequest() });
    const r = await h.app.inject({
      method: 'POST',
      url: paths.reports(b.pilotId),
      headers: bearer(b.credential),
      payload: { reports: [{ seq: 1, at: 1, type: 'payload-started', payloadId }] },
    });
    const reply = r.json<ReportsReply>();
    expect(reply.appliedSeq).toBe(1);
    expect(reply.refused).toMatchObject([{ seq: 1, code: 'VMP_PAYLOAD_NOT_YOURS' }]);
    expect(reply.instructions).toMatchObject([{ type: 'kill-payload', payloadId }]);
    expect((await h.store.getPayload(payloadId))?.state).toBe('assigned');
  });

  it('applies a resent batch once: the duplicate seqs change nothing', async () => {
    const reg = await h.register();
    const payloadId = await h.submit({ command: ['x'] });
    await h.app.inject({ method: 'POST', url: paths.match(reg.pilotId), headers: bearer(reg.credential), payload: matchRequest() });
    const batch = {
      reports: [
        { seq: 1, at: 1, type: 'payload-started', payloadId },
        { seq: 2, at: 2, type: 'payload-ended', payloadId, exitCode: 1, signal: null },
      ],
    };
    const send = () => h.app.inject({ method: 'POST', url: paths.reports(reg.pilotId), headers: bearer(reg.credential), payload: batch });
    await send();
    const before = await h.snapshot();
    const again = await send();
    expect(again.json<ReportsReply>()).toEqual({ appliedSeq: 2, refused: [], instructions: [] });
    expect(await h.snapshot()).toEqual(before);
  });

  it('requeues an unstarted payload when its pilot shuts down', async () => {
    const reg = await h.register();
    const payloadId = await h.submit({ command: ['x'] });
    await h.app.inject({ method: 'POST', url: paths.match(reg.pilotId), headers: bearer(reg.credential), payload: matchRequest() });
    await h.app.inject({
      method: 'POST',
      url: paths.reports(reg.pilotId),
      headers: bearer(reg.credential),
      payload: { reports: [{ seq: 1, at: 1, type: 'shutdown', code: 300, message: 'No more work' }] },
    });
    expect(await h.store.getPayload(payloadId)).toMatchObject({ state: 'queued', pilotId: null });
    expect(await h.store.getPilot(reg.pilotId)).toMatchObject({ state: 'halted', shutdownCode: 300 });
  });

  describe('authentication', () => {
    it('refuses registration without a token, or with a wrong one (401)', async () => {
      for (const headers of [{}, bearer('nope'), { authorization: 'Basic abc' }, bearer(ADMIN)]) {
        const r = await h.app.inject({ method: 'POST', url: paths.register, headers, payload: { hostname: 'x', version: '1', cores: 1, memoryMb: 1 } });
        expect(r.statusCode).toBe(401);
        expect(r.json()).toMatchObject({ error: { code: 'VMP_UNAUTHORIZED' } });
      }
      expect(await h.store.listPilots({})).toEqual([]);
    });

    it('refuses a missing or unknown credential on pilot routes (401)', async () => {
      const reg = await h.register();
      for (const headers of [{}, bearer('not-a-credential')]) {
        const r = await h.app.inject({ method: 'POST', url: paths.heartbeat(reg.pilotId), headers, payload: heartbeat() });
        expect(r.statusCode).toBe(401);
        expect(r.json().error.code).toBe('VMP_UNAUTHORIZED');
      }
    });

    it("refuses pilot A on pilot B's routes (403), and changes nothing", async () => {
      const a = await h.register('a');
      const b = await h.register('b');
      await h.submit({ command: ['x'] });
      const before = await h.snapshot();
      for (const [url, payload] of [
        [paths.heartbeat(b.pilotId), heartbeat()],
        [paths.match(b.pilotId), matchRequest()],
        [paths.reports(b.pilotId), { reports: [{ seq: 1, at: 1, type: 'shutdown', code: 100, message: 'x' }] }],
      ] as const) {
        const r = await h.app.inject({ method: 'POST', url, headers: bearer(a.credential), payload });
        expect(r.statusCode).toBe(403);
        expect(r.json().error.code).toBe('VMP_FORBIDDEN');
      }
      expect(await h.snapshot()).toEqual(before);
    });

    it('refuses the admin and registration tokens on pilot routes (403)', async () => {
      const reg = await h.register();
      for (const token of [ADMIN, PILOT]) {
        const r = await h.app.inject({ method: 'POST', url: paths.heartbeat(reg.pilotId), headers: bearer(token), payload: heartbeat() });
        expect(r.statusCode).toBe(403);
      }
    });
  });
});
