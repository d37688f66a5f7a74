/**
 * How a payload's attempt ends, in the store's transactions: accounting of
 * what it used (split by how the attempt ended), the end a pilot reports,
 * an attempt the infrastructure ended (evicted by its pilot, or lost with
 * it: back to the queue while attempts are left and requeueing is allowed),
 * and an administrator's cancel. The decisions are pure (outcomes.ts); no
 * payload ever leaves the records: each step is a state change with a
 * history row.
 */
import type { Instruction, InstructionRequest, PayloadEndedReport } from '../../protocol/index.js';
import { afterInterruption, reportedOutcome, type AttemptOutcome, type Interruption } from './outcomes.js';
import { movePayload } from './payload-ops.js';
import type { PayloadRow } from './rows.js';
import type { Sql } from './sql.js';
import type { StorePolicy } from './store.js';

/** The UTC day (YYYY-MM-DD) of a time in ms. */
export function dayOf(at: number): string {
  return new Date(at).toISOString().slice(0, 10);
}

/** The accounting column that takes an outcome's core-seconds: a lost attempt is the infrastructure's, like an eviction. */
const CORE_SEC_COLUMN: Record<AttemptOutcome, string> = {
  done: 'done_core_sec',
  failed: 'failed_core_sec',
  cancelled: 'cancelled_core_sec',
  evicted: 'evicted_core_sec',
  lost: 'evicted_core_sec',
};

/**
 * Add one attempt of `row` to the accounting of its group and pilot, on the
 * day it ended: core-seconds and wall seconds from its start (none if it
 * never started), in the total and in the column of its outcome; and one
 * payload done, failed or cancelled, or one attempt evicted (evicted or lost).
 */
export function chargeAccounting(sql: Sql, row: PayloadRow, endedAt: number, outcome: AttemptOutcome): void {
  if (row.pilot_id === null) return;
  const wallSec = row.started_at === null ? 0 : Math.max(0, (endedAt - row.started_at) / 1000);
  const coreSec = wallSec * (row.allocated_cores ?? 0);
  const col = CORE_SEC_COLUMN[outcome];
  sql.run(
    `INSERT INTO accounting (day, grp, pilot_id, core_sec, wall_sec, done, failed, cancelled, evicted, ${col})
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (day, grp, pilot_id) DO UPDATE SET core_sec = core_sec + excluded.core_sec,
       wall_sec = wall_sec + excluded.wall_sec, done = done + excluded.done, failed = failed + excluded.failed,
       cancelled = cancelled + excluded.cancelled, evicted = evicted + excluded.evicted, ${col} = ${col} + excluded.${col}`,
    dayOf(endedAt),
    row.grp,
    row.pilot_id,
    coreSec,
    wallSec,
    outcome === 'done' ? 1 : 0,
    outcome === 'failed' ? 1 : 0,
    outcome === 'cancelled' ? 1 : 0,
    outcome === 'evicted' || outcome === 'lost' ? 1 : 0,
    coreSec,
  );
}

/** Count one more payload failed or cancelled after an interrupted attempt, in the accounting row of that attempt. */
function countEnd(sql: Sql, row: PayloadRow, at: number, end: 'failed' | 'cancelled'): void {
  if (row.pilot_id === null) return;
  sql.run(`UPDATE accounting SET ${end} = ${end} + 1 WHERE day = ? AND grp = ? AND pilot_id = ?`, dayOf(at), row.grp, row.pilot_id);
}

/**
 * The pilot reported `row` (assigned or running, its own) ended at `at`:
 * done, failed, cancelled (an administrator asked for the kill), or evicted
 * (the pilot says the infrastructure stopped it: handled as an interrupted
 * attempt). Returns where the payload went.
 */
export function endReported(sql: Sql, row: PayloadRow, report: PayloadEndedReport, at: number, policy: StorePolicy): PayloadRow['state'] {
  const outcome = reportedOutcome(report, row.cancel_reason !== null);
  const ran = { exit_code: report.exitCode, signal: report.signal, output_tail: report.outputTail ?? null };
  if (outcome === 'evicted') {
    const reason = report.evicted?.reason ?? 'halt';
    const why = `evicted by pilot ${row.pilot_id} (${reason}): ${report.message ?? 'stopped by its pilot'}`;
    return interruptAttempt(sql, row, 'evicted', why, at, policy, ran);
  }
  const message = outcome === 'cancelled' ? `cancelled: ${row.cancel_reason}` : (report.message ?? null);
  const reason = outcome === 'cancelled' ? 'killed' : report.timedOut ? 'timed out' : report.overMemory ? 'over memory' : 'ended';
  movePayload(sql, row, outcome, { ...ran, message, ended_at: at }, reason, at);
  chargeAccounting(sql, row, at, outcome);
  return outcome;
}

/**
 * The attempt of `row` (assigned or running) is lost: its pilot halted or
 * stalled while it held it. See `interruptAttempt`.
 */
