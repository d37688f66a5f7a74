/**
 * Mailbox mode under a fault: an agent on a "compute node" that reaches
 * nothing (a network namespace with loopback only) talks to the server
 * through files in a shared directory (`--server file:///SPOOL/NAME`),
 * which the relay on the "login node" (`vmpilot relay --spool SPOOL`)
 * carries. Mid-way the relay is SIGKILLed with the agent's long poll in its
 * hands, and started again once the agent has noticed: nothing submitted
 * is lost or run twice, and the agent ends its work and halts.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AGENT, PILOT_TOKEN, admin, kill, killAll, startServer, tempDir, waitFor, type Proc } from '../integration/harness.js';
import { computeNode, connects, netnsMissing, type ComputeNode } from '../integration/relay/netns.js';
import { killRelay, startRelay, type Relay } from '../integration/relay/relay-harness.js';
import { failedCalls } from './agent-log.js';
import { auditServer, logged, readRuns } from './audit.js';

describe('fault: mailbox mode, the relay SIGKILLed and restarted mid-workload', () => {
  const tmp = tempDir('vmpilot-fault-mailbox-');
  let node: ComputeNode | undefined;
  const relays: Relay[] = [];
  afterAll(async () => {
    killAll();
    for (const r of relays) await killRelay(r);
    node?.remove();
    tmp.cleanup();
  });

  it('every payload runs once, and the agent ends its work and halts', { timeout: 240_000 }, async () => {
    expect(netnsMissing(), 'network namespaces').toBeNull();
    node = computeNode(false);
    const server = await startServer(path.join(tmp.dir, 'server.db'), ['--heartbeat-interval', '2']);
    const spool = path.join(tmp.dir, 'shared', 'vmpilot');
    mkdirSync(spool, { recursive: true });
    const relayArgs = ['--spool', spool, '--server', server.url, '--cache-dir', path.join(tmp.dir, 'relay-cache'), '--poll-ms', '100'];
    relays.push(await startRelay(relayArgs));

    // the node reaches nothing: not the server, not even the login node's addresses
    const r = await connects(node, `${server.url}/v1/health`);
    expect(r.ok, r.why).toBe(false);

    const api = admin(server.url);
    const log = path.join(tmp.dir, 'runs.log');
    writeFileSync(log, '');
    const ids: number[] = [];
    for (let i = 0; i < 14; i++) ids.push(await api.submit({ command: logged(log, 1 + (i % 3)), cores: { min: 1, max: 1 + (i % 2), wholeNode: false } }));

    const child = node.spawn(
      process.execPath,
      [AGENT, 'run', '--server', `file://${spool}/job-4711`, '--halt', 'exit', '--state-dir', path.join(tmp.dir, 'agent'), '--isolation', 'none', '--cores', '3', '--idle-timeout', '3'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VMPILOT_PILOT_TOKEN: PILOT_TOKEN } },
    );
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    const agent: Proc = { child, stderr: () => err, stdout: () => '', exited };
    try {
      const ended = () => [...readRuns(log).runs.values()].flat().filter((run) => run.endNs !== null).length;
      await waitFor('four payloads to end through the mailbox', () => ended() >= 4, 90_000);
      // the relay goes with a request of the agent's in its hands (taken into work/: the match it holds open, most often)
      const work = path.join(spool, 'job-4711', 'work');
      await waitFor('the relay to hold a request', () => readdirSync(work).some((n) => n.endsWith('.req')), 30_000);
      await killRelay(relays[0]!);
      const mark = err.length;
      await waitFor('the agent to notice no relay answers', () => failedCalls(agent, mark).length > 0, 60_000);
      const relay = await startRelay(relayArgs);
      relays.push(relay);
      const exit = await exited;
      expect(exit.code, err.slice(-4000)).toBe(0);
      expect(relay.stderr()).not.toMatch(/"level":50/);
    } finally {
      kill(child);
    }
    const [pilot] = await api.pilots();
    expect(pilot).toMatchObject({ state: 'halted', shutdownCode: 300, relay: null });
    const result = await auditServer(api, ids, log);
    expect(result.violations).toEqual([]);
    expect(result.byState).toEqual({ done: ids.length });
    for (const id of ids) expect(result.runs.get(id), `runs of payload ${id}`).toHaveLength(1);
    await server.stop();
  });
});
