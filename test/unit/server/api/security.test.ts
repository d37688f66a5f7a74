import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HeartbeatReply, RegisterReply } from '../../../../src/protocol/index.js';
import { paths } from '../../../../src/protocol/paths.js';
import { buildApp } from '../../../../src/server/api/app.js';
import { sha256Hex } from '../../../../src/server/api/auth.js';
import { openSqliteStore } from '../../../../src/server/store/sqlite.js';
import { FakeClock } from '../../../../src/shared/clock.js';
import { silentLogger } from '../../../../src/shared/log.js';
import { heartbeat, matchRequest, registration, tempDir } from '../helpers.js';
import { ADMIN, PILOT, bearer, harness, type Harness } from './harness.js';

/** Every route a caller can try, with a body that would be valid for the route's owner. */
function everyRoute(pilotId: number, payloadId: number) {
  return [
    { method: 'POST', url: paths.heartbeat(pilotId), payload: heartbeat({ payloads: [{ id: payloadId, state: 'running', cores: 1 }] }) },
    { method: 'POST', url: paths.match(pilotId), payload: matchRequest() },
    {
      method: 'POST',
      url: paths.reports(pilotId),
      payload: { reports: [{ seq: 99, at: 1, type: 'payload-ended', payloadId, exitCode: 1, signal: null }] },
    },
    { method: 'POST', url: paths.reports(pilotId), payload: { reports: [{ seq: 98, at: 1, type: 'shutdown', code: 100, message: 'x' }] } },
    { method: 'POST', url: paths.instructions(pilotId), payload: { type: 'halt' } },
    { method: 'POST', url: paths.payloadKill(payloadId), payload: {} },
    { method: 'GET', url: paths.pilot(pilotId) },
    { method: 'GET', url: paths.pilotHistory(pilotId) },
    { method: 'GET', url: paths.pilots },
    { method: 'GET', url: paths.payload(payloadId) },
    { method: 'GET', url: `${paths.payloads}?pilot=${pilotId}` },
    { method: 'POST', url: paths.payloads, payload: { command: ['evil'] } },
    { method: 'POST', url: paths.payloadsBatch, payload: { payloads: [{ command: ['evil'] }] } },
    { method: 'GET', url: paths.accounting },
    { method: 'GET', url: paths.usage },
    { method: 'GET', url: paths.metrics },
    { method: 'POST', url: paths.register, payload: registration() },
  ] as const;
}

