/**
 * Wake-ups across two built servers on one PostgreSQL database
 * (api/pg-notifier.ts): a match request waiting on server B is answered
 * with a payload submitted through server A, and with an instruction sent
 * through A, within its one long poll; in listen mode (LISTEN/NOTIFY, the
 * fallback poll set far beyond the wait), in poll mode, and after the
 * wake-up connections were cut (pg_terminate_backend, and a restart of
 * PostgreSQL) and came back.
 *
 * Every wait is 60 s (--match-wait-max 60): a request that was not woken
 * ends with `"payload": null` after it, so a payload in the reply of that
 * one request is the event that shows the wake-up crossed. An instruction
 * comes with the reply at the end of the wait too, so each reply must also
 * come well before the wait's end (within half of it: the wake-up takes
 * milliseconds; its latency is bench/dispatch-replicas.mjs's).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MatchReply, RegisterReply } from '../../src/protocol/index.js';
import { startPostgres, type PgCluster } from '../postgres.js';
import { ADMIN_TOKEN, PILOT_TOKEN, admin, killAll, startServer, waitFor, type Server } from './harness.js';

const WAIT_SEC = 60;
const WAKE_APP = 'vmpilot-server wake-ups';

/** Register a pilot through `url` (as an agent would), and return how to ask it for work there. */
async function pilotOn(url: string) {
  const res = await fetch(`${url}/v1/register`, {
    method: 'POST',
    headers: { authorization: `Bearer ${PILOT_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ hostname: 'node-b.example.org', version: '0.1.0', cores: 2, memoryMb: 4000 }),
  });
  expect(res.status).toBe(201);
  const reg = (await res.json()) as RegisterReply;
  const match = async (): Promise<MatchReply> => {
    const asked = Date.now();
    const r = await fetch(`${url}/v1/pilots/${reg.pilotId}/match`, {
      method: 'POST',
      headers: { authorization: `Bearer ${reg.credential}`, 'content-type': 'application/json' },
      body: JSON.stringify({ freeCores: 2, totalCores: 2, freeMemoryMb: 4000, remainingSec: null, holding: [], waitSec: WAIT_SEC }),
    });
    expect(r.status).toBe(200);
    const reply = (await r.json()) as MatchReply;
    // answered because it was woken, not because its wait ended
    expect(Date.now() - asked, 'the match request was answered only at the end of its wait').toBeLessThan((WAIT_SEC * 1000) / 2);
    return reply;
  };
  return { pilotId: reg.pilotId, match };
}

/** The match requests `server` holds open now (its /metrics gauge). */
async function openMatches(server: Server): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text();
  return Number(/^vmpilot_match_requests_open (\d+)$/m.exec(text)?.[1] ?? NaN);
}

/** Start a match on B's pilot and resolve once B holds it open (it looked at the store and found nothing). */
async function waitingOn(b: Server) {
  const pilot = await pilotOn(b.url);
  const reply = pilot.match();
  await waitFor('the match request to wait on B', async () => (await openMatches(b)) === 1);
  return { pilotId: pilot.pilotId, reply };
}

describe('wake-ups across servers on PostgreSQL', () => {
  let cluster: PgCluster;
  beforeAll(async () => {
    cluster = await startPostgres();
  }, 180_000);
  afterAll(async () => {
    killAll();
    await cluster?.stop();
  });

  const pair = async (flags: string[]) => {
    const db = await cluster.createDatabase();
    const extra = ['--match-wait-max', String(WAIT_SEC), '--db-pool', '3', ...flags];
    const a = await startServer(db, extra);
    const b = await startServer(db, extra);
    return { db, a, b };
  };

  it('listen: a payload submitted through A is handed to a match request waiting on B, in that one request', async () => {
    // the fallback poll far beyond the wait: only the notification can wake B in time
    const { a, b } = await pair(['--db-wakeups', 'listen', '--db-poll-ms', '600000']);
    const waiting = await waitingOn(b);
    const id = await admin(a.url).submit({ command: ['true'] });
    const reply = await waiting.reply;
    expect(reply.payload?.id).toBe(id);
    expect((await admin(a.url).job(id)).state).toBe('assigned');
    await Promise.all([a.stop(), b.stop()]);
  }, 120_000);

  it('listen: a drain sent through A reaches its pilot waiting on B, in that one request', async () => {
    const { a, b } = await pair(['--db-poll-ms', '600000']);
    const waiting = await waitingOn(b);
    await admin(a.url).instruct(waiting.pilotId, { type: 'drain', reason: 'site downtime' });
    const reply = await waiting.reply;
    expect(reply.payload).toBeNull();
    expect(reply.instructions.map((i) => [i.type, (i as { reason?: string }).reason])).toEqual([['drain', 'site downtime']]);
    await Promise.all([a.stop(), b.stop()]);
  }, 120_000);

  it('poll: with no LISTEN, a payload submitted through A reaches the request waiting on B at B’s next poll', async () => {
    const { db, a, b } = await pair(['--db-wakeups', 'poll', '--db-poll-ms', '1000']);
    const waiting = await waitingOn(b);
    const id = await admin(a.url).submit({ command: ['true'] });
    expect((await waiting.reply).payload?.id).toBe(id);
    // and no server opened a wake-up connection
    const client = new pg.Client({ connectionString: db });
    await client.connect();
    const { rows } = await client.query('SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [WAKE_APP]);
    await client.end();
    expect(rows[0]).toEqual({ n: 0 });
    await Promise.all([a.stop(), b.stop()]);
  }, 120_000);

  it('listen: the wake-up connections cut by PostgreSQL come back, and the next wake-up crosses again', async () => {
    const { db, a, b } = await pair(['--db-poll-ms', '600000']);
    const client = new pg.Client({ connectionString: db });
    await client.connect();
    const database = new URL(db).pathname.slice(1);
    const listeners = async (): Promise<number[]> =>
      (await client.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = $2 ORDER BY pid', [WAKE_APP, database])).rows.map(
        (r) => r.pid,
      );
    const before = await waitFor('both servers to listen', async () => {
      const pids = await listeners();
      return pids.length === 2 && pids;
    });
    await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = $2', [WAKE_APP, database]);
    await waitFor('both servers to listen again, on new connections', async () => {
      const pids = await listeners();
      return pids.length === 2 && pids.every((p) => !before.includes(p));
    });
    await client.end();
    const waiting = await waitingOn(b);
    const id = await admin(a.url).submit({ command: ['true'] });
    expect((await waiting.reply).payload?.id).toBe(id);
    await Promise.all([a.stop(), b.stop()]);
  }, 120_000);

  it('listen: after PostgreSQL restarted, both servers listen again and a wake-up crosses', async () => {
    const { db, a, b } = await pair(['--db-poll-ms', '600000']);
    const database = new URL(db).pathname.slice(1);
    const listeners = async (): Promise<number> => {
      const client = new pg.Client({ connectionString: db });
      await client.connect();
      try {
        const { rows } = await client.query('SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND datname = $2', [WAKE_APP, database]);
        return rows[0].n as number;
      } finally {
        await client.end();
      }
    };
    await waitFor('both servers to listen', async () => (await listeners()) === 2);
    await cluster.restart();
    await waitFor('both servers to listen again after the restart', async () => (await listeners()) === 2);
    const waiting = await waitingOn(b);
    const id = await admin(a.url).submit({ command: ['true'] });
    expect((await waiting.reply).payload?.id).toBe(id);
    await Promise.all([a.stop(), b.stop()]);
  }, 120_000);

  it('refuses --db-wakeups with a SQLite file, naming the flag', async () => {
    await expect(startServer('/tmp/never-created.db', ['--db-wakeups', 'poll'])).rejects.toThrow(/--db-wakeups applies to a PostgreSQL --db only/);
  });
});
