/**
 * Read-only aggregate queries of the SQLite store: run intervals (fair-share
 * usage and the dashboard's chart), accounting, and counts for /metrics.
 */
import type { RunInterval } from '../queue/usage.js';
import type { Sql } from './sql.js';
import type { AccountingFilter, AccountingRow, AccountingTotal, StoreCounts } from './store.js';

/** Stretches of running that ended after `since`, or still run. */
export function runIntervalsIn(sql: Sql, since: number): RunInterval[] {
  return sql.all<RunInterval>(
    // two index ranges (open runs; runs ended since) rather than one scan of every payload ever run
    // INDEXED BY: left to itself the planner reads every queued payload (ended_at IS NULL) through payloads_ended
    `SELECT grp AS "group", allocated_cores AS cores, started_at AS startedAt, ended_at AS endedAt FROM payloads INDEXED BY payloads_open_runs
       WHERE ended_at IS NULL AND started_at IS NOT NULL AND allocated_cores IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM lost_attempts l WHERE l.payload_id = payloads.id AND l.started_at = payloads.started_at)
     UNION ALL
     SELECT grp, allocated_cores, started_at, ended_at FROM payloads
       WHERE ended_at > ? AND started_at IS NOT NULL AND allocated_cores IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM lost_attempts l WHERE l.payload_id = payloads.id AND l.started_at = payloads.started_at)
     UNION ALL
     SELECT p.grp, s.cores, s.started_at, s.ended_at FROM lost_attempts s JOIN payloads p ON p.id = s.payload_id
       WHERE s.ended_at > ?`,
    since,
    since,
  );
}

/** Accounting rows matching `f`, by day, group, pilot. */
export function accountingIn(sql: Sql, f: AccountingFilter): AccountingRow[] {
  const where: string[] = [];
  const params: unknown[] = [];
  if (f.from) (where.push('day >= ?'), params.push(f.from));
  if (f.to) (where.push('day <= ?'), params.push(f.to));
  if (f.group) (where.push('grp = ?'), params.push(f.group));
  if (f.pilotId !== undefined) (where.push('pilot_id = ?'), params.push(f.pilotId));
  const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
  return sql.all<AccountingRow>(
    `SELECT day, grp AS "group", pilot_id AS pilotId, core_sec AS coreSec, wall_sec AS wallSec, done, failed, cancelled, evicted,
       done_core_sec AS doneCoreSec, failed_core_sec AS failedCoreSec, cancelled_core_sec AS cancelledCoreSec,
       evicted_core_sec AS evictedCoreSec
       FROM accounting ${clause} ORDER BY day, grp, pilot_id`,
    ...params,
  );
}

/**
 * Pilots and payloads by state, queued payloads by group: read from the
 * counts the triggers keep (migration 6), a few rows however many records.
 */
export function countsIn(sql: Sql): StoreCounts {
  const by = (rows: { k: string; n: number }[]) => Object.fromEntries(rows.map((r) => [r.k, r.n]));
  return {
    pilotsByState: by(sql.all('SELECT state AS k, n FROM pilot_counts WHERE n > 0')),
    payloadsByState: by(sql.all('SELECT state AS k, SUM(n) AS n FROM payload_counts GROUP BY state HAVING SUM(n) > 0')),
    queuedByGroup: by(sql.all("SELECT grp AS k, n FROM payload_counts WHERE state = 'queued' AND n > 0")),
    coreSecByOutcome: coreSecByOutcome(sql),
  };
}

/** Core-seconds accounted so far, by how the attempts ended: from the totals by group (one row per group). */
function coreSecByOutcome(sql: Sql): Record<string, number> {
  const r = sql.get<{ done: number | null; failed: number | null; cancelled: number | null; evicted: number | null }>(
    `SELECT SUM(done_core_sec) AS done, SUM(failed_core_sec) AS failed, SUM(cancelled_core_sec) AS cancelled,
       SUM(evicted_core_sec) AS evicted FROM accounting_groups`,
  );
  return { done: r?.done ?? 0, failed: r?.failed ?? 0, cancelled: r?.cancelled ?? 0, evicted: r?.evicted ?? 0 };
}

/** Accounting totals by group since the start, from the totals the triggers keep: one row per group. */
export function accountingByGroupIn(sql: Sql): AccountingTotal[] {
  return sql.all<AccountingTotal>(
    `SELECT grp AS "group", core_sec AS coreSec, wall_sec AS wallSec, done, failed, cancelled, evicted,
       done_core_sec AS doneCoreSec, failed_core_sec AS failedCoreSec, cancelled_core_sec AS cancelledCoreSec,
       evicted_core_sec AS evictedCoreSec
       FROM accounting_groups ORDER BY grp`,
  );
}
