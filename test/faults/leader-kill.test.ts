/**
 * Fault: of two servers on one PostgreSQL (test/postgres.ts), the leader is
 * SIGKILLed mid-workload. Its agent is cut off (no load balancer: it knows
 * only that server), so the other server's sweeper must stall its pilot and
 * requeue the payload it ran, and the other's director must start a machine
 * for work only a machine can take; the usual audit (audit.ts) then finds
 * nothing lost, run twice or miscounted. (Run first with the leader lock on
 * the designations' advisory key, it hung every claim that designates: the
 * key test in store/pg-leader.test.ts keeps them apart.)
 */
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { exitStatusFor } from '../../src/protocol/index.js';
import { startPostgres, type PgCluster } from '../postgres.js';
import { ADMIN_TOKEN, admin, kill, killAll, killProcessesWith, startAgent, startServer, tempDir, waitFor, type Server } from '../integration/harness.js';
import { audit, historiesOf, logged } from './audit.js';

const LONG = 150_000;

/** The value of an unlabelled sample in the server's /metrics (0 when the series has none yet). */
async function metric(server: Server, name: string): Promise<number> {
  const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  if (res.status !== 200) throw new Error(`GET /metrics → ${res.status}`);
  const line = (await res.text()).split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.slice(name.length + 1));
}

describe('fault: the leader replica is SIGKILLed mid-workload (two servers on one PostgreSQL)', () => {
  const tmp = tempDir('vmpilot-fault-leader-');
  // the director's agents run as root and their payloads as slot accounts, which must pass through to their directories
  chmodSync(tmp.dir, 0o711);
  let cluster: PgCluster;
  beforeAll(async () => {
    cluster = await startPostgres();
  }, 180_000);
  afterEach(() => {
    killAll();
    killProcessesWith(tmp.dir);
  });
  afterAll(async () => {
    await cluster?.stop();
    tmp.cleanup();
  });

  it("the sweeper and the director resume on the other: the dead leader's pilot is stalled and its payload run elsewhere, new work gets a machine; nothing lost or run twice", async () => {
    const db = await cluster.createDatabase();
    const config = path.join(tmp.dir, 'server.yaml');
    writeFileSync(
      config,
      `directorCycleSec: 1
endpoints:
  local:
    driver: process
    process: { workDir: ${tmp.dir}/instances }
    groups: { cloud: {} }
    shapes:
      pair: { cores: 2, memoryMb: 500 }
    limits: { instances: 1 }
    timeouts: { idleSec: 3, payloadGraceSec: 2 }
`,
    );
    const args = ['--db-pool', '4', '--config', config, '--stall-after', '4', '--heartbeat-interval', '1', '--match-wait-max', '1'];
    const servers = await Promise.all([startServer(db, args), startServer(db, args)]);
    const leader = await waitFor('exactly one leader', async () => {
      const says = await Promise.all(servers.map((s) => metric(s, 'vmpilot_leader')));
      return says.filter((v) => v === 1).length === 1 ? servers[says.indexOf(1)] : undefined;
    });
    const other = servers.find((s) => s !== leader)!;
    const api = admin(other.url);

    // one-core work for the two one-core agents, one on each server (not the endpoint's group: the director leaves it alone)
    const log = path.join(tmp.dir, 'runs.log');
    const ids: number[] = [];
    // (longer than --stall-after: the one the dead leader's agent runs is stopped by its lease fence, not ended
    // unreported, which the other's sweep would rightly run again: the agent has no other server to report to)
    for (let i = 0; i < 5; i++) ids.push(await api.submit({ command: logged(log, 8), name: `w${i}` }));
    const onLeader = startAgent(leader.url, { cores: 1, idleTimeoutSec: 10, stateDir: path.join(tmp.dir, 'on-leader'), extra: ['--grace', '1', '--orphan-timeout', '5'] });
    const onOther = startAgent(other.url, { cores: 1, idleTimeoutSec: 10, stateDir: path.join(tmp.dir, 'on-other'), extra: ['--grace', '1'] });
    await waitFor('both pilots to run a payload', async () => {
      const running = (await api.jobs()).filter((j) => j.state === 'running');
      return new Set(running.map((j) => j.pilotId)).size === 2;
    }, LONG);

    kill(leader.child);
    expect((await leader.exited).signal).toBe('SIGKILL');
    // two-core work of the endpoint's group, which neither agent can take: only a machine the director starts runs it
    for (let i = 0; i < 2; i++) ids.push(await api.submit({ command: ['sh', '-c', 'sleep 1'], name: `pair${i}`, group: 'cloud', cores: { min: 2, max: 2, wholeNode: false } }));

    await waitFor('every payload to be done', async () => (await api.jobs()).every((j) => j.state === 'done'), LONG);
    expect(await metric(other, 'vmpilot_leader')).toBe(1);
    // the dead leader's pilot was stalled by the other's sweeper, and its payload went back to the queue
    expect(await metric(other, 'vmpilot_pilots_stalled_total')).toBe(1);
    expect(await metric(other, 'vmpilot_payloads_requeued_total')).toBe(1);
    // cut off, the agent stopped that payload (its lease ran out) and halted as an orphan
    expect((await onLeader.exited).code, onLeader.stderr().slice(-3000)).toBe(exitStatusFor(700));
    expect((await onOther.exited).code, onOther.stderr().slice(-3000)).toBe(0);
    const jobs = await api.jobs();
    const pilots = await api.pilots();
    const agents = new Set(jobs.filter((j) => j.name?.startsWith('w')).map((j) => j.pilotId));
    for (const j of jobs.filter((x) => x.name?.startsWith('pair'))) expect(agents.has(j.pilotId)).toBe(false);
    expect(pilots.length).toBeGreaterThanOrEqual(3);

    const result = audit(ids, jobs, log, await historiesOf(api));
    expect(result.violations).toEqual([]);
    expect(result.byState).toEqual({ done: 7 });
    await other.stop();
  }, 300_000);
});