export function losePayload(sql: Sql, row: PayloadRow, why: string, at: number, policy: StorePolicy): PayloadRow['state'] {
  return interruptAttempt(sql, row, 'lost', why, at, policy);
}

/**
 * The infrastructure ended the attempt of `row` (assigned or running):
 * record `kind` (lost or evicted) in its history and in the accounting, keep
 * the run for fair-share usage, then put the payload back in the queue when
 * it has attempts left and may be requeued, else fail it (or cancel it, when
 * an administrator asked for the kill). `ran` is what the pilot said of the
 * run (exit, signal, output), when it did. Returns where the payload went.
 */
function interruptAttempt(
  sql: Sql,
  row: PayloadRow,
  kind: Interruption,
  why: string,
  at: number,
  policy: StorePolicy,
  ran: Partial<Pick<PayloadRow, 'exit_code' | 'signal' | 'output_tail'>> = {},
): PayloadRow['state'] {
  movePayload(sql, row, kind, { ...ran, message: why, ended_at: at }, why, at);
  chargeAccounting(sql, row, at, kind);
  // the attempt's run still counts towards its group's recent usage (the cores were used)
  if (row.started_at !== null && row.pilot_id !== null && row.allocated_cores !== null) {
    sql.run(
      'INSERT INTO lost_attempts (payload_id, pilot_id, cores, started_at, ended_at, cause) VALUES (?, ?, ?, ?, ?, ?)',
      row.id,
      row.pilot_id,
      row.allocated_cores,
      row.started_at,
      at,
      kind,
    );
  }
  const interrupted: PayloadRow = { ...row, state: kind, message: why, ended_at: at };
  const next = afterInterruption({
    attempts: row.attempts,
    maxAttempts: policy.maxAttempts,
    requeue: row.requeue !== 0,
    cancelRequested: row.cancel_reason !== null,
  });
  switch (next) {
    case 'queued':
      movePayload(
        sql,
        interrupted,
        'queued',
        { pilot_id: null, allocated_cores: null, assigned_at: null, started_at: null, ended_at: null, exit_code: null, signal: null },
        `requeued after attempt ${row.attempts} of ${policy.maxAttempts} was ${kind}`,
        at,
      );
      return 'queued';
    case 'cancelled':
      movePayload(sql, interrupted, 'cancelled', { message: `cancelled: ${row.cancel_reason} (${why})` }, 'killed', at);
      countEnd(sql, row, at, 'cancelled');
      return 'cancelled';
    case 'failed: no requeue':
      movePayload(sql, interrupted, 'failed', { message: `${kind}, not requeued (submitted with requeue: false): ${why}` }, 'requeue: false', at);
      countEnd(sql, row, at, 'failed');
      return 'failed';
    case 'failed: last attempt':
      movePayload(sql, interrupted, 'failed', { message: `${kind} on its last attempt (${row.attempts} of ${policy.maxAttempts}): ${why}` }, 'no attempts left', at);
      countEnd(sql, row, at, 'failed');
      return 'failed';
  }
}

/**
 * A payload its pilot will not run after all (released, or its pilot halted
 * before it started it): back to the queue with the claim's attempt given
 * back when `giveBackAttempt`, or cancelled when an administrator asked for
 * the kill meanwhile.
 */
export function unassign(sql: Sql, row: PayloadRow, why: string, at: number, giveBackAttempt: boolean): PayloadRow['state'] {
  if (row.cancel_reason !== null) {
    movePayload(sql, row, 'cancelled', { message: `cancelled: ${row.cancel_reason}`, ended_at: at }, `killed (${why})`, at);
    return 'cancelled';
  }
  const attempts = giveBackAttempt ? { attempts: Math.max(0, row.attempts - 1) } : {};
  movePayload(sql, row, 'queued', { pilot_id: null, allocated_cores: null, assigned_at: null, ...attempts }, why, at);
  return 'queued';
}

/**
 * An administrator's kill of `row`: a queued payload is cancelled at once
 * (returns null); an assigned or running one is marked so that however its
 * attempt ends (but exit 0) it ends cancelled, and its pilot gets a
 * kill-payload instruction (returned). Anything else is not the caller's to
 * pass here.
 */
export function cancelPayload(sql: Sql, row: PayloadRow, reason: string, at: number): Instruction | null {
  if (row.state === 'queued') {
    movePayload(sql, row, 'cancelled', { message: `cancelled: ${reason}`, ended_at: at, cancel_reason: reason }, `cancelled: ${reason}`, at);
    return null;
  }
  if (row.pilot_id === null) throw new RangeError(`payload ${row.id} is ${row.state} without a pilot`);
  // the first reason given stays: a second kill changes nothing but is answered with the same instruction
  sql.run('UPDATE payloads SET cancel_reason = COALESCE(cancel_reason, ?) WHERE id = ?', reason, row.id);
  return killInstruction(sql, row.pilot_id, row.id, reason, at);
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
