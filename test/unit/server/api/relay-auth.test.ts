import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { paths } from '../../../../src/protocol/paths.js';
import { RELAY_TOKEN_HEADER, type PilotView, type RegisterReply } from '../../../../src/protocol/index.js';
import { buildApp } from '../../../../src/server/api/app.js';
import type { ApiLimits } from '../../../../src/server/api/limits.js';
import { sha256Hex } from '../../../../src/server/api/auth.js';
import { relaysFrom, type RelayPolicy } from '../../../../src/server/relay-config.js';
import { openSqliteStore } from '../../../../src/server/store/sqlite.js';
import { FakeClock } from '../../../../src/shared/clock.js';
import { silentLogger } from '../../../../src/shared/log.js';
import { heartbeat, registration, tempDir } from '../helpers.js';
import { ADMIN, PILOT, bearer } from './harness.js';

const RELAY_TOKEN = 'relay-token-of-login01-0123456789';

async function appWith(relays: RelayPolicy, limits: Partial<ApiLimits> = {}) {
  const tmp = tempDir();
  const store = openSqliteStore(path.join(tmp.dir, 'server.db'));
  const app = buildApp({
    store,
    clock: new FakeClock(),
    log: silentLogger(),
    tokens: { adminHash: sha256Hex(ADMIN), pilotHash: sha256Hex(PILOT) },
    heartbeatIntervalSec: 60,
    matchWaitMaxSec: 20,
    relays,
    limits,
  });
  await app.ready();
  return { app, store, close: async () => (await app.close(), await store.close(), tmp.remove()) };
}

const known = (required: boolean) => relaysFrom({ required, tokens: [{ name: 'login01', site: 'CC-IN2P3', sha256: sha256Hex(RELAY_TOKEN) }] }, 'test');

