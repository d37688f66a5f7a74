import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pick } from '../../../../src/server/queue/pick.js';
import { MIGRATIONS } from '../../../../src/server/store/migrations.js';
import { openSqliteStore, type SqliteStore } from '../../../../src/server/store/sqlite.js';
import type { StoreCounts } from '../../../../src/server/store/store.js';
import { tempDir } from '../helpers.js';
import { everyKindOfChange } from './store-contract-records.js';

const T = 1_700_000_000_000;

/**
 * The counts and totals the triggers keep (what /metrics, the dashboard and
 * the claims read) equal counting every record of the database in `file`;
 * returns the counts.
 */
async function expectKeptAsCounted(store: SqliteStore, file: string): Promise<StoreCounts> {
  const db = new Database(file, { readonly: true });
  try {
    const by = (sql: string) => Object.fromEntries((db.prepare(sql).all() as { k: string; n: number }[]).map((r) => [r.k, r.n]));
    const sums = db
      .prepare(
        `SELECT SUM(done_core_sec) AS done, SUM(failed_core_sec) AS failed, SUM(cancelled_core_sec) AS cancelled, SUM(evicted_core_sec) AS evicted
           FROM accounting`,
      )
      .get() as Record<string, number | null>;
    const counts = await store.counts();
    expect(counts).toEqual({
      pilotsByState: by('SELECT state AS k, COUNT(*) AS n FROM pilots GROUP BY state'),
      payloadsByState: by('SELECT state AS k, COUNT(*) AS n FROM payloads GROUP BY state'),
      queuedByGroup: by("SELECT grp AS k, COUNT(*) AS n FROM payloads WHERE state = 'queued' GROUP BY grp"),
      coreSecByOutcome: Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v ?? 0])),
    });
    const totals = db
      .prepare(
        `SELECT grp AS "group", SUM(core_sec) AS coreSec, SUM(wall_sec) AS wallSec, SUM(done) AS done, SUM(failed) AS failed,
           SUM(cancelled) AS cancelled, SUM(evicted) AS evicted, SUM(done_core_sec) AS doneCoreSec, SUM(failed_core_sec) AS failedCoreSec,
           SUM(cancelled_core_sec) AS cancelledCoreSec, SUM(evicted_core_sec) AS evictedCoreSec
           FROM accounting GROUP BY grp ORDER BY grp`,
      )
      .all();
    expect(await store.accountingByGroup()).toEqual(totals);
    expect(totals.length).toBeGreaterThan(0);
    return counts;
  } finally {
    db.close();
  }
}

