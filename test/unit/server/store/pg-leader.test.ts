/**
 * The leader lock on a real PostgreSQL 15 (src/server/store/pg-leader.ts):
 * one holder per database, on a session of its own named in
 * pg_stat_activity (its keepalive settings are set when it connects: a
 * refused SET would fail every try here); freed when the holder's session
 * ends (closed, or terminated, when the holder is told); held apart per
 * database.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LEADER_APPLICATION_NAME, LEADER_LOCK, pgLeaderLock } from '../../../../src/server/store/pg-leader.js';
import { MIGRATION_LOCK } from '../../../../src/server/store/pg-migrations.js';
import { DESIGNATION_LOCK } from '../../../../src/server/store/pg-reservations.js';
import { startPostgres, type PgCluster } from '../../../postgres.js';

let cluster: PgCluster;
beforeAll(async () => {
  cluster = await startPostgres();
}, 180_000);
afterAll(async () => {
  await cluster?.stop();
});

/** `sql` run on a connection of the test's own to `url`. */
async function query<T>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows as T[];
  } finally {
    await c.end();
  }
}

/** The PIDs of the sessions holding the leader lock of `url`'s database. */
const holders = (url: string) =>
  query<{ pid: number }>(url, "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE l.locktype = 'advisory' AND l.granted AND l.objid = $1 AND d.datname = current_database()", [LEADER_LOCK]).then((r) => r.map((x) => x.pid));

describe('the PostgreSQL leader lock', () => {
  it("is a key of its own: held for as long as a replica leads, it never holds up the store's own advisory locks", () => {
    expect(new Set([LEADER_LOCK, MIGRATION_LOCK, DESIGNATION_LOCK]).size).toBe(3);
  });

  it('one of two holds it, on a session of its own with keepalives; the other takes it once the first closes', async () => {
    const url = await cluster.createDatabase();
    const a = pgLeaderLock(url);
    const b = pgLeaderLock(url);
    try {
      expect(await a.tryTake()).toBe(true);
      expect(await b.tryTake()).toBe(false);
      expect(await a.tryTake()).toBe(true);
      expect(await a.stillHeld()).toBe(true);
      expect(await b.stillHeld()).toBe(false);
      const sessions = await query<{ pid: number }>(url, 'SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()', [LEADER_APPLICATION_NAME]);
      expect(sessions).toHaveLength(2);
      const held = await holders(url);
      expect(held).toHaveLength(1);
      expect(sessions.map((s) => s.pid)).toContain(held[0]);
      await a.close();
      expect(await b.tryTake()).toBe(true);
      expect(await holders(url)).toHaveLength(1);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("a holder whose session is terminated is told, the lock is free, and its next try connects again", async () => {
    const url = await cluster.createDatabase();
    const a = pgLeaderLock(url);
    const b = pgLeaderLock(url);
    const told: string[] = [];
    a.onLost((why) => told.push(why));
    try {
      expect(await a.tryTake()).toBe(true);
      const [pid] = await holders(url);
      await query(url, 'SELECT pg_terminate_backend($1)', [pid]);
      await vi.waitFor(() => expect(told).toHaveLength(1), { timeout: 10_000, interval: 20 });
      expect(told[0]).toMatch(/terminat/);
      expect(await a.stillHeld()).toBe(false);
      expect(await b.tryTake()).toBe(true);
      expect(await a.tryTake()).toBe(false);
      // a follower's lost connection is no lost lock: it is not told
      const followers = await query<{ pid: number }>(url, 'SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database() AND pid <> $2', [LEADER_APPLICATION_NAME, (await holders(url))[0]]);
      await query(url, 'SELECT pg_terminate_backend($1)', [followers[0]!.pid]);
      await vi.waitFor(async () => expect(await a.tryTake()).toBe(false), { timeout: 10_000, interval: 50 });
      expect(told).toHaveLength(1);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('two databases have a leader each', async () => {
    const one = await cluster.createDatabase();
    const two = await cluster.createDatabase();
    const a = pgLeaderLock(one);
    const b = pgLeaderLock(two);
    try {
      expect(await a.tryTake()).toBe(true);
      expect(await b.tryTake()).toBe(true);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
