/**
 * Attack: a director instance's one-time registration credential (`vmpi_…`)
 * used again, or used after its instance failed, or by a machine whose
 * payloads try to reach other groups' work. Over real HTTP (buildApp
 * listening on 127.0.0.1) on a real SQLite file: the credential registers one
 * pilot, tied to its instance and its groups, and is worthless afterwards
 * (registration and agent files alike); that pilot is never handed a payload
 * of a group its instance does not serve, and the waiting reason says so.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { paths } from '../../src/protocol/paths.js';
import type { MatchReply, PayloadView, PilotView, RegisterReply } from '../../src/protocol/index.js';
import { buildApp } from '../../src/server/api/app.js';
import { Authenticator, sha256Hex } from '../../src/server/api/auth.js';
import { installErrorHandlers } from '../../src/server/api/errors.js';
import { credentialHash, randomSecrets } from '../../src/server/director/credential.js';
import type { NewInstance } from '../../src/server/director/ports.js';
import { registerAgentRoutes } from '../../src/server/delivery/agent-routes.js';
import { openSqliteStore, type SqliteStore } from '../../src/server/store/sqlite.js';
import { FakeClock } from '../../src/shared/clock.js';
import { silentLogger } from '../../src/shared/log.js';
import { heartbeat, matchRequest, registration, tempDir } from '../unit/server/helpers.js';

const ADMIN = 'admin-secret-token';
const PILOT = 'pilot-registration-token';

const draft = (key: string, credential: string, groups: string[] | null): NewInstance => ({
  key,
  endpoint: 'laptop',
  shape: 'small',
  cores: 4,
  memoryMb: 8000,
  forGroup: groups?.[0] ?? null,
  requirementClass: '',
  groups,
  credentialHash: credentialHash(credential),
  costPerHour: 0,
  manual: false,
});

interface World {
  url: string;
  store: SqliteStore;
  call: (method: string, route: string, token: string, body?: unknown) => Promise<{ status: number; json: () => Promise<unknown> }>;
}

const open: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of open.splice(0).reverse()) await close();
});

/** The server's API over real HTTP on 127.0.0.1, on a SQLite file. */
async function world(limits: Record<string, number> = {}): Promise<World> {
  const tmp = tempDir();
  const store = openSqliteStore(path.join(tmp.dir, 'server.db'));
  const app = buildApp({
    store,
    clock: new FakeClock(),
    log: silentLogger(),
    tokens: { adminHash: sha256Hex(ADMIN), pilotHash: sha256Hex(PILOT) },
    heartbeatIntervalSec: 60,
    matchWaitMaxSec: 20,
    limits,
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  open.push(async () => {
    await app.close();
    await store.close();
    tmp.remove();
  });
  return { url, store, call: caller(url) };
}

function caller(url: string): World['call'] {
  return async (method, route, token, body) => {
    const r = await fetch(`${url}${route}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await r.text();
    return { status: r.status, json: async () => JSON.parse(text) as unknown };
  };
}

const errorOf = async (r: { json: () => Promise<unknown> }) => ((await r.json()) as { error: { code: string; message: string } }).error;

describe('security: an instance credential registers one pilot, tied to its instance and its groups', () => {
  it('registers once; a second use, and a failed instance’s credential, are 401 with what to do; the instance names its pilot', async () => {
    const w = await world();
    const credential = randomSecrets.credential();
    const inst = await w.store.createInstance(draft('vmp-t-laptop-a', credential, ['atlas']), 1);

    const first = await w.call('POST', paths.register, credential, registration({ hostname: 'vm-1' }));
    expect(first.status).toBe(201);
    const reply = (await first.json()) as RegisterReply;
    // the pilot's own credential, not the instance's, is what it uses from now on
    expect(reply.credential).not.toBe(credential);
    expect(await w.store.getInstance(inst.id)).toMatchObject({ pilotId: reply.pilotId });
    const pilot = (await (await w.call('GET', paths.pilot(reply.pilotId), ADMIN)).json()) as PilotView;
    expect(pilot).toMatchObject({ hostname: 'vm-1', instanceId: inst.id, groups: ['atlas'] });
    // and it works as any pilot's: a heartbeat with it is accepted
    const hb = await w.call('POST', paths.heartbeat(reply.pilotId), reply.credential, heartbeat());
    expect(hb.status).toBe(200);

    const again = await w.call('POST', paths.register, credential, registration({ hostname: 'vm-evil' }));
    expect(again.status).toBe(401);
    const refusal = await errorOf(again);
    expect(refusal.code).toBe('VMP_UNAUTHORIZED');
    expect(refusal.message).toMatch(/instance credential was already used, or its instance is gone/);
    expect(refusal.message).toMatch(/start a new instance|shared registration token/);
    expect(await w.store.countPilots({})).toBe(1);

    // an instance that failed (a boot timeout) before its pilot came: its credential is worth nothing
    const late = randomSecrets.credential();
    const failed = await w.store.createInstance(draft('vmp-t-laptop-b', late, ['atlas']), 1);
    await w.store.updateInstance(failed.id, { state: 'failed', reason: 'boot-timeout: not running after 600 s' }, 2);
    const dead = await w.call('POST', paths.register, late, registration({ hostname: 'vm-2' }));
    expect(dead.status).toBe(401);
    expect((await errorOf(dead)).message).toMatch(/already used, or its instance is gone/);
    // nobody's credential of the right shape: the same answer, nothing learnt
    expect((await w.call('POST', paths.register, randomSecrets.credential(), registration())).status).toBe(401);
    // an instance credential is for registration only: not the admin API, not another pilot's routes
    expect((await w.call('GET', paths.pilots, randomSecrets.credential())).status).toBe(401);
    expect(await w.store.countPilots({})).toBe(1);
    expect((await w.store.getInstance(failed.id))?.pilotId).toBeNull();
  });

  it('two registrations sent at once with one credential make one pilot; the other is 401', async () => {
    const w = await world();
    const credential = randomSecrets.credential();
    const inst = await w.store.createInstance(draft('vmp-t-laptop-r', credential, ['atlas']), 1);
    const both = await Promise.all([1, 2].map((i) => w.call('POST', paths.register, credential, registration({ hostname: `vm-${i}` }))));
    expect(both.map((r) => r.status).sort()).toEqual([201, 401]);
    const loser = both.find((r) => r.status === 401)!;
    expect((await errorOf(loser)).message).toMatch(/already used, or its instance is gone/);
    const winner = (await both.find((r) => r.status === 201)!.json()) as RegisterReply;
    expect(await w.store.countPilots({})).toBe(1);
    expect((await w.store.getInstance(inst.id))?.pilotId).toBe(winner.pilotId);
  });

  it('is rate limited by address like the shared token', async () => {
    const w = await world({ registerBurstPerAddress: 1, registerPerSecPerAddress: 0.001 });
    expect((await w.call('POST', paths.register, PILOT, registration())).status).toBe(201);
    const credential = randomSecrets.credential();
    await w.store.createInstance(draft('vmp-t-laptop-c', credential, null), 1);
    const held = await w.call('POST', paths.register, credential, registration());
    expect(held.status).toBe(429);
    expect((await errorOf(held)).message).toMatch(/too many registrations from address 127\.0\.0\.1/);
    // held back, not spent
    expect(await w.store.instanceByCredential(credentialHash(credential))).not.toBeNull();
  });

  it('an instance pilot serving [atlas] is given the atlas payload and never the cms one queued before it', async () => {
    const w = await world();
    const credential = randomSecrets.credential();
    await w.store.createInstance(draft('vmp-t-laptop-d', credential, ['atlas']), 1);
    const reg = (await (await w.call('POST', paths.register, credential, registration())).json()) as RegisterReply;
    const submit = async (group: string, priority: number) =>
      ((await (await w.call('POST', paths.payloads, ADMIN, { command: ['true'], group, priority })).json()) as { id: number }).id;
    const cms = await submit('cms', 10); // more urgent, and first in the queue
    const atlas = await submit('atlas', 0);
    const match = async (pilotId: number, token: string, holding: number[] = []) =>
      (await (await w.call('POST', paths.match(pilotId), token, matchRequest({ waitSec: 0, holding, freeCores: 4 - holding.length }))).json()) as MatchReply;

    expect((await match(reg.pilotId, reg.credential)).payload).toMatchObject({ id: atlas, group: 'atlas' });
    // the cms payload is still there, and still not this pilot's
    expect((await match(reg.pilotId, reg.credential, [atlas])).payload).toBeNull();
    const waiting = (await (await w.call('GET', paths.payload(cms), ADMIN)).json()) as PayloadView;
    expect(waiting).toMatchObject({ state: 'queued' });
    expect(waiting.waiting).toBe('no live pilot has group cms (live pilots: groups atlas)');
    // a pilot of the shared token serves any group: it takes the cms payload, which was there to take all along
    const any = (await (await w.call('POST', paths.register, PILOT, registration({ hostname: 'any' }))).json()) as RegisterReply;
    expect((await match(any.pilotId, any.credential)).payload).toMatchObject({ id: cms, group: 'cms' });
  });

  it('an instance pilot serving [atlas] never reserves cores for a large cms payload; a pilot of any group does', async () => {
    const w = await world();
    const credential = randomSecrets.credential();
    await w.store.createInstance(draft('vmp-t-laptop-f', credential, ['atlas']), 1);
    const restricted = (await (await w.call('POST', paths.register, credential, registration({ cores: 8 }))).json()) as RegisterReply;
    const submitted = await w.call('POST', paths.payloads, ADMIN, { command: ['true'], group: 'cms', cores: { min: 8, max: 8, wholeNode: false } });
    expect(submitted.status).toBe(201);
    const busy = matchRequest({ waitSec: 0, freeCores: 2, totalCores: 8 });
    const mine = (await (await w.call('POST', paths.match(restricted.pilotId), restricted.credential, busy)).json()) as MatchReply;
    expect(mine.payload).toBeNull();
    expect(mine.largestWaiting ?? null).toBeNull();
    const any = (await (await w.call('POST', paths.register, PILOT, registration({ cores: 8 }))).json()) as RegisterReply;
    const theirs = (await (await w.call('POST', paths.match(any.pilotId), any.credential, busy)).json()) as MatchReply;
    expect(theirs.largestWaiting).toMatchObject({ cores: 8 });
  });
});

describe('security: the agent files take an unspent instance credential, never a spent one', () => {
  it('serves the manifest to a machine whose pilot has not registered, and refuses the credential once spent', async () => {
    const tmp = tempDir();
    const store = openSqliteStore(path.join(tmp.dir, 'server.db'));
    const exe = Buffer.from('#!/bin/sh\necho agent\n');
    writeFileSync(path.join(tmp.dir, 'vmpilot-linux-x64'), exe);
    const sha = createHash('sha256').update(exe).digest('hex');
    writeFileSync(path.join(tmp.dir, 'agent-manifest.json'), JSON.stringify({ version: '1.2.3', files: [{ name: 'vmpilot-linux-x64', kind: 'executable', size: exe.length, sha256: sha }] }));
    // closed with the test: a keep-alive connection of fetch's pool must not hold the close
    const app: FastifyInstance = Fastify({ forceCloseConnections: true });
    installErrorHandlers(app);
    registerAgentRoutes(app, { auth: new Authenticator({ adminHash: sha256Hex(ADMIN), pilotHash: sha256Hex(PILOT) }, store) }, tmp.dir);
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    open.push(async () => {
      await app.close();
      await store.close();
      tmp.remove();
    });
    const call = caller(url);
    const credential = randomSecrets.credential();
    await store.createInstance(draft('vmp-t-laptop-e', credential, null), 1);

    const manifest = await call('GET', '/v1/agent/agent-manifest.json', credential);
    expect(manifest.status).toBe(200);
    expect(await manifest.json()).toMatchObject({ version: '1.2.3' });
    expect((await call('GET', '/v1/agent/vmpilot-linux-x64', credential)).status).toBe(200);

    expect(await store.registerInstancePilot(credentialHash(credential), registration(), 'pilot-hash', 2)).not.toBeNull();
    const spent = await call('GET', '/v1/agent/vmpilot-linux-x64', credential);
    expect(spent.status).toBe(401);
    expect((await errorOf(spent)).message).toMatch(/instance credential was already used/);
  });
});
