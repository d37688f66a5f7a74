/**
 * The built server on PostgreSQL (`--db postgres://…`, or VMPILOT_DB), on a
 * real PostgreSQL 15 (test/postgres.ts): real agents run its queue to the
 * end; a server killed with SIGKILL and started again loses nothing it
 * acknowledged; and two servers started together on one database migrate
 * it once and share its queue, every payload run exactly once by the
 * agents of both; while PostgreSQL is down the server answers a clean 503
 * VMP_DATABASE_UNAVAILABLE, and serves again by itself once it is back.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgCluster } from '../postgres.js';
import { ADMIN_TOKEN, SERVER, admin, freePort, killAll, recorded, runCommand, startAgent, startServer, tempDir, waitFor } from './harness.js';

/** The payload ids of every run `recorded` logged, in the order they ended. */
const runs = (log: string): number[] =>
  readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => Number(line.split(' ')[0]));

describe('the server on PostgreSQL', () => {
  const tmp = tempDir();
  let cluster: PgCluster;
  beforeAll(async () => {
    cluster = await startPostgres();
  }, 180_000);
  afterAll(async () => {
    killAll();
    await cluster?.stop();
    tmp.cleanup();
  });

  it('runs payloads end to end with a real agent, and a restart after SIGKILL loses nothing it acknowledged', async () => {
    const db = await cluster.createDatabase();
    const log = path.join(tmp.dir, 'one.log');
    const first = await startServer(db, ['--db-pool', '4']);
    const api = admin(first.url);
    const early: number[] = [];
    for (let i = 0; i < 6; i++) early.push(await api.submit({ command: recorded(log, 0.1), group: `g${i % 2}` }));
    const agent = startAgent(first.url, { cores: 2, idleTimeoutSec: 1, stateDir: path.join(tmp.dir, 'agent-1') });
    expect((await agent.exited).code).toBe(0);
    expect((await api.jobs()).map((j) => [j.id, j.state])).toEqual(early.map((id) => [id, 'done']));
    expect((await api.accounting()).length).toBeGreaterThan(0);

    const late: number[] = [];
    for (let i = 0; i < 10; i++) late.push(await api.submit({ command: recorded(log, 0.1), group: `g${i % 3}` }));
    const before = await api.jobs();
    first.child.kill('SIGKILL');
    await first.exited;

    const second = await startServer(db);
    const again = admin(second.url);
    expect(await again.jobs()).toEqual(before);
    expect((await again.pilots()).map((p) => p.state)).toEqual(['halted']);
    const next = startAgent(second.url, { cores: 2, idleTimeoutSec: 1, stateDir: path.join(tmp.dir, 'agent-2') });
    expect((await next.exited).code).toBe(0);
    const jobs = await again.jobs();
    expect(jobs.map((j) => [j.id, j.state])).toEqual([...early, ...late].map((id) => [id, 'done']));
    // each ran once, and the records are PostgreSQL's
    expect(runs(log).sort((a, b) => a - b)).toEqual([...early, ...late]);
    const client = new pg.Client({ connectionString: db });
    await client.connect();
    const { rows } = await client.query("SELECT COUNT(*)::int AS n FROM payloads WHERE state = 'done'");
    await client.end();
    expect(rows[0]).toEqual({ n: early.length + late.length });
    await second.stop();
  });

  it('two servers started together on one database (one through VMPILOT_DB) share its queue: each payload runs once', async () => {
    const db = await cluster.createDatabase();
    const log = path.join(tmp.dir, 'two.log');
    const [a, b] = await Promise.all([startServer(db, ['--db-pool', '4']), startServer(db, ['--db-pool', '4'], { dbInEnv: true })]);
    const ids: number[] = [];
    for (let i = 0; i < 24; i++) ids.push(await admin(i % 2 === 0 ? a.url : b.url).submit({ command: recorded(log, 0.2), group: `g${i % 4}` }));
    const agents = [a, b, a, b].map((s, i) => startAgent(s.url, { cores: 2, idleTimeoutSec: 1, stateDir: path.join(tmp.dir, `two-${i}`) }));
    for (const agent of agents) expect((await agent.exited).code).toBe(0);
    expect((await admin(b.url).jobs()).map((j) => [j.id, j.state])).toEqual(ids.map((id) => [id, 'done']));
    expect(runs(log).sort((x, y) => x - y)).toEqual(ids);
    // the pilots of both servers are in the one database
    expect(await admin(a.url).pilots()).toHaveLength(4);
    await Promise.all([a.stop(), b.stop()]);
  });

  it('migrate moves a SQLite installation into PostgreSQL with every record and id: the server comes back on it and a running agent carries on', async () => {
    const file = path.join(tmp.dir, 'moved.db');
    const log = path.join(tmp.dir, 'moved.log');
    const listen = `127.0.0.1:${await freePort()}`;
    const first = await startServer(file, ['--heartbeat-interval', '1'], { listen });
    const api = admin(first.url);
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) ids.push(await api.submit({ command: recorded(log, 0.1), group: `g${i % 2}`, env: { N: String(i) } }));
    ids.push(await api.submit({ command: ['/bin/sh', '-c', 'exit 3'], group: 'g0' }));
    const done = startAgent(first.url, { cores: 2, idleTimeoutSec: 1, stateDir: path.join(tmp.dir, 'moved-1') });
    expect((await done.exited).code).toBe(0);
    // an agent that stays, across the move
    const stays = startAgent(first.url, { cores: 1, idleTimeoutSec: 300, stateDir: path.join(tmp.dir, 'moved-2') });
    const staying = await waitFor('the second pilot to run', async () => (await api.pilots()).find((p) => p.state === 'running'));
    const before = { jobs: await api.jobs(), accounting: await api.accounting(), history: await api.call('GET', `/v1/payloads/${ids[2]}/history`) };
    expect(before.jobs.map((j) => j.state)).toEqual(['done', 'done', 'done', 'done', 'done', 'failed']);
    await first.stop();

    const db = await cluster.createDatabase();
    const moved = await runCommand([SERVER, 'migrate', '--from', `sqlite:${file}`, '--to', db]);
    expect(moved.code, moved.stderr).toBe(0);
    expect(moved.stdout).toMatch(/^payloads +6$/m);
    expect(moved.stdout).toMatch(/^pilots +2$/m);
    expect(moved.stdout).toMatch(/not copied, PostgreSQL counts them itself: accounting_groups, payload_counts, pilot_counts/);

    const second = await startServer(db, ['--heartbeat-interval', '1'], { listen });
    const again = admin(second.url);
    expect(await again.jobs()).toEqual(before.jobs);
    expect(await again.accounting()).toEqual(before.accounting);
    expect(await again.call('GET', `/v1/payloads/${ids[2]}/history`)).toEqual(before.history);
    // the agent that stayed goes on as the same pilot (its credential and report numbers came along), and new ids continue the count
    const next = await again.submit({ command: recorded(log, 0.1), group: 'g1' });
    expect(next).toBe(ids[ids.length - 1]! + 1);
    await waitFor('the new payload to be done', async () => (await again.job(next)).state === 'done');
    expect((await again.job(next)).pilotId).toBe(staying.id);
    expect(runs(log).sort((a, b) => a - b)).toEqual([...ids.slice(0, 5), next]);
    await again.instruct(staying.id, { type: 'halt', reason: 'end of test' });
    expect((await stays.exited).code).toBe(0);

    // a database that holds an installation is never written into
    const twice = await runCommand([SERVER, 'migrate', '--from', `sqlite:${file}`, '--to', db]);
    expect(twice.code).toBe(3);
    expect(twice.stderr).toMatch(/the PostgreSQL database is not empty \(table \w+ holds rows\): migrate into a new, empty database/);
    expect((await again.jobs()).length).toBe(7);
    await second.stop();
  });

  it('while PostgreSQL is down answers 503 VMP_DATABASE_UNAVAILABLE with Retry-After, and serves again once it is back, without a restart', async () => {
    const db = await cluster.createDatabase();
    const server = await startServer(db, ['--db-pool', '2']);
    const api = admin(server.url);
    const id = await api.submit({ command: ['true'], name: 'before' });
    await cluster.halt();
    try {
      for (const [method, route, body] of [
        ['GET', '/v1/payloads', undefined],
        ['POST', '/v1/payloads', { command: ['true'], name: 'during' }],
      ] as const) {
        const res = await fetch(server.url + route, {
          method,
          headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
          body: body && JSON.stringify(body),
        });
        expect([method, route, res.status, res.headers.get('retry-after'), await res.json()]).toEqual([
          method,
          route,
          503,
          '5',
          { error: { code: 'VMP_DATABASE_UNAVAILABLE', message: "the server's database is unavailable; try again in 5 s" } },
        ]);
      }
      // the health route does not touch the database: the process is alive
      expect((await fetch(`${server.url}/v1/health`)).status).toBe(200);
    } finally {
      await cluster.start();
    }
    // the same process, its pool reconnected; the submission refused meanwhile did not happen
    expect((await api.jobs()).map((j) => [j.id, j.name])).toEqual([[id, 'before']]);
    expect(server.child.exitCode).toBeNull();
    expect(server.stderr()).not.toContain('VMP_INTERNAL');
    await server.stop();
  });
});