describe('relays: the server knows which relay a pilot came through, and refuses unknown ones', () => {
  let close: (() => Promise<unknown>) | undefined;
  afterEach(async () => close?.());

  it('records the relay and site of a pilot that registered through a known relay, and shows it in pilots', async () => {
    const h = await appWith(known(false));
    close = h.close;
    const via = { ...bearer(PILOT), [RELAY_TOKEN_HEADER]: RELAY_TOKEN };
    const r = await h.app.inject({ method: 'POST', url: paths.register, headers: via, payload: registration({ hostname: 'cn0042' }) });
    expect(r.statusCode, r.body).toBe(201);
    const direct = await h.app.inject({ method: 'POST', url: paths.register, headers: bearer(PILOT), payload: registration({ hostname: 'vm-1' }) });
    expect(direct.statusCode).toBe(201);
    const pilots = (await h.app.inject({ method: 'GET', url: paths.pilots, headers: bearer(ADMIN) })).json<PilotView[]>();
    // (pilots are listed newest first)
    expect(pilots.map((p) => [p.hostname, p.relay])).toEqual([
      ['vm-1', null],
      ['cn0042', { name: 'login01', site: 'CC-IN2P3' }],
    ]);
    // the pilot's later calls through the relay go on as usual
    const reg = r.json<RegisterReply>();
    const beat = await h.app.inject({ method: 'POST', url: paths.heartbeat(reg.pilotId), headers: { ...bearer(reg.credential), [RELAY_TOKEN_HEADER]: RELAY_TOKEN }, payload: heartbeat() });
    expect(beat.statusCode).toBe(200);
  });

  it('refuses a relay token it does not know, on every route, whatever the pilot token, and records nothing', async () => {
    const h = await appWith(known(false));
    close = h.close;
    const reg = (await h.app.inject({ method: 'POST', url: paths.register, headers: bearer(PILOT), payload: registration() })).json<RegisterReply>();
    const wrong = { [RELAY_TOKEN_HEADER]: 'someone-elses-relay-token' };
    const r = await h.app.inject({ method: 'POST', url: paths.register, headers: { ...bearer(PILOT), ...wrong }, payload: registration({ hostname: 'intruder' }) });
    expect(r.statusCode).toBe(401);
    expect(r.json()).toEqual({ error: { code: 'VMP_UNAUTHORIZED', message: expect.stringMatching(/relay token \(x-vmpilot-relay-token\) is not one this server knows: add its sha256 to relays\.tokens/) } });
    const beat = await h.app.inject({ method: 'POST', url: paths.heartbeat(reg.pilotId), headers: { ...bearer(reg.credential), ...wrong }, payload: heartbeat() });
    expect(beat.statusCode).toBe(401);
    const file = await h.app.inject({ method: 'GET', url: paths.agentFile('agent-manifest.json'), headers: { ...bearer(PILOT), ...wrong } });
    expect(file.statusCode).toBe(401);
    expect((await h.store.listPilots({})).map((p) => p.hostname)).toEqual(['node-1.example.org']);
    expect((await h.store.getPilot(reg.pilotId))?.lastHeartbeatAt).toBeNull();
  });

  it('with relays.required, refuses a registration that came through no relay (403), and takes one through a known relay', async () => {
    const h = await appWith(known(true));
    close = h.close;
    const direct = await h.app.inject({ method: 'POST', url: paths.register, headers: bearer(PILOT), payload: registration() });
    expect(direct.statusCode).toBe(403);
    expect(direct.json().error).toEqual({ code: 'VMP_FORBIDDEN', message: expect.stringMatching(/only through a relay \(relays\.required\)/) });
    expect(await h.store.listPilots({})).toEqual([]);
    const via = await h.app.inject({ method: 'POST', url: paths.register, headers: { ...bearer(PILOT), [RELAY_TOKEN_HEADER]: RELAY_TOKEN }, payload: registration() });
    expect(via.statusCode).toBe(201);
    // health and the admin routes do not need a relay
    expect((await h.app.inject({ method: 'GET', url: paths.health })).statusCode).toBe(200);
    expect((await h.app.inject({ method: 'GET', url: paths.pilots, headers: bearer(ADMIN) })).statusCode).toBe(200);
  });

  it('a relay token is no pilot credential: alone it opens nothing', async () => {
    const h = await appWith(known(false));
    close = h.close;
    const r = await h.app.inject({ method: 'POST', url: paths.register, headers: { [RELAY_TOKEN_HEADER]: RELAY_TOKEN }, payload: registration() });
    expect(r.statusCode).toBe(401);
    const bearerRelay = await h.app.inject({ method: 'POST', url: paths.register, headers: bearer(RELAY_TOKEN), payload: registration() });
    expect(bearerRelay.statusCode).toBe(401);
    expect(await h.store.listPilots({})).toEqual([]);
  });

  it("counts a relayed registration under the node's address the relay forwarded, not the relay's one address; a direct caller's x-forwarded-for is not believed", async () => {
    // the clock stands still: a bucket used up stays used up
    const h = await appWith(known(false), { registerBurstPerAddress: 2, registerPerSecPerAddress: 1 });
    close = h.close;
    const through = (node: string | null) => ({ ...bearer(PILOT), [RELAY_TOKEN_HEADER]: RELAY_TOKEN, ...(node ? { 'x-forwarded-for': node } : {}) });
    const reg = (headers: Record<string, string>, hostname: string) => h.app.inject({ method: 'POST', url: paths.register, headers, payload: registration({ hostname }) });
    // six nodes behind one relay, all from the relay's address: every one gets in
    for (let i = 1; i <= 6; i++) expect((await reg(through(`10.1.0.${i}`), `cn${i}`)).statusCode).toBe(201);
    // one node registering over and over is held back, by its own address
    expect((await reg(through('10.1.0.1'), 'cn1-again')).statusCode).toBe(201);
    const again = await reg(through('10.1.0.1'), 'cn1-third');
    expect(again.statusCode).toBe(429);
    expect(again.json().error).toEqual({ code: 'VMP_RATE_LIMITED', message: expect.stringMatching(/too many registrations from address 10\.1\.0\.1 via relay login01; retry in \d+ s/) });
    // mailbox mode names no address: the registration token's limit alone applies
    for (let i = 1; i <= 4; i++) expect((await reg(through(null), `mbox${i}`)).statusCode).toBe(201);
    // the relay's traffic used none of its own address's bucket; a direct caller cannot pose as another address
    const direct = { ...bearer(PILOT), 'x-forwarded-for': '10.9.9.9' };
    expect((await reg(direct, 'vm-1')).statusCode).toBe(201);
    expect((await reg(direct, 'vm-2')).statusCode).toBe(201);
    const third = await reg(direct, 'vm-3');
    expect(third.statusCode).toBe(429);
    expect(third.json().error.message).toMatch(/too many registrations from address 127\.0\.0\.1;/);
    expect((await h.store.listPilots({})).length).toBe(6 + 1 + 4 + 2);
  });
});