describe('per-pilot credentials', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness(0);
  });
  afterEach(async () => {
    await h.close();
  });

  it("let a pilot reach none of another pilot's records or payloads, nor any admin route, and change nothing", async () => {
    const victim = await h.register('victim');
    const intruder = await h.register('intruder');
    const payloadId = await h.submit({ command: ['/bin/true'] });
    const claim = await h.app.inject({ method: 'POST', url: paths.match(victim.pilotId), headers: bearer(victim.credential), payload: matchRequest() });
    expect(claim.json().payload.id).toBe(payloadId);
    await h.app.inject({
      method: 'POST',
      url: paths.reports(victim.pilotId),
      headers: bearer(victim.credential),
      payload: { reports: [{ seq: 1, at: 1, type: 'payload-started', payloadId }] },
    });
    const before = await h.snapshot();
    const history = await h.store.pilotHistory(victim.pilotId);

    for (const route of everyRoute(victim.pilotId, payloadId)) {
      const r = await h.app.inject({ ...route, headers: bearer(intruder.credential) });
      expect([401, 403, 404], `${route.method} ${route.url} → ${r.statusCode}`).toContain(r.statusCode);
    }
    expect(await h.snapshot()).toEqual(before);
    expect(await h.store.pilotHistory(victim.pilotId)).toEqual(history);
    expect(await h.store.pendingInstructions(intruder.pilotId)).toEqual([]);
  });

  it("refuse a pilot's reports about another pilot's payload on its own routes, and leave that payload alone", async () => {
    const victim = await h.register('victim');
    const intruder = await h.register('intruder');
    const payloadId = await h.submit({ command: ['/bin/true'] });
    await h.app.inject({ method: 'POST', url: paths.match(victim.pilotId), headers: bearer(victim.credential), payload: matchRequest() });
    const payloadBefore = await h.store.getPayload(payloadId);
    const victimBefore = await h.store.getPilot(victim.pilotId);
    const me = bearer(intruder.credential);
    const r = await h.app.inject({
      method: 'POST',
      url: paths.reports(intruder.pilotId),
      headers: me,
      payload: {
        reports: [
          { seq: 1, at: 1, type: 'payload-started', payloadId },
          { seq: 2, at: 2, type: 'payload-ended', payloadId, exitCode: 0, signal: null },
        ],
      },
    });
    expect(r.json().refused.map((x: { code: string }) => x.code)).toEqual(['VMP_PAYLOAD_NOT_YOURS', 'VMP_PAYLOAD_NOT_YOURS']);
    // told to kill what it claims to run
    expect(r.json().instructions).toMatchObject([{ type: 'kill-payload', payloadId }]);
    const beat = await h.app.inject({
      method: 'POST',
      url: paths.heartbeat(intruder.pilotId),
      headers: me,
      payload: heartbeat({ payloads: [{ id: payloadId, state: 'running', cores: 1 }] }),
    });
    expect(beat.json<HeartbeatReply>().instructions.filter((i) => i.type === 'kill-payload')).toHaveLength(1);
    expect(await h.store.getPayload(payloadId)).toEqual(payloadBefore);
    expect(await h.store.getPilot(victim.pilotId)).toEqual(victimBefore);
    expect(await h.store.pendingInstructions(victim.pilotId)).toEqual([]);
  });

  it('let the registration token register and do nothing else', async () => {
    const victim = await h.register('victim');
    const payloadId = await h.submit({ command: ['/bin/true'] });
    const before = await h.snapshot();
    for (const route of everyRoute(victim.pilotId, payloadId).filter((r) => r.url !== paths.register)) {
      const r = await h.app.inject({ ...route, headers: bearer(PILOT) });
      expect([401, 403], `${route.method} ${route.url}`).toContain(r.statusCode);
    }
    expect(await h.snapshot()).toEqual(before);
  });

  it('let the admin token reach every admin route, but not register or act as a pilot', async () => {
    const p = await h.register();
    const payloadId = await h.submit({ command: ['/bin/true'] });
    for (const route of everyRoute(p.pilotId, payloadId)) {
      const r = await h.app.inject({ ...route, headers: bearer(ADMIN) });
      const pilotRoute = /heartbeat|match|reports|register/.test(route.url);
      if (pilotRoute) expect([401, 403], `${route.method} ${route.url}`).toContain(r.statusCode);
      else expect(r.statusCode, `${route.method} ${route.url}: ${r.body}`).toBeLessThan(300);
    }
  });

  it('expire a credential and renew it through heartbeats, the old one valid until its own expiry', async () => {
    const ttl = 600;
    const app = buildApp({
      store: h.store,
      clock: h.clock,
      log: h.app.log as never,
      tokens: { adminHash: sha256Hex(ADMIN), pilotHash: sha256Hex(PILOT) },
      heartbeatIntervalSec: 60,
      matchWaitMaxSec: 0,
      credentialTtlSec: ttl,
    });
    const reg = (await app.inject({ method: 'POST', url: paths.register, headers: bearer(PILOT), payload: registration() })).json<RegisterReply>();
    expect(reg.credentialExpiresAt).toBe(h.clock.now() + ttl * 1000);
    const beat = (cred: string) => app.inject({ method: 'POST', url: paths.heartbeat(reg.pilotId), headers: bearer(cred), payload: heartbeat() });

    // early in its life: no new credential
    expect((await beat(reg.credential)).json<HeartbeatReply>().credential).toBeUndefined();
    // past half its life: a new one, valid for a full ttl
    await h.clock.advance((ttl / 2 + 1) * 1000);
    const renewed = (await beat(reg.credential)).json<HeartbeatReply>();
    expect(renewed.credential).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    expect(renewed.credentialExpiresAt).toBe(h.clock.now() + ttl * 1000);
    // the old one still works until it expires, then only the new one does
    expect((await beat(reg.credential)).statusCode).toBe(200);
    await h.clock.advance((ttl / 2) * 1000);
    const old = await beat(reg.credential);
    expect(old.statusCode).toBe(401);
    expect(old.json().error.message).toMatch(/expired/);
    expect((await beat(renewed.credential!)).statusCode).toBe(200);
    // a credential nobody renews expires
    await h.clock.advance(ttl * 1000 + 1);
    expect((await beat(renewed.credential!)).statusCode).toBe(401);
    await app.close();
  });

  it('stores credentials and tokens only as sha256 hashes: no row of the database holds one in plain text', async () => {
    const tmp = tempDir();
    const file = path.join(tmp.dir, 'server.db');
    const store = openSqliteStore(file);
    const clock = new FakeClock();
    const ttl = 600;
    const app = buildApp({
      store,
      clock,
      log: silentLogger(),
      tokens: { adminHash: sha256Hex(ADMIN), pilotHash: sha256Hex(PILOT) },
      heartbeatIntervalSec: 60,
      matchWaitMaxSec: 0,
      credentialTtlSec: ttl,
    });
    try {
      const reg = (await app.inject({ method: 'POST', url: paths.register, headers: bearer(PILOT), payload: registration() })).json<RegisterReply>();
      const beat = (cred: string) => app.inject({ method: 'POST', url: paths.heartbeat(reg.pilotId), headers: bearer(cred), payload: heartbeat() });
      // past half its life the credential is renewed: both the first and the new one are on record
      await clock.advance((ttl / 2 + 1) * 1000);
      const renewed = (await beat(reg.credential)).json<HeartbeatReply>().credential!;
      expect(renewed).toMatch(/^[A-Za-z0-9_-]{40,}$/);
      expect((await beat(renewed)).statusCode).toBe(200);
      const id = (await app.inject({ method: 'POST', url: paths.payloads, headers: bearer(ADMIN), payload: { command: ['true'] } })).json<{ id: number }>().id;
      expect(id).toBeGreaterThan(0);

      const db = new Database(file, { readonly: true });
      try {
        const secrets = { 'first credential': reg.credential, 'renewed credential': renewed, 'admin token': ADMIN, 'registration token': PILOT };
        const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[];
        expect(tables.map((t) => t.name)).toContain('pilots');
        const found: string[] = [];
        let cells = 0;
        for (const { name } of tables) {
          for (const row of db.prepare(`SELECT * FROM "${name}"`).all() as Record<string, unknown>[]) {
            for (const [column, value] of Object.entries(row)) {
              cells++;
              const text = Buffer.isBuffer(value) ? value.toString('latin1') : String(value);
              for (const [what, secret] of Object.entries(secrets)) if (text.includes(secret)) found.push(`${what} in ${name}.${column}`);
            }
          }
        }
        expect(cells).toBeGreaterThan(20);
        expect(found).toEqual([]);
        // what is there is the hash of each credential, which is how the server finds the pilot
        const pilot = db.prepare('SELECT credential_hash, prev_credential_hash FROM pilots WHERE id = ?').get(reg.pilotId);
        expect(pilot).toEqual({ credential_hash: sha256Hex(renewed), prev_credential_hash: sha256Hex(reg.credential) });
      } finally {
        db.close();
      }
    } finally {
      await app.close();
      await store.close();
      tmp.remove();
    }
  });
});