describe('store counts, totals and listings', () => {
  let tmp: ReturnType<typeof tempDir>;
  let file: string;
  let store: SqliteStore;
  beforeEach(() => {
    tmp = tempDir();
    file = path.join(tmp.dir, 'server.db');
    store = openSqliteStore(file);
  });
  afterEach(async () => {
    await store.close();
    tmp.remove();
  });

  it('keeps the counts /metrics reads equal to counting every record, through every kind of change', async () => {
    await everyKindOfChange(store);
    const counts = await expectKeptAsCounted(store, file);
    expect(counts.payloadsByState).toEqual({ done: 1, failed: 1, cancelled: 2, queued: 1 });
    expect(counts.coreSecByOutcome).toEqual({ done: 5, failed: 3, cancelled: 2, evicted: 22 });
    expect(Object.values(counts.coreSecByOutcome).every((v) => v > 0)).toBe(true);
  });

  it('keeps the counts and totals of a database migrated from version 3 (before eviction and isolation) as of a fresh one', async () => {
    await store.close();
    const old = path.join(tmp.dir, 'v3.db');
    // a version 3 database, with what the server of then wrote (fixed times: 2023-11-14)
    const db = new Database(old);
    for (const m of MIGRATIONS.filter((x) => x.version <= 3)) db.exec(m.sql);
    db.pragma('user_version = 3');
    db.exec(`
      INSERT INTO pilots (id, hostname, version, state, cores, memory_mb, credential_hash, registered_at) VALUES
        (1, 'h', '0.1.0', 'halted', 4, 1, 'x', 0), (2, 'g', '0.1.0', 'running', 4, 1, 'y', 0);
      INSERT INTO payloads (id, name, grp, command, env, cores_min, cores_max, whole_node, priority, state, pilot_id, allocated_cores,
        message, submitted_at, started_at, ended_at, attempts) VALUES
        (1, 'ok', 'atlas', '[]', '{}', 2, 2, 0, 0, 'done', 1, 2, NULL, 0, ${T}, ${T + 100_000}, 1),
        (2, 'bad', 'atlas', '[]', '{}', 1, 1, 0, 0, 'failed', 1, 1, NULL, 0, ${T}, ${T + 10_000}, 1),
        (3, 'gone', 'cms', '[]', '{}', 1, 1, 0, 0, 'failed', 1, 1, 'lost on its last attempt (3 of 3): x', 0, ${T}, ${T + 30_000}, 3),
        (4, 'nope', 'atlas', '[]', '{}', 1, 1, 0, 0, 'failed', NULL, NULL, 'cancelled: wrong input', 0, NULL, ${T}, 0),
        (5, 'wait', 'cms', '[]', '{}', 1, 1, 0, 0, 'queued', NULL, NULL, NULL, 0, NULL, NULL, 0);
      INSERT INTO payload_states (payload_id, state, reason, at) VALUES (4, 'queued', 'submitted', 0), (4, 'failed', 'cancelled: wrong input', ${T});
      INSERT INTO lost_attempts (payload_id, pilot_id, cores, started_at, ended_at) VALUES (3, 1, 1, ${T - 60_000}, ${T - 20_000}), (3, 1, 1, ${T}, ${T + 30_000});
      INSERT INTO accounting (day, grp, pilot_id, core_sec, wall_sec, done, failed) VALUES
        ('2023-11-14', 'atlas', 1, 210, 110, 1, 1), ('2023-11-14', 'cms', 1, 70, 70, 0, 1);
    `);
    db.close();
    store = openSqliteStore(old);
    file = old;
    const migrated = await expectKeptAsCounted(store, file);
    expect(migrated.payloadsByState).toEqual({ done: 1, failed: 2, cancelled: 1, queued: 1 });
    expect(migrated.queuedByGroup).toEqual({ cms: 1 });
    expect(migrated.coreSecByOutcome).toEqual({ done: 200, failed: 10, cancelled: 0, evicted: 70 });
    expect(await store.accountingByGroup()).toEqual([
      { group: 'atlas', coreSec: 210, wallSec: 110, done: 1, failed: 1, cancelled: 0, evicted: 0, doneCoreSec: 200, failedCoreSec: 10, cancelledCoreSec: 0, evictedCoreSec: 0 },
      { group: 'cms', coreSec: 70, wallSec: 70, done: 0, failed: 1, cancelled: 0, evicted: 2, doneCoreSec: 0, failedCoreSec: 0, cancelledCoreSec: 0, evictedCoreSec: 70 },
    ]);
    // and the triggers go on from there: the queued payload runs on pilot 2 and is evicted, then cancelled
    const offer = { freeCores: 4, totalCores: 4, freeMemoryMb: 1000, remainingSec: null };
    const now = Date.UTC(2023, 10, 14, 12);
    const w = (await store.claimPayload(2, offer, pick, now))!;
    expect(w.id).toBe(5);
    await store.applyReport(2, { seq: 1, at: now, type: 'payload-started', payloadId: 5 }, now);
    await store.applyReport(2, { seq: 2, at: now + 4000, type: 'payload-ended', payloadId: 5, exitCode: null, signal: 'SIGTERM', evicted: { reason: 'signal' } }, now + 4000);
    await store.killPayload(5, 'enough', now + 5000);
    const after = await expectKeptAsCounted(store, file);
    expect(after.payloadsByState).toEqual({ done: 1, failed: 2, cancelled: 2 });
    expect(after.coreSecByOutcome.evicted).toBe(74);
  });

});
