import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Authenticator, sha256Hex } from '../../../../src/server/api/auth.js';
import { installErrorHandlers } from '../../../../src/server/api/errors.js';
import { parseRange, registerAgentRoutes } from '../../../../src/server/delivery/agent-routes.js';
import { openSqliteStore, type SqliteStore } from '../../../../src/server/store/sqlite.js';
import { tempDir } from '../helpers.js';

const ADMIN = 'admin-token-for-agent-routes';
const PILOT = 'pilot-token-for-agent-routes';
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('GET /v1/agent/<file>', () => {
  let tmp: ReturnType<typeof tempDir>;
  let store: SqliteStore;
  let app: FastifyInstance;
  const exe = Buffer.from('#!/bin/sh\necho this is the agent\n'.repeat(100));

  beforeEach(async () => {
    tmp = tempDir();
    store = openSqliteStore(path.join(tmp.dir, 'server.db'));
    writeFileSync(path.join(tmp.dir, 'vmpilot-linux-x64'), exe);
    writeFileSync(path.join(tmp.dir, 'secret.txt'), 'not listed');
    writeFileSync(
      path.join(tmp.dir, 'agent-manifest.json'),
      JSON.stringify({ version: '9.8.7', files: [{ name: 'vmpilot-linux-x64', kind: 'executable', size: exe.length, sha256: sha(exe) }] }),
    );
    app = Fastify();
    installErrorHandlers(app);
    registerAgentRoutes(app, { auth: new Authenticator({ adminHash: sha256Hex(ADMIN), pilotHash: sha256Hex(PILOT) }, store) }, tmp.dir);
    await app.ready();
  });
  afterEach(async () => {
    await app.close();
    await store.close();
    tmp.remove();
  });

  it('serves the manifest and the files it lists, with their sha256 and version', async () => {
    const m = await app.inject({ url: '/v1/agent/agent-manifest.json', headers: bearer(PILOT) });
    expect(m.statusCode).toBe(200);
    expect(m.json()).toMatchObject({ version: '9.8.7', files: [{ name: 'vmpilot-linux-x64', sha256: sha(exe) }] });

    const f = await app.inject({ url: '/v1/agent/vmpilot-linux-x64', headers: bearer(ADMIN) });
    expect(f.statusCode).toBe(200);
    expect(sha(f.rawPayload)).toBe(sha(exe));
    expect(f.headers['x-vmpilot-sha256']).toBe(sha(exe));
    expect(f.headers['x-vmpilot-version']).toBe('9.8.7');

    const c = await app.inject({ url: '/v1/agent/vmpilot-linux-x64.sha256', headers: bearer(PILOT) });
    expect(c.body).toBe(`${sha(exe)}  vmpilot-linux-x64\n`);
  });

  it('resumes a download from a byte offset', async () => {
    const r = await app.inject({ url: '/v1/agent/vmpilot-linux-x64', headers: { ...bearer(PILOT), range: 'bytes=1000-' } });
    expect(r.statusCode).toBe(206);
    expect(r.headers['content-range']).toBe(`bytes 1000-${exe.length - 1}/${exe.length}`);
    expect(Buffer.compare(r.rawPayload, exe.subarray(1000))).toBe(0);
    const past = await app.inject({ url: '/v1/agent/vmpilot-linux-x64', headers: { ...bearer(PILOT), range: `bytes=${exe.length}-` } });
    expect(past.statusCode).toBe(416);
  });

  it('refuses callers without a valid token and files the manifest does not list', async () => {
    expect((await app.inject({ url: '/v1/agent/vmpilot-linux-x64' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/v1/agent/vmpilot-linux-x64', headers: bearer('wrong') })).statusCode).toBe(401);
    for (const name of ['secret.txt', '..%2Fserver.db', '%2Fetc%2Fpasswd']) {
      const r = await app.inject({ url: `/v1/agent/${name}`, headers: bearer(PILOT) });
      expect(r.statusCode, name).toBe(404);
      expect(r.json().error.message).toMatch(/vmpilot-linux-x64/);
    }
  });

  it('says the agent is not built when there is no manifest', async () => {
    const empty = tempDir();
    const bare = Fastify();
    installErrorHandlers(bare);
    registerAgentRoutes(bare, { auth: new Authenticator({ adminHash: sha256Hex(ADMIN), pilotHash: sha256Hex(PILOT) }, store) }, empty.dir);
    const r = await bare.inject({ url: '/v1/agent/agent-manifest.json', headers: bearer(PILOT) });
    expect(r.statusCode).toBe(404);
    expect(r.json().error.message).toMatch(/npm run build/);
    await bare.close();
    empty.remove();
  });
});

describe('parseRange', () => {
  it('reads one range and refuses one past the end', () => {
    expect(parseRange(undefined, 10)).toBeNull();
    expect(parseRange('bytes=3-', 10)).toEqual({ start: 3, end: 9 });
    expect(parseRange('bytes=3-4', 10)).toEqual({ start: 3, end: 4 });
    expect(parseRange('bytes=10-', 10)).toBe('bad');
    expect(parseRange('bytes=0-1,5-6', 10)).toBeNull();
  });
});
