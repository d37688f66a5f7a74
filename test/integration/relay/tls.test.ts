/**
 * The relay's agent side over TLS (`--tls-cert`, `--tls-key`): an agent that
 * trusts the relay's CA (`vmpilot run --ca-file`) registers, runs a payload
 * and halts through it; one that does not is refused at the handshake and
 * says why. The agents' tokens never cross the site network in clear.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../../src/server/api/auth.js';
import { auditServer, logged } from '../../faults/audit.js';
import { makeCertificates } from '../certs.js';
import { admin, kill, killAll, startAgent, startServer, tempDir, waitFor } from '../harness.js';
import { startRelay, type Relay } from './relay-harness.js';

const RELAY_TOKEN = 'relay-token-of-the-tls-login-node';

describe('relay over TLS', () => {
  const tmp = tempDir('vmpilot-relay-tls-');
  let relay: Relay | undefined;
  afterAll(async () => {
    killAll();
    if (relay) kill(relay.child);
    await relay?.exited;
    tmp.cleanup();
  });

  it('an agent that trusts its certificate works through it; one that does not is refused and says why', { timeout: 180_000 }, async () => {
    const certs = makeCertificates(tmp.dir);
    const config = path.join(tmp.dir, 'server.yaml');
    writeFileSync(config, `relays:\n  required: true\n  tokens:\n    - { name: login03, site: TEST-TLS, sha256: ${sha256Hex(RELAY_TOKEN)} }\n`);
    const server = await startServer(path.join(tmp.dir, 'server.db'), ['--config', config, '--heartbeat-interval', '1']);
    const tokenFile = path.join(tmp.dir, 'relay.token');
    writeFileSync(tokenFile, `${RELAY_TOKEN}\n`, { mode: 0o600 });
    relay = await startRelay(['--listen', '127.0.0.1:0', '--tls-cert', certs.cert, '--tls-key', certs.key, '--server', server.url, '--relay-token-file', tokenFile, '--cache-dir', path.join(tmp.dir, 'cache')]);
    expect(relay.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);

    // plain HTTP to a TLS listener gets nowhere
    const plain = await fetch(relay.url!.replace('https:', 'http:') + '/v1/health').then((r) => r.status, (e: Error) => e.message);
    expect(plain).not.toBe(200);

    const untrusting = startAgent(relay.url!, { cores: 1, idleTimeoutSec: 600, stateDir: path.join(tmp.dir, 'untrusting') });
    await waitFor('the untrusting agent to say the certificate is not trusted', () => /certificate/i.test(untrusting.stderr()), 60_000);
    const api = admin(server.url);
    expect(await api.pilots()).toEqual([]);
    kill(untrusting.child);

    const log = path.join(tmp.dir, 'runs.log');
    writeFileSync(log, '');
    const ids = [await api.submit({ command: logged(log, 1), cores: { min: 1, max: 1, wholeNode: false }, group: 'hpc' })];
    const agent = startAgent(relay.url!, { cores: 1, idleTimeoutSec: 600, stateDir: path.join(tmp.dir, 'agent'), extra: ['--ca-file', certs.ca] });
    await waitFor('the payload to run through the TLS relay', async () => (await api.jobs()).every((j) => j.state === 'done'), 120_000);
    const [pilot] = await api.pilots();
    expect(pilot).toMatchObject({ relay: { name: 'login03', site: 'TEST-TLS' } });
    await api.instruct(pilot!.id, { type: 'halt', reason: 'end of the TLS test' });
    expect((await agent.exited).code, agent.stderr().slice(-2000)).toBe(0);
    expect((await auditServer(api, ids, log)).violations).toEqual([]);
    await server.stop();
  });
});
