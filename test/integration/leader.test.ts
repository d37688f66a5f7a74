/**
 * One leader for the singletons (src/server/leader.ts), with the built
 * server on a real PostgreSQL 15 (test/postgres.ts): of two servers on one
 * database exactly one is the leader (/metrics `vmpilot_leader`), and only
 * its stall sweeper sweeps and requeues a stalled pilot's payload; when the
 * leader is SIGKILLed the other takes over, its sweeper requeues and its
 * director starts a machine for new work; a leader whose lock connection
 * PostgreSQL terminates steps down and is elected again.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DirectorStatusReply } from '../../src/protocol/index.js';
import { LEADER_LOCK } from '../../src/server/store/pg-leader.js';
import { startPostgres, type PgCluster } from '../postgres.js';
import { ADMIN_TOKEN, admin, kill, killAll, killProcessesWith, startAgent, startServer, tempDir, waitFor, type Server } from './harness.js';

const LONG = 120_000;

/** The value of an unlabelled sample in the server's /metrics (0 when the series has none yet). */
async function metric(server: Server, name: string): Promise<number> {
  const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  if (res.status !== 200) throw new Error(`GET /metrics → ${res.status}`);
  const line = (await res.text()).split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.slice(name.length + 1));
}

/** The one server of `servers` whose /metrics says it is the leader, once exactly one does. */
async function theLeader(servers: Server[], timeoutMs = 30_000): Promise<Server> {
  return waitFor(
    'exactly one leader',
    async () => {
      const says = await Promise.all(servers.map((s) => metric(s, 'vmpilot_leader')));
      return says.filter((v) => v === 1).length === 1 ? servers[says.indexOf(1)] : undefined;
    },
    timeoutMs,
  );
}

/** The messages a server logged (pino JSON on stderr), in order. */
const messages = (server: Server): string[] =>
  server
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => (JSON.parse(l) as { msg?: string }).msg ?? '');

/** A payload that runs until killed, named so that the test finds what is left of it. */
const forever = (dir: string) => [process.execPath, '-e', 'setInterval(() => {}, 1000)', dir];

