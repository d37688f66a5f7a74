/**
 * The PostgreSQL store: the shared Store contract (store-contract.ts, with
 * its concurrency cases on two stores over one database) on a real
 * PostgreSQL 15 (test/postgres.ts: one cluster for this file, a new
 * database per test), its migrations run once when several servers start
 * together, and a clear error naming the database it cannot reach.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { PG_SCHEMA_VERSION, migratePg } from '../../../../src/server/store/pg-migrations.js';
import { isPostgresUrl, openPgStore } from '../../../../src/server/store/pg.js';
import { pgPool } from '../../../../src/server/store/pg-sql.js';
import { SCHEMA_VERSION } from '../../../../src/server/store/migrations.js';
import { isVmpilotError, type VmpilotError } from '../../../../src/shared/errors.js';
import { startPostgres, type PgCluster } from '../../../postgres.js';
import { heartbeat, registration } from '../helpers.js';
import { storeContract } from './store-contract.js';
import { pgWorld } from './worlds.js';

let cluster: PgCluster;
beforeAll(async () => {
  cluster = await startPostgres();
}, 180_000);
afterAll(async () => {
  await cluster?.stop();
});

storeContract('PostgreSQL', pgWorld(() => cluster));

describe('PostgreSQL store', () => {
  it('tells a PostgreSQL URL from a SQLite file', () => {
    expect(isPostgresUrl('postgres://vmpilot@db.example.org/vmpilot')).toBe(true);
    expect(isPostgresUrl('postgresql://vmpilot@db.example.org/vmpilot')).toBe(true);
    expect(isPostgresUrl('/var/lib/vmpilot/server.db')).toBe(false);
    expect(isPostgresUrl('postgres.db')).toBe(false);
  });

  it('migrates once when several servers start together, to the version number SQLite has', async () => {
    const url = await cluster.createDatabase();
    const pools = [0, 1, 2, 3].map(() => pgPool(url, 2));
    try {
      const applied = await Promise.all(pools.map((p) => migratePg(p)));
      // every version applied exactly once, by whichever server got there first
      expect(applied.flat().sort((x, y) => x - y)).toEqual(Array.from({ length: PG_SCHEMA_VERSION }, (_, i) => i + 1));
      expect(PG_SCHEMA_VERSION).toBe(SCHEMA_VERSION);
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      const rows = (await client.query('SELECT version FROM schema_version ORDER BY version')).rows as { version: string }[];
      await client.end();
      expect(rows.map((r) => Number(r.version))).toEqual(applied.flat().sort((x, y) => x - y));
      // opened again: nothing to do, and the records are usable
      expect(await migratePg(pools[0]!)).toEqual([]);
      const store = await openPgStore(url);
      expect((await store.createPilot(registration(), 'h', 1)).state).toBe('booting');
      await store.close();
    } finally {
      for (const p of pools) await p.close();
    }
  });

  it('refuses a database written by a newer vmpilot, and names it', async () => {
    const url = await cluster.createDatabase();
    const store = await openPgStore(url);
    await store.close();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query('INSERT INTO schema_version (version) VALUES ($1)', [PG_SCHEMA_VERSION + 1]);
    await client.end();
    const err = await openPgStore(url).catch((e: unknown) => e);
    expect(isVmpilotError(err, 'VMP_DATABASE')).toBe(true);
    expect((err as Error).message).toMatch(new RegExp(`schema version ${PG_SCHEMA_VERSION + 1} is newer`));
  });

  it('carries on after PostgreSQL restarts: the connections it cut are dropped and new ones opened, nothing committed lost', async () => {
    const url = await cluster.createDatabase();
    const store = await openPgStore(url, { maxAttempts: 3 }, { poolSize: 2 });
    try {
      const { id } = await store.submitPayload({ command: ['x'] }, 1);
      // both connections of the pool in use once, so both are cut by the restart
      await Promise.all([store.getPayload(id), store.queuedCount()]);
      await cluster.restart();
      // the first calls may meet a cut connection (VMP_DATABASE_UNAVAILABLE); the store recovers by itself, with no reopening
      let answer: unknown;
      for (let i = 0; i < 10 && answer === undefined; i++) {
        answer = await store.getPayload(id).catch((err: unknown) => {
          expect(isVmpilotError(err, 'VMP_DATABASE_UNAVAILABLE'), String(err)).toBe(true);
          return undefined;
        });
      }
      expect(answer).toMatchObject({ id, state: 'queued' });
      expect((await store.submitPayloads([{ command: ['y'] }], 2)).length).toBe(1);
      expect(await store.queuedCount()).toBe(2);
    } finally {
      await store.close();
    }
  });

  it('writes heartbeats in place: each is a HOT update of the pilot row (no new index entry), so heartbeats leave no index bloat', async () => {
    const url = await cluster.createDatabase();
    const stats = async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const r = await client.query("SELECT n_tup_upd AS upd, n_tup_hot_upd AS hot FROM pg_stat_user_tables WHERE relname = 'pilots'");
        return { upd: Number(r.rows[0].upd), hot: Number(r.rows[0].hot) };
      } finally {
        await client.end();
      }
    };
    /** The counters once `updates` updates are counted (a backend sends its counts when its connection ends). */
    const counted = async (updates: number) => {
      for (let i = 0; i < 2000; i++) {
        const s = await stats();
        if (s.upd >= updates) return s;
        await new Promise((r) => setImmediate(r));
      }
      throw new Error(`pg_stat_user_tables never counted ${updates} updates of pilots`);
    };
    let store = await openPgStore(url, { maxAttempts: 3 }, { poolSize: 1 });
    const { id } = await store.createPilot(registration(), 'h', 1);
    // the first heartbeat moves the pilot from booting to running: its state (an indexed column) changes once
    await store.recordHeartbeat(id, heartbeat({ state: 'serving' }), 2);
    await store.close();
    const before = await counted(1);
    store = await openPgStore(url, { maxAttempts: 3 }, { poolSize: 1 });
    for (let i = 0; i < 20; i++) await store.recordHeartbeat(id, heartbeat({ state: 'serving', uptimeSec: 100 + i }), 1000 * (i + 3));
    await store.close();
    const after = await counted(before.upd + 20);
    expect(after.upd - before.upd).toBe(20);
    expect(after.hot - before.hot).toBe(20);
  });

  it('a transaction whose connection PostgreSQL cuts between two of its statements fails with VMP_DATABASE_UNAVAILABLE, not an uncaught error', async () => {
    const url = await cluster.createDatabase();
    const pool = pgPool(url, 2);
    // a second connection of this process: when it has seen PostgreSQL go, so has the transaction's socket
    const watcher = new pg.Client({ connectionString: url });
    await watcher.connect();
    const watcherCut = new Promise<void>((resolve) => {
      watcher.on('error', () => resolve());
      watcher.on('end', () => resolve());
    });
    let err: unknown;
    try {
      err = await pool
        .tx(async (q) => {
          await q.get('SELECT 1');
          await cluster.halt();
          await watcherCut;
          await new Promise((resolve) => setImmediate(resolve));
          return q.get('SELECT 2');
        })
        .catch((e: unknown) => e);
    } finally {
      await cluster.start();
    }
    expect(isVmpilotError(err, 'VMP_DATABASE_UNAVAILABLE'), String(err)).toBe(true);
    // the broken connection left the pool: the next query opens a new one
    expect(await pool.get('SELECT 3 AS n')).toEqual({ n: 3 });
    await pool.close();
  });

  it('while PostgreSQL is down every call is VMP_DATABASE_UNAVAILABLE (503), and a statement PostgreSQL refuses stays its own error', async () => {
    const url = await cluster.createDatabase();
    const pool = pgPool(url, 2);
    const refused = await pool.get('SELECT * FROM no_such_table').catch((e: unknown) => e);
    expect(isVmpilotError(refused)).toBe(false);
    expect((refused as { code?: string }).code).toBe('42P01');
    await cluster.halt();
    try {
      for (const call of [() => pool.get('SELECT 1'), () => pool.tx((q) => q.get('SELECT 1'))]) {
        const err = await call().catch((e: unknown) => e);
        expect(isVmpilotError(err, 'VMP_DATABASE_UNAVAILABLE'), String(err)).toBe(true);
        expect((err as VmpilotError).details).toMatchObject({ retryAfterSec: 5 });
      }
    } finally {
      await cluster.start();
    }
    await pool.close();
  });

  it('says which database it cannot reach, without its password', async () => {
    const url = `postgres://vmpilot:s3cret@127.0.0.1:${cluster.port}/no_such_database`;
    const err = await openPgStore(url).catch((e: unknown) => e);
    expect(isVmpilotError(err, 'VMP_DATABASE')).toBe(true);
    expect((err as Error).message).toContain(`127.0.0.1:${cluster.port}/no_such_database`);
    expect((err as Error).message).not.toContain('s3cret');
  });
});
