/**
 * The HTTP relay under a fault: agents reach the server only through the
 * relay (`--server http://RELAY`); mid-workload the relay is SIGKILLed with
 * the agents' long polls and reports in its hands, and started again on the
 * same address once the agents have noticed. A call the relay took and never
 * answered is, to the agent, a call with no answer: it asks again under the
 * protocol's own rules (reports by seq, a lost match answer handed out
 * again). Nothing submitted is lost or run twice, and both pilots end their
 * work, still recorded as having come through the relay.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/server/api/auth.js';
import { admin, freePort, killAll, startAgent, startServer, tempDir, waitFor } from '../integration/harness.js';
import { killRelay, startRelay, type Relay } from '../integration/relay/relay-harness.js';
import { failedCalls } from './agent-log.js';
import { auditServer, logged, readRuns } from './audit.js';

const RELAY_TOKEN = 'relay-token-of-the-fault-test-0123';

describe('fault: the HTTP relay SIGKILLed and restarted mid-workload', () => {
  const tmp = tempDir('vmpilot-fault-relay-');
  const relays: Relay[] = [];
  afterEach(async () => {
    killAll();
    for (const r of relays.splice(0)) await killRelay(r);
  });
  afterAll(() => tmp.cleanup());

  it('loses no payload and runs none twice; the agents carry on as the same pilots', { timeout: 180_000 }, async () => {
    const config = path.join(tmp.dir, 'server.yaml');
    writeFileSync(config, `relays:\n  required: true\n  tokens:\n    - { name: login01, site: TEST-HPC, sha256: ${sha256Hex(RELAY_TOKEN)} }\n`);
    const server = await startServer(path.join(tmp.dir, 'server.db'), ['--config', config, '--heartbeat-interval', '1']);
    const tokenFile = path.join(tmp.dir, 'relay.token');
    writeFileSync(tokenFile, `${RELAY_TOKEN}\n`, { mode: 0o600 });
    const port = await freePort();
    const relayArgs = ['--listen', `127.0.0.1:${port}`, '--server', server.url, '--relay-token-file', tokenFile, '--cache-dir', path.join(tmp.dir, 'relay-cache')];
    relays.push(await startRelay(relayArgs));
    const relayUrl = relays[0]!.url!;

    const api = admin(server.url);
    const log = path.join(tmp.dir, 'runs.log');
    writeFileSync(log, '');
    const ids: number[] = [];
    for (let i = 0; i < 14; i++) ids.push(await api.submit({ command: logged(log, 1 + (i % 3)), name: `w${i}`, cores: { min: 1, max: 1 + (i % 2), wholeNode: false } }));
    const agents = [0, 1].map((n) => startAgent(relayUrl, { cores: 2, idleTimeoutSec: 4, stateDir: path.join(tmp.dir, `agent-${n}`) }));
    const ended = () => [...readRuns(log).runs.values()].flat().filter((r) => r.endNs !== null).length;
    await waitFor('a few payloads to end through the relay and others to run', async () => ended() >= 3 && (await api.jobs()).some((j) => j.state === 'running'), 60_000);

    const marks = agents.map((a) => a.stderr().length);
    await killRelay(relays[0]!);
    // both agents find no answer; payloads go on meanwhile
    await waitFor('both agents to notice the relay is gone', () => agents.every((a, i) => failedCalls(a, marks[i]).length > 0), 60_000);
    relays.push(await startRelay(relayArgs));

    for (const agent of agents) expect((await agent.exited).code, agent.stderr().slice(-3000)).toBe(0);
    const pilots = await api.pilots();
    expect(pilots).toHaveLength(2);
    for (const p of pilots) expect(p).toMatchObject({ state: 'halted', shutdownCode: 300, relay: { name: 'login01', site: 'TEST-HPC' } });
    const result = await auditServer(api, ids, log);
    expect(result.violations).toEqual([]);
    expect(result.byState).toEqual({ done: ids.length });
    for (const id of ids) expect(result.runs.get(id), `runs of payload ${id}`).toHaveLength(1);
    await server.stop();
  });
});
