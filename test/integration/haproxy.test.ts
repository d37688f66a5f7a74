/**
 * The scale-out mode as users run it: two built vmpilot-server replicas on
 * one real PostgreSQL 15 (test/postgres.ts), a real HAProxy 2.6 in front of
 * them running the shipped packaging/haproxy.cfg (test/haproxy.ts), and real
 * agents that know only HAProxy's address, running many short payloads:
 * - through the balancer each payload runs once and ends done, and both
 *   replicas served the agents;
 * - one replica SIGKILLed mid-workload: the agents carry on through the
 *   other, none halts for it, and the fault audit (test/faults/audit.ts)
 *   finds every payload done, failed or queued exactly once;
 * - PostgreSQL stopped for 20 s and started again on its port: meanwhile the
 *   replicas answer 503 VMP_DATABASE_UNAVAILABLE, payloads end and their
 *   agents keep the reports; after it every report is delivered, nothing
 *   acknowledged is lost and each payload is done exactly once.
 * The replicas hold match long polls for at most 2 s (--match-wait-max), so
 * a payload submitted through one replica reaches the agents waiting on the
 * other at their next match at the latest.
 */
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { auditServer, logged, readRuns } from '../faults/audit.js';
import { startHaproxy, type Haproxy } from '../haproxy.js';
import { startPostgres, type PgCluster } from '../postgres.js';
import { admin, kill, killAll, startAgent, startServer, tempDir, waitFor, type Proc, type Server } from './harness.js';

/** Every run that ended, as the run log says. */
const ended = (log: string) => [...readRuns(log).runs.values()].flat().filter((r) => r.endNs !== null);