describe('one leader for the singletons, on PostgreSQL', () => {
  const tmp = tempDir('vmpilot-leader-');
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

  const serverArgs = ['--db-pool', '4', '--stall-after', '3', '--heartbeat-interval', '1'];

  it("of two servers exactly one is the leader, and only its sweeper sweeps and requeues a stalled pilot's payload", async () => {
    const db = await cluster.createDatabase();
    const servers = await Promise.all([startServer(db, serverArgs), startServer(db, serverArgs)]);
    const leader = await theLeader(servers);
    const follower = servers.find((s) => s !== leader)!;
    expect(messages(leader)).toContain('this server is the leader now: it runs the stall sweeper and the director');

    // the pilot talks to the follower only; it is SIGKILLed while it runs a payload
    const api = admin(follower.url);
    const id = await api.submit({ command: forever(tmp.dir) });
    const agent = startAgent(follower.url, { cores: 1, idleTimeoutSec: 60, stateDir: path.join(tmp.dir, 'agent-1') });
    await waitFor('the payload to run', async () => (await api.job(id)).state === 'running', LONG);
    kill(agent.child);
    await agent.exited;
    await waitFor('the payload to be requeued', async () => (await api.job(id)).state === 'queued', LONG);

    expect(await metric(leader, 'vmpilot_payloads_requeued_total')).toBe(1);
    expect(await metric(leader, 'vmpilot_pilots_stalled_total')).toBe(1);
    // the follower had seconds to sweep (stalled after 3 s, sweeps every 1 s) and did not
    expect(await metric(leader, 'vmpilot_stall_sweeps_total')).toBeGreaterThanOrEqual(2);
    expect(await metric(follower, 'vmpilot_stall_sweeps_total')).toBe(0);
    expect(await metric(follower, 'vmpilot_payloads_requeued_total')).toBe(0);
    expect(messages(follower)).not.toContain('pilots stalled');
    expect(messages(leader)).toContain('pilots stalled');
    expect(await metric(follower, 'vmpilot_leader')).toBe(0);
    await Promise.all(servers.map((s) => s.stop()));
  }, 180_000);

  it('the leader SIGKILLed: the other becomes the leader, its sweeper requeues a stalled payload and its director starts a machine', async () => {
    const db = await cluster.createDatabase();
    const config = path.join(tmp.dir, 'director.yaml');
    writeFileSync(
      config,
      `directorCycleSec: 1
endpoints:
  local:
    driver: process
    process: { workDir: ${tmp.dir}/instances }
    groups: { cloud: {} }
    shapes:
      small: { cores: 1, memoryMb: 500 }
    limits: { instances: 1 }
    timeouts: { idleSec: 3, payloadGraceSec: 2 }
`,
    );
    const args = [...serverArgs, '--config', config];
    const servers = await Promise.all([startServer(db, args), startServer(db, args)]);
    const first = await theLeader(servers);
    const second = servers.find((s) => s !== first)!;
    const status = async (s: Server) => (await admin(s.url).call<DirectorStatusReply>('GET', '/v1/director')).body;
    await waitFor("the leader's director to cycle", async () => (await status(first)).running && (await status(first)).lastCycle !== null, LONG);
    expect((await status(second)).running).toBe(false);

    const api = admin(second.url);
    const id = await api.submit({ command: forever(tmp.dir), group: 'manual' });
    const agent = startAgent(second.url, { cores: 1, idleTimeoutSec: 60, stateDir: path.join(tmp.dir, 'agent-2') });
    await waitFor('the payload to run', async () => (await api.job(id)).state === 'running', LONG);

    kill(first.child);
    expect((await first.exited).signal).toBe('SIGKILL');
    expect(await theLeader([second])).toBe(second);
    kill(agent.child);
    await agent.exited;
    await waitFor('the payload to be requeued by the new leader', async () => (await api.job(id)).state === 'queued', LONG);
    expect(await metric(second, 'vmpilot_payloads_requeued_total')).toBe(1);

    // the director resumes there: new work of the endpoint's group gets a machine, which runs it
    const cloud = await api.submit({ command: ['sh', '-c', 'echo ran on a machine the new leader started'], group: 'cloud' });
    await waitFor('the director on the new leader to run the payload on a machine it started', async () => (await api.job(cloud)).state === 'done', LONG);
    const s = await status(second);
    expect(s.running).toBe(true);
    expect(s.standby ?? null).toBe(null);
    expect(messages(second)).toContain('this server is the leader now: it runs the stall sweeper and the director');
    await second.stop();
  }, 240_000);

  it("a leader whose lock connection PostgreSQL terminates stops acting at once, then is elected again", async () => {
    const db = await cluster.createDatabase();
    const server = await startServer(db, serverArgs);
    await theLeader([server]);
    const client = new pg.Client({ connectionString: db });
    await client.connect();
    try {
      const { rows } = await client.query<{ n: number }>(
        "SELECT COUNT(pg_terminate_backend(l.pid))::int AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE l.locktype = 'advisory' AND l.granted AND l.objid = $1 AND d.datname = current_database()",
        [LEADER_LOCK],
      );
      expect(rows[0]!.n).toBe(1);
    } finally {
      await client.end();
    }
    await waitFor('the server to be the leader again', () => messages(server).filter((m) => m.startsWith('this server is the leader now')).length === 2, LONG);
    const seen = messages(server).filter((m) => /leader/.test(m));
    expect(seen).toEqual([
      'this server is the leader now: it runs the stall sweeper and the director',
      'this server is no longer the leader: its stall sweeper and director stop',
      'stopped acting as the leader',
      'this server is the leader now: it runs the stall sweeper and the director',
    ]);
    // told at once by its connection, not found out at a later check
    const down = server
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg?: string; why?: string })
      .find((l) => l.msg?.startsWith('this server is no longer the leader'));
    expect(down?.why).toMatch(/^its lock's connection to the database was lost: .*terminat/);
    expect(await metric(server, 'vmpilot_leader')).toBe(1);
    // and its sweeper runs again
    const sweeps = await metric(server, 'vmpilot_stall_sweeps_total');
    await waitFor('a sweep after the election', async () => (await metric(server, 'vmpilot_stall_sweeps_total')) > sweeps, LONG);
    await server.stop();
  }, 180_000);
});
