import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PayloadView, PilotView } from '../../../../src/protocol/index.js';
import { paths } from '../../../../src/protocol/paths.js';
import { heartbeat } from '../helpers.js';
import { ADMIN, PILOT, bearer, harness, type Harness } from './harness.js';

describe('admin routes', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
  });
  afterEach(async () => h.close());

  const admin = bearer(ADMIN);

  it('submits with defaults and lists the payload', async () => {
    const r = await h.app.inject({ method: 'POST', url: paths.payloads, headers: admin, payload: { command: ['/opt/bin/analyse', '-v'] } });
    expect(r.statusCode).toBe(201);
    const { id } = r.json<{ id: number }>();
    const one = await h.app.inject({ method: 'GET', url: paths.payload(id), headers: admin });
    expect(one.json<PayloadView>()).toMatchObject({
      id,
      name: 'analyse',
      group: 'default',
      cores: { min: 1, max: 1, wholeNode: false },
      priority: 0,
      state: 'queued',
      outputTail: null,
    });
    const list = await h.app.inject({ method: 'GET', url: `${paths.payloads}?state=queued`, headers: admin });
    expect(list.json<PayloadView[]>().map((p) => p.id)).toEqual([id]);
  });

  it('filters the list by state, group, pilot and limit, newest first', async () => {
    await h.submit({ command: ['a'], group: 'atlas' });
    await h.submit({ command: ['b'], group: 'cms' });
    await h.submit({ command: ['c'], group: 'cms' });
    const get = async (q: string) =>
      (await h.app.inject({ method: 'GET', url: `${paths.payloads}?${q}`, headers: admin })).json<PayloadView[]>().map((p) => p.name);
    expect(await get('group=cms')).toEqual(['c', 'b']);
    expect(await get('group=cms&limit=1')).toEqual(['c']);
    expect(await get('state=done')).toEqual([]);
    expect(await get('pilot=1')).toEqual([]);
  });

  it('refuses a limit or pilot id too large to be an exact integer with a 400 naming it (the fuzzer found a 500)', async () => {
    for (const q of ['limit=99999999999999999999', 'pilot=99999999999999999999']) {
      const r = await h.app.inject({ method: 'GET', url: `${paths.payloads}?${q}`, headers: admin });
      expect(r.statusCode, q).toBe(400);
      expect(r.json().error.message).toContain(q.split('=')[0]);
    }
    const r = await h.app.inject({ method: 'GET', url: paths.payload(Number('9999999999999999')), headers: admin });
    expect(r.statusCode).toBe(400);
  });

  it('lists pilots with the cores the server assigned, and those their last heartbeat reported', async () => {
    const reg = await h.register('wn-7');
    await h.app.inject({
      method: 'POST',
      url: paths.heartbeat(reg.pilotId),
      headers: bearer(reg.credential),
      payload: heartbeat({ cores: { total: 4, used: 3, free: 1 } }),
    });
    const list = await h.app.inject({ method: 'GET', url: paths.pilots, headers: admin });
    // nothing assigned by this server: 0 used; the heartbeat's figure beside it
    expect(list.json<PilotView[]>()).toMatchObject([{ id: reg.pilotId, hostname: 'wn-7', state: 'running', cores: 4, coresUsed: 0, coresReported: 3 }]);
    const one = await h.app.inject({ method: 'GET', url: paths.pilot(reg.pilotId), headers: admin });
    expect(one.json<PilotView>().lastHeartbeatAt).toBe(h.clock.now());
    // the one pilot comes with its last heartbeat as it was sent
    expect(one.json<PilotView>().lastHeartbeat?.cores).toEqual({ total: 4, used: 3, free: 1 });
    // the list does not carry it
    expect(list.json<PilotView[]>()[0]).not.toHaveProperty('lastHeartbeat');
  });

  it('says 404 for an unknown payload, pilot or route, with the error envelope', async () => {
    for (const url of [paths.payload(999), paths.pilot(999), '/v1/nothing-here']) {
      const r = await h.app.inject({ method: 'GET', url, headers: admin });
      expect(r.statusCode).toBe(404);
      expect(r.json().error.code).toBe('VMP_NOT_FOUND');
    }
    const ins = await h.app.inject({ method: 'POST', url: paths.instructions(999), headers: admin, payload: { type: 'ping' } });
    expect(ins.statusCode).toBe(404);
  });

  it('adds an instruction for a pilot and returns it with its id', async () => {
    const reg = await h.register();
    const r = await h.app.inject({ method: 'POST', url: paths.instructions(reg.pilotId), headers: admin, payload: { type: 'halt', code: 100, reason: 'end of run' } });
    expect(r.statusCode).toBe(201);
    expect(r.json()).toEqual({ instruction: { id: expect.any(Number), type: 'halt', code: 100, reason: 'end of run' } });
    expect(await h.store.pendingInstructions(reg.pilotId)).toHaveLength(1);
  });

  describe('authentication', () => {
    it('refuses every token but the admin token (401)', async () => {
      const reg = await h.register();
      const cases: [Record<string, string>, number][] = [
        [{}, 401],
        [bearer('wrong'), 401],
        [bearer(reg.credential), 401],
        [bearer(PILOT), 401],
      ];
      for (const [headers, status] of cases) {
        const r = await h.app.inject({ method: 'POST', url: paths.payloads, headers, payload: { command: ['x'] } });
        expect(r.statusCode).toBe(status);
        expect(r.json().error.code).toBe(status === 401 ? 'VMP_UNAUTHORIZED' : 'VMP_FORBIDDEN');
        const list = await h.app.inject({ method: 'GET', url: paths.pilots, headers });
        expect(list.statusCode).toBe(status);
      }
      expect(await h.store.listPayloads({})).toEqual([]);
    });
  });

  it('answers 401, not 400, to a bad body without a valid token', async () => {
    const r = await h.app.inject({ method: 'POST', url: paths.payloads, headers: bearer('wrong'), payload: { colour: 'red' } });
    expect(r.statusCode).toBe(401);
  });

  describe('validation', () => {
    const bad: [string, object, RegExp][] = [
      ['a core count below 1', { command: ['x'], cores: { min: 0, max: 1, wholeNode: false } }, /^body\.cores\.min must be >= 1$/],
      ['an unknown field', { command: ['x'], colour: 'red' }, /^body must NOT have additional property "colour"$/],
      ['a string where a number belongs', { command: ['x'], priority: '5' }, /^body\.priority must be integer$/],
      ['a missing command', { name: 'x' }, /^body must have property "command"$/],
      ['an empty command', { command: [] }, /^body\.command must NOT have fewer than 1 items$/],
      ['a bad memory value', { command: ['x'], memoryMb: 'lots' }, /^body\.memoryMb must be integer or null$/],
      ['a bad env name', { command: ['x'], env: { '1A': 'x' } }, /^body\.env/],
      ['a non-string argument', { command: ['x', 3] }, /^body\.command\[1\] must be string$/],
    ];
    for (const [what, payload, message] of bad) {
      it(`refuses ${what} with 400 naming the field, and submits nothing`, async () => {
        const r = await h.app.inject({ method: 'POST', url: paths.payloads, headers: admin, payload });
        expect(r.statusCode).toBe(400);
        expect(r.json().error.code).toBe('VMP_BAD_REQUEST');
        expect(r.json().error.message).toMatch(message);
        expect(await h.store.listPayloads({})).toEqual([]);
      });
    }

    it('refuses a bad report and applies none of the batch', async () => {
      const reg = await h.register();
      const payloadId = await h.submit({ command: ['x'] });
      const before = await h.snapshot();
      const r = await h.app.inject({
        method: 'POST',
        url: paths.reports(reg.pilotId),
        headers: bearer(reg.credential),
        payload: {
          reports: [
            { seq: 1, at: 1, type: 'shutdown', code: 100, message: 'ok' },
            { seq: 2, at: 2, type: 'payload-ended', payloadId, exitCode: 'zero', signal: null },
          ],
        },
      });
      expect(r.statusCode).toBe(400);
      expect(r.json().error.message).toMatch(/^body\.reports\[1\]\.exitCode must be integer or null$/);
      expect(await h.snapshot()).toEqual(before);
    });

    it('refuses an instruction of an unknown type or with a stray field', async () => {
      const reg = await h.register();
      const unknown = await h.app.inject({ method: 'POST', url: paths.instructions(reg.pilotId), headers: admin, payload: { type: 'explode' } });
      expect(unknown.statusCode).toBe(400);
      expect(unknown.json().error.message).toMatch(/^body\.type must be one of "drain", "halt"/);
      const stray = await h.app.inject({ method: 'POST', url: paths.instructions(reg.pilotId), headers: admin, payload: { type: 'drain', code: 100 } });
      expect(stray.statusCode).toBe(400);
      expect(stray.json().error.message).toBe('body must NOT have additional property "code"');
      expect(await h.store.pendingInstructions(reg.pilotId)).toEqual([]);
    });

    it('refuses malformed JSON (400), another content type (415) and a huge body (413)', async () => {
      const json = await h.app.inject({ method: 'POST', url: paths.payloads, headers: { ...admin, 'content-type': 'application/json' }, payload: '{"command": [' });
      expect(json.statusCode).toBe(400);
      expect(json.json().error.code).toBe('VMP_BAD_REQUEST');
      const text = await h.app.inject({ method: 'POST', url: paths.payloads, headers: { ...admin, 'content-type': 'text/plain' }, payload: 'hello' });
      expect(text.statusCode).toBe(415);
      expect(text.json().error.code).toBe('VMP_BAD_REQUEST');
      const huge = await h.app.inject({ method: 'POST', url: paths.payloads, headers: admin, payload: { command: ['x'.repeat(2 * 1024 * 1024)] } });
      expect(huge.statusCode).toBe(413);
      expect(await h.store.listPayloads({})).toEqual([]);
    });

    it('refuses a pilot id that is not a number', async () => {
      const r = await h.app.inject({ method: 'GET', url: '/v1/pilots/abc', headers: admin });
      expect(r.statusCode).toBe(400);
      expect(r.json().error.message).toMatch(/^params\.pilotId/);
    });
  });
});