describe('server replicas behind HAProxy on one PostgreSQL', () => {
  const tmp = tempDir('vmpilot-haproxy-test-');
  let cluster: PgCluster;
  let proxy: Haproxy | undefined;
  beforeAll(async () => {
    cluster = await startPostgres();
  }, 180_000);
  afterEach(async () => {
    killAll();
    await proxy?.stop();
    proxy = undefined;
  });
  afterAll(async () => {
    await cluster?.stop();
    tmp.cleanup();
  });

  /** A fresh database, two replicas on it and HAProxy in front; the admin API through HAProxy. */
  async function replicas(): Promise<{ servers: Server[]; lb: Haproxy; api: ReturnType<typeof admin> }> {
    const db = await cluster.createDatabase();
    const servers = await Promise.all([0, 1].map(() => startServer(db, ['--db-pool', '4', '--match-wait-max', '2'])));
    proxy = await startHaproxy(servers.map((s) => new URL(s.url).host));
    return { servers, lb: proxy, api: admin(proxy.url) };
  }

  /** `n` agents of 2 cores that know only HAProxy's address and halt after `idleSec` without work. */
  const agents = (lb: Haproxy, name: string, n: number, idleSec = 3): Proc[] =>
    Array.from({ length: n }, (_, i) => startAgent(lb.url, { cores: 2, idleTimeoutSec: idleSec, stateDir: path.join(tmp.dir, `${name}-${i}`) }));

  /** Wait for every agent to halt for lack of work (exit 0), then audit through HAProxy. */
  async function finish(api: ReturnType<typeof admin>, running: Proc[], ids: number[], log: string) {
    for (const agent of running) expect((await agent.exited).code, agent.stderr().slice(-3000)).toBe(0);
    const pilots = await api.pilots();
    expect(pilots).toHaveLength(running.length);
    // every pilot halted because the work ran out (300), none for the fault
    for (const p of pilots) expect(p).toMatchObject({ state: 'halted', shutdownCode: 300 });
    const result = await auditServer(api, ids, log);
    expect(result.violations).toEqual([]);
    return result;
  }

  it('runs every payload exactly once through the balancer, both replicas serving the agents', async () => {
    const { lb, api } = await replicas();
    const log = path.join(tmp.dir, 'plain.log');
    const ids: number[] = [];
    for (let i = 0; i < 24; i++) ids.push(await api.submit({ command: logged(log, 0.1), name: `p${i}`, group: `g${i % 3}` }));
    const result = await finish(api, agents(lb, 'plain', 3), ids, log);
    expect(result.byState).toEqual({ done: 24 });
    expect([...result.runs.values()].map((r) => r.length)).toEqual(ids.map(() => 1));
    // HAProxy's request log names the replica of each request: both took agents' calls
    for (const name of ['replica1', 'replica2']) expect(lb.log()).toMatch(new RegExp(`replicas/${name} \\d+/\\d+/\\d+/\\d+/\\d+ 200 .*"POST /v1/pilots/`));
  }, 90_000);

  it('one replica SIGKILLed mid-workload: the agents carry on through the other and every payload ends exactly once', async () => {
    const { servers, lb, api } = await replicas();
    const log = path.join(tmp.dir, 'kill.log');
    const ids: number[] = [];
    for (let i = 0; i < 30; i++) ids.push(await api.submit({ command: logged(log, 0.3), name: `k${i}`, group: `g${i % 3}` }));
    const running = agents(lb, 'kill', 3);
    await waitFor('a few payloads to end and others to run', async () => {
      const jobs = await api.jobs();
      return jobs.filter((j) => j.state === 'done').length >= 5 && jobs.some((j) => j.state === 'running');
    });
    const [victim, survivor] = servers as [Server, Server];
    kill(victim.child);
    expect((await victim.exited).signal).toBe('SIGKILL');
    const doneAtKill = ended(log).length;
    // the work goes on through the survivor: payloads end, and the server records them
    await waitFor('payloads to end after the kill', () => ended(log).length >= doneAtKill + 6, 30_000);
    const result = await finish(api, running, ids, log);
    expect(result.byState).toEqual({ done: 30 });
    expect(survivor.child.exitCode).toBeNull();
    // HAProxy saw the dead replica and took it out
    expect(lb.log()).toMatch(/Server replicas\/replica1 is DOWN/);
  }, 90_000);

  it('PostgreSQL stopped for 20 s and started again: the replicas answer 503 meanwhile, the agents keep their reports and deliver them, nothing is lost or run twice', async () => {
    const { servers, lb, api } = await replicas();
    const log = path.join(tmp.dir, 'pg.log');
    const ids: number[] = [];
    for (let i = 0; i < 18; i++) ids.push(await api.submit({ command: logged(log, 4), name: `q${i}`, group: `g${i % 3}` }));
    const running = agents(lb, 'pg', 3);
    // stop PostgreSQL just after a payload started: it runs on for 2 s or more, into the outage
    await waitFor('a few payloads to end and one to have just started', () => {
      const runs = [...readRuns(log).runs.values()].flat();
      const now = BigInt(Date.now()) * 1_000_000n;
      return runs.filter((r) => r.endNs !== null).length >= 3 && runs.some((r) => r.endNs === null && now - r.startNs < 2_000_000_000n);
    });
    const acknowledged = new Map((await api.jobs()).map((j) => [j.id, j.state]));

    await cluster.halt();
    const stoppedAt = Date.now();
    try {
      // the replicas answer, through HAProxy, a clean 503 of their own
      const during = await api.call<unknown>('GET', '/v1/payloads');
      expect(during).toEqual({
        status: 503,
        body: { error: { code: 'VMP_DATABASE_UNAVAILABLE', message: "the server's database is unavailable; try again in 5 s" } },
      });
      // payloads end while the database is away; their reports wait in the agents' state
      const downNs = BigInt(stoppedAt) * 1_000_000n;
      await waitFor('a payload to end while PostgreSQL is down', () => ended(log).some((r) => r.endNs! > downNs), 15_000);
      // the fault is 20 s of PostgreSQL down, counted from its stop
      await new Promise((r) => setTimeout(r, Math.max(0, stoppedAt + 20_000 - Date.now())));
      for (const s of servers) expect(s.child.exitCode, s.stderr().slice(-2000)).toBeNull();
    } finally {
      await cluster.start();
    }

    const result = await finish(api, running, ids, log);
    expect(result.byState).toEqual({ done: 18 });
    expect([...result.runs.values()].map((r) => r.length)).toEqual(ids.map(() => 1));
    // what was acknowledged before the stop is still so: nothing done went back
    const after = new Map((await api.jobs()).map((j) => [j.id, j.state]));
    for (const [id, state] of acknowledged) if (state === 'done') expect(after.get(id)).toBe('done');
    // the same replica processes served before and after: they reconnected by themselves
    for (const s of servers) {
      expect(s.child.exitCode).toBeNull();
      expect(s.stderr()).toContain('database unavailable');
      expect(s.stderr()).not.toContain('VMP_INTERNAL');
    }
  }, 120_000);
});
