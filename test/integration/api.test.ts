import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, admin, killAll, PILOT_TOKEN, startServer, tempDir, type Server } from './harness.js';

describe('the server refuses what does not fit, and changes nothing', () => {
  const tmp = tempDir();
  let server: Server;
  let api: ReturnType<typeof admin>;

  beforeAll(async () => {
    server = await startServer(path.join(tmp.dir, 'server.db'));
    api = admin(server.url);
    await api.submit({ command: ['true'], group: 'before' });
  });
  afterAll(async () => {
    await server?.stop();
    killAll();
    tmp.cleanup();
  });

  it('answers a bad body with 400 naming the field, and queues nothing', async () => {
    const before = await api.jobs();
    const cases: [unknown, RegExp][] = [
      [{ command: ['true'], cores: { min: 0, max: 1, wholeNode: false } }, /cores\.min/],
      [{ command: ['true'], cores: { min: '2', max: 2, wholeNode: false } }, /cores\.min/],
      [{ command: [] }, /command/],
      [{ cmd: ['true'] }, /command|cmd/],
      [{ command: ['true'], colour: 'blue' }, /colour/],
    ];
    for (const [body, field] of cases) {
      const r = await api.call<{ error: { code: string; message: string } }>('POST', '/v1/payloads', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.code).toBe('VMP_BAD_REQUEST');
      expect(r.body.error.message).toMatch(field);
    }
    expect(await api.jobs()).toEqual(before);
  });

  it('answers a pilot request with a bad body with 400 and registers nobody', async () => {
    const res = await fetch(`${server.url}/v1/register`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PILOT_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ hostname: 'h', version: '1', cores: -1, memoryMb: 10 }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/cores/);
    expect(await api.pilots()).toEqual([]);
  });

  it('answers a missing or wrong token with 401, and queues nothing', async () => {
    const before = await api.jobs();
    for (const token of ['wrong-token', PILOT_TOKEN, '']) {
      const r = await admin(server.url, token).call('POST', '/v1/payloads', { command: ['true'] });
      expect(r.status, `token "${token}"`).toBe(401);
    }
    const res = await fetch(`${server.url}/v1/payloads`);
    expect(res.status).toBe(401);
    const reg = await fetch(`${server.url}/v1/register`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}x`, 'content-type': 'application/json' },
      body: JSON.stringify({ hostname: 'h', version: '1', cores: 1, memoryMb: 10 }),
    });
    expect(reg.status).toBe(401);
    expect(await api.jobs()).toEqual(before);
    expect(await api.pilots()).toEqual([]);
  });
});
