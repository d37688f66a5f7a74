/**
 * How a payload's attempt ends, in the store's transactions: accounting of
 * what it used, and the rule for a lost attempt (back to the queue while
 * attempts are left, else failed). No payload ever leaves the records: each
 * step is a state change with a history row.
 */
import type { Instruction, InstructionRequest } from '../../protocol/index.js';
import { movePayload } from './payload-ops.js';
import type { PayloadRow } from './rows.js';
import type { Sql } from './sql.js';
import type { StorePolicy } from './store.js';

/** The UTC day (YYYY-MM-DD) of a time in ms. */
export function dayOf(at: number): string {
  return new Date(at).toISOString().slice(0, 10);
}

/**
 * Add one attempt of `row` to the accounting of its group and pilot, on the
 * day it ended: core-seconds and wall seconds from its start (none if it
 * never started), and whether it was done or failed (a lost attempt is
 * neither, but what it used is counted).
 */
export function chargeAccounting(sql: Sql, row: PayloadRow, endedAt: number, outcome: 'done' | 'failed' | 'lost'): void {
  if (row.pilot_id === null) return;
  const wallSec = row.started_at === null ? 0 : Math.max(0, (endedAt - row.started_at) / 1000);
  const coreSec = wallSec * (row.allocated_cores ?? 0);
  sql.run(
    `INSERT INTO accounting (day, grp, pilot_id, core_sec, wall_sec, done, failed) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (day, grp, pilot_id) DO UPDATE SET core_sec = core_sec + excluded.core_sec,
       wall_sec = wall_sec + excluded.wall_sec, done = done + excluded.done, failed = failed + excluded.failed`,
    dayOf(endedAt),
    row.grp,
    row.pilot_id,
    coreSec,
    wallSec,
    outcome === 'done' ? 1 : 0,
    outcome === 'failed' ? 1 : 0,
  );
}

/**
 * The attempt of `row` (assigned or running) is lost: record `lost` in its
 * history and in the accounting, then put it back in the queue when it has
 * attempts left, else fail it. Returns where it went.
 */
export function losePayload(sql: Sql, row: PayloadRow, why: string, at: number, policy: StorePolicy): 'queued' | 'failed' {
  movePayload(sql, row, 'lost', { message: why, ended_at: at }, why, at);
  chargeAccounting(sql, row, at, 'lost');
  // the attempt's run still counts towards its group's recent usage
  if (row.started_at !== null && row.pilot_id !== null && row.allocated_cores !== null) {
    sql.run(
      'INSERT INTO lost_attempts (payload_id, pilot_id, cores, started_at, ended_at) VALUES (?, ?, ?, ?, ?)',
      row.id,
      row.pilot_id,
      row.allocated_cores,
      row.started_at,
      at,
    );
  }
  const lost: PayloadRow = { ...row, state: 'lost', message: why, ended_at: at };
  if (row.attempts < policy.maxAttempts) {
    movePayload(
      sql,
      lost,
      'queued',
      { pilot_id: null, allocated_cores: null, assigned_at: null, started_at: null, ended_at: null, exit_code: null, signal: null },
      `requeued after attempt ${row.attempts} of ${policy.maxAttempts} was lost`,
      at,
    );
    return 'queued';
  }
  const message = `lost on its last attempt (${row.attempts} of ${policy.maxAttempts}): ${why}`;
  movePayload(sql, lost, 'failed', { message }, 'no attempts left', at);
  sql.run(
    'UPDATE accounting SET failed = failed + 1 WHERE day = ? AND grp = ? AND pilot_id = ?',
    dayOf(at),
    row.grp,
    row.pilot_id,
  );
  return 'failed';
}

/**
 * A kill-payload instruction for `pilotId`, unless one for that payload is
 * still pending there (a pilot that keeps reporting it is told once).
 */
export function killInstruction(sql: Sql, pilotId: number, payloadId: number, reason: string, at: number): Instruction {
  const pending = sql
    .all<{ id: number; body: string }>('SELECT id, body FROM instructions WHERE pilot_id = ? AND done_at IS NULL', pilotId)
    .find((r) => {
      const b = JSON.parse(r.body) as { type?: string; payloadId?: number };
      return b.type === 'kill-payload' && b.payloadId === payloadId;
    });
  if (pending) return { id: pending.id, ...(JSON.parse(pending.body) as object) } as Instruction;
  const body: InstructionRequest = { type: 'kill-payload', payloadId, reason };
  const { id } = sql.run('INSERT INTO instructions (pilot_id, body, created_at) VALUES (?, ?, ?)', pilotId, JSON.stringify(body), at);
  return { id, ...body };
}
