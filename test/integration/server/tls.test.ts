import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Agent, fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import type { PayloadView, PilotView } from '../../../src/protocol/index.js';
import { sha256Hex } from '../../../src/server/api/auth.js';
import { makeCertificates } from '../certs.js';
import { ADMIN_TOKEN, SERVER, killAll, runCommand, startAgent, startServer, tempDir, waitFor, type Server } from '../harness.js';

describe('the server over TLS, with short-lived pilot credentials', () => {
  const tmp = tempDir();
  let certs: ReturnType<typeof makeCertificates>;
  let server: Server;
  let trusted: Agent;

  beforeAll(async () => {
    certs = makeCertificates(tmp.dir);
    const config = path.join(tmp.dir, 'server.yaml');
    // credentials live 4 s; heartbeats every second renew them
    writeFileSync(config, 'credentialTtlSec: 4\ngroups:\n  atlas: { share: 70 }\n  cms: { share: 30 }\n');
    server = await startServer(path.join(tmp.dir, 'server.db'), [
      '--tls-cert', certs.cert, '--tls-key', certs.key, '--config', config, '--heartbeat-interval', '1',
    ]);
    trusted = new Agent({ connect: { ca: readFileSync(certs.ca) } });
  });
  afterAll(async () => {
    killAll();
    await trusted?.close();
    tmp.cleanup();
  });

  it('says https, and refuses a client that does not trust its certificate', async () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    await expect(fetch(`${server.url}/v1/health`)).rejects.toThrow();
    const ok = await fetch(`${server.url}/v1/health`, { dispatcher: trusted });
    expect(await ok.json()).toMatchObject({ ok: true });
    const noCa = await runCommand([SERVER, 'pilots', '--server', server.url, '--token', ADMIN_TOKEN]);
    expect(noCa.code).toBe(3);
    expect(noCa.stderr).toMatch(/certificate/i);
  });

  it('runs a payload for an agent with --ca-file that outlives its first credential', { timeout: 90_000 }, async () => {
    const submit = await runCommand([SERVER, 'submit', '--server', server.url, '--token', ADMIN_TOKEN, '--ca-file', certs.ca, '--group', 'atlas', '--', '/bin/sh', '-c', 'sleep 7; echo tls-ok']);
    expect(submit.code, submit.stderr).toBe(0);
    const id = Number(submit.stdout.trim());
    const agent = startAgent(server.url, { cores: 2, idleTimeoutSec: 2, stateDir: path.join(tmp.dir, 'agent'), extra: ['--ca-file', certs.ca] });
    const get = async <T>(route: string) => (await (await fetch(`${server.url}${route}`, { dispatcher: trusted, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json()) as T;
    const stateFile = path.join(tmp.dir, 'agent', 'state.json');
    const held = () => (JSON.parse(readFileSync(stateFile, 'utf8')) as { credential: string | null }).credential;
    const db = new Database(path.join(tmp.dir, 'server.db'), { readonly: true });
    const onRecord = (pilotId: number) =>
      db.prepare('SELECT credential_hash AS current, prev_credential_hash AS previous FROM pilots WHERE id = ?').get(pilotId) as { current: string; previous: string | null };
    /** A match poll that takes nothing (no free core, no wait) with `credential` over TLS: the server's answer status. */
    const poll = async (pilotId: number, credential: string) =>
      (
        await fetch(`${server.url}/v1/pilots/${pilotId}/match`, {
          method: 'POST',
          dispatcher: trusted,
          headers: { authorization: `Bearer ${credential}`, 'content-type': 'application/json' },
          body: JSON.stringify({ freeCores: 0, totalCores: 2, freeMemoryMb: 0, remainingSec: null, holding: [id], waitSec: 0 }),
        })
      ).status;
    const pilotId = await waitFor('the pilot to register', async () => (await get<PilotView[]>('/v1/pilots'))[0]?.id);
    // while it runs, the credential the agent keeps is the one the server renewed last, and it works
    const renewedAndWorking = waitFor(
      'the agent to hold a renewed credential the server takes',
      async () => {
        const credential = held();
        const record = onRecord(pilotId);
        if (!credential || record.previous === null || sha256Hex(credential) !== record.current) return false;
        return (await poll(pilotId, credential)) === 200 && credential;
      },
      40_000,
    );
    renewedAndWorking.catch(() => undefined); // awaited below
    const done = await waitFor(
      'the payload to end',
      async () => {
        const p = await get<PayloadView>(`/v1/payloads/${id}`);
        return p.state === 'done' || p.state === 'failed' ? p : undefined;
      },
      60_000,
    );
    expect(done).toMatchObject({ state: 'done', exitCode: 0 });
    expect(done.outputTail).toMatch(/tls-ok/);
    const credential = await renewedAndWorking;
    // anything else is refused
    expect(await poll(pilotId, `${credential.slice(0, -1)}${credential.endsWith('A') ? 'B' : 'A'}`)).toBe(401);
    // the agent halted normally (idle), and its credential was renewed on the way: its last reports used the new one
    expect((await agent.exited).code).toBe(0);
    expect(server.stderr()).toMatch(/credential renewed/);
    expect(server.stderr()).not.toMatch(/"expired":true/);
    const pilots = await runCommand([SERVER, 'pilots', '--json', '--server', server.url, '--token', ADMIN_TOKEN, '--ca-file', certs.ca]);
    expect(JSON.parse(pilots.stdout)).toMatchObject([{ id: pilotId, state: 'halted', shutdownCode: 300 }]);
    // what it kept at the end is the server's current credential for it, not the one it registered with
    const last = held();
    expect(last && sha256Hex(last)).toBe(onRecord(pilotId).current);
    db.close();
  });
});
