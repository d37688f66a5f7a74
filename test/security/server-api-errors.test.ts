/**
 * Attack (issue 11, point 9): bad input the API let through or answered
 * outside its documented error shape. Today `cores.min > cores.max` is
 * queued (the CLI refuses it, the API did not), and fastify's own refusals
 * (a path parameter too long: 414; a URL that does not decode; headers too
 * large) answer `{"error":"Bad Request","code":"FST_…"}`, which clients
 * branching on `error.code` cannot read.
 */
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, admin, killAll, startServer, tempDir } from '../integration/harness.js';

describe('security: the API refuses what does not fit, always in its error shape', () => {
  const tmp = tempDir('vmpilot-sec-err-');
  afterEach(() => killAll());
  afterAll(() => tmp.cleanup());

  it('refuses cores.min > cores.max, alone or in a batch, naming the field, and queues nothing', async () => {
    const server = await startServer(path.join(tmp.dir, 'a.db'));
    const api = admin(server.url);
    const one = await api.call<{ error: { code: string; message: string } }>('POST', '/v1/payloads', { command: ['x'], cores: { min: 8, max: 2, wholeNode: false } });
    expect(one.status).toBe(400);
    expect(one.body.error).toEqual({ code: 'VMP_BAD_REQUEST', message: 'body.cores.min (8) must not be larger than body.cores.max (2)' });
    const many = await api.call<{ error: { code: string; message: string } }>('POST', '/v1/payloads/batch', {
      payloads: [{ command: ['ok'] }, { command: ['x'], cores: { min: 3, max: 1, wholeNode: false } }],
    });
    expect(many.status).toBe(400);
    expect(many.body.error.message).toBe('body.payloads[1].cores.min (3) must not be larger than body.payloads[1].cores.max (1)');
    expect(await api.jobs()).toEqual([]);
    await server.stop();
  });

  it('answers a parameter too long (414), a URL that does not decode and headers too large as {error:{code,message}}', async () => {
    const server = await startServer(path.join(tmp.dir, 'b.db'));
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const long = await fetch(`${server.url}/v1/pilots/${'1'.repeat(500)}`, { headers: auth });
    expect(long.status).toBe(414);
    expect(await long.json()).toEqual({ error: { code: 'VMP_BAD_REQUEST', message: expect.stringMatching(/is too long/) } });
    const bad = await fetch(`${server.url}/v1/pilots/1%zz`, { headers: auth });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: { code: 'VMP_BAD_REQUEST', message: expect.stringMatching(/not a valid URL/) } });
    const big = await fetch(`${server.url}/v1/pilots`, { headers: { ...auth, 'x-big': 'x'.repeat(64 * 1024) } });
    expect(big.status).toBe(431);
    expect(await big.json()).toEqual({ error: { code: 'VMP_BAD_REQUEST', message: 'the request headers are too large' } });
    // and the server is none the worse
    expect((await fetch(`${server.url}/v1/health`)).status).toBe(200);
    await server.stop();
  });
});
