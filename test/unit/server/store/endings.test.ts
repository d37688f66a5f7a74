import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { EVICTION_REASONS, type PayloadEndedReport } from '../../../../src/protocol/index.js';
import { reportsSchema } from '../../../../src/protocol/pilot-schemas.js';
import { MIGRATIONS } from '../../../../src/server/store/migrations.js';
import { afterInterruption, reportedOutcome } from '../../../../src/server/store/outcomes.js';
import { openSqliteStore } from '../../../../src/server/store/sqlite.js';
import { tempDir } from '../helpers.js';

const T = 1_700_000_000_000;

describe('how an attempt ends (pure)', () => {
  const end = (o: Partial<PayloadEndedReport>) => ({ exitCode: null, signal: 'SIGTERM', ...o });
  it('exit 0 is done whatever else is said; a kill asked for is cancelled; a limit is the payload’s failure; else evicted only when the pilot says so', () => {
    expect(reportedOutcome(end({ exitCode: 0, signal: null, evicted: { reason: 'halt' } }), true)).toBe('done');
    expect(reportedOutcome(end({ evicted: { reason: 'halt' } }), true)).toBe('cancelled');
    expect(reportedOutcome(end({ evicted: { reason: 'halt' }, timedOut: true }), false)).toBe('failed');
    expect(reportedOutcome(end({ evicted: { reason: 'lease' }, overMemory: true }), false)).toBe('failed');
    expect(reportedOutcome(end({ evicted: { reason: 'deadline' } }), false)).toBe('evicted');
    expect(reportedOutcome(end({ exitCode: 1, signal: null }), false)).toBe('failed');
    expect(reportedOutcome(end({}), false)).toBe('failed');
  });

  it('gives an interrupted attempt another one only while attempts are left and requeueing is allowed', () => {
    const base = { attempts: 1, maxAttempts: 3, requeue: true, cancelRequested: false };
    expect(afterInterruption(base)).toBe('queued');
    expect(afterInterruption({ ...base, attempts: 3 })).toBe('failed: last attempt');
    expect(afterInterruption({ ...base, requeue: false })).toBe('failed: no requeue');
    expect(afterInterruption({ ...base, cancelRequested: true, requeue: false })).toBe('cancelled');
  });

  it('the report schema takes exactly the eviction reasons the protocol names', () => {
    const branch = reportsSchema.properties.reports.items.allOf.find((b) => b.if.properties.type.const === 'payload-ended')!;
    const evicted = (branch.then.properties as { evicted?: { properties: { reason: { enum: readonly string[] } } } }).evicted;
    expect(evicted?.properties.reason.enum).toEqual([...EVICTION_REASONS]);
  });
});

describe('migration 4 on a database written before it', () => {
  it('turns payloads cancelled in the queue into cancelled and splits the accounted core-seconds by how attempts ended', async () => {
    const tmp = tempDir();
    const file = path.join(tmp.dir, 'server.db');
    try {
      // a version 3 database, with what the server of then wrote (fixed times: 2023-11-14)
      const db = new Database(file);
      for (const m of MIGRATIONS.filter((x) => x.version <= 3)) db.exec(m.sql);
      db.pragma('user_version = 3');
      db.exec(`
        INSERT INTO pilots (id, hostname, version, state, cores, memory_mb, credential_hash, registered_at) VALUES (1, 'h', '0.1.0', 'halted', 4, 1, 'x', 0);
        INSERT INTO payloads (id, name, grp, command, env, cores_min, cores_max, whole_node, priority, state, pilot_id, allocated_cores,
          message, submitted_at, started_at, ended_at, attempts) VALUES
          (1, 'ok', 'atlas', '[]', '{}', 2, 2, 0, 0, 'done', 1, 2, NULL, 0, ${T}, ${T + 100_000}, 1),
          (2, 'bad', 'atlas', '[]', '{}', 1, 1, 0, 0, 'failed', 1, 1, NULL, 0, ${T}, ${T + 10_000}, 1),
          (3, 'gone', 'atlas', '[]', '{}', 1, 1, 0, 0, 'failed', 1, 1, 'lost on its last attempt (3 of 3): x', 0, ${T}, ${T + 30_000}, 3),
          (4, 'nope', 'atlas', '[]', '{}', 1, 1, 0, 0, 'failed', NULL, NULL, 'cancelled: wrong input', 0, NULL, ${T}, 0);
        INSERT INTO payload_states (payload_id, state, reason, at) VALUES (4, 'queued', 'submitted', 0), (4, 'failed', 'cancelled: wrong input', ${T});
        INSERT INTO lost_attempts (payload_id, pilot_id, cores, started_at, ended_at) VALUES (3, 1, 1, ${T - 60_000}, ${T - 20_000}), (3, 1, 1, ${T}, ${T + 30_000});
        INSERT INTO accounting (day, grp, pilot_id, core_sec, wall_sec, done, failed) VALUES ('2023-11-14', 'atlas', 1, 280, 180, 1, 2);
      `);
      db.close();
      const store = openSqliteStore(file);
      expect(await store.getPayload(4)).toMatchObject({ state: 'cancelled', requeue: true });
      expect((await store.payloadHistory(4)).map((h) => h.state)).toEqual(['queued', 'cancelled']);
      expect(await store.getPayload(2)).toMatchObject({ state: 'failed', coreSec: 10 });
      expect(await store.getPayload(3)).toMatchObject({ state: 'failed', coreSec: 0, evictedCoreSec: 70 });
      expect(await store.accounting({})).toEqual([
        {
          day: '2023-11-14', group: 'atlas', pilotId: 1, coreSec: 280, wallSec: 180, done: 1, failed: 2, cancelled: 0, evicted: 2,
          doneCoreSec: 200, failedCoreSec: 10, cancelledCoreSec: 0, evictedCoreSec: 70,
        },
      ]);
      await store.close();
    } finally {
      tmp.remove();
    }
  });
});
