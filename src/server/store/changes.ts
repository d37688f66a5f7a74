/**
 * The changes a store rule asks for, as values. The rules (apply-report.ts,
 * endings.ts, pilot-rules.ts) are pure functions of rows and policy that
 * return a list of these; a store applies the list in order, in the one
 * transaction in which it read the rows (sqlite-apply.ts for SQLite). A second
 * store implements only that reading and that applying: what a report, a
 * lost attempt or a kill does is decided once, here.
 *
 * A payload's move names the state it is moved from: a store applies it only
 * to a row still in that state, and fails the transaction otherwise, so rows
 * changed between the read and the write are never overwritten.
 */
import type { HeartbeatRequest, InstructionRequest, PayloadState, PilotState, Report } from '../../protocol/index.js';
import { VmpilotError } from '../../shared/errors.js';
import type { AttemptOutcome } from './outcomes.js';
import type { PayloadRow } from './rows.js';
import { payloadTransitionAllowed } from './transitions.js';

/** The columns to set alongside a payload's state change. */
export type PayloadChanges = Partial<
  Pick<
    PayloadRow,
    | 'pilot_id'
    | 'allocated_cores'
    | 'exit_code'
    | 'signal'
    | 'output_tail'
    | 'cpu_sec'
    | 'peak_rss_mb'
    | 'message'
    | 'assigned_at'
    | 'started_at'
    | 'ended_at'
    | 'attempts'
    | 'cancel_reason'
  >
>;

/** One change to the records. */
export type Change =
  /** Payload `payloadId`, still `from`, goes to `to` with `set`; a history row with `historyPilotId`. */
  | { kind: 'move-payload'; payloadId: number; from: PayloadState; to: PayloadState; set: PayloadChanges; historyPilotId: number | null; reason: string; at: number }
  /** An administrator's kill reason, kept on a payload still held (the first one given stays). */
  | { kind: 'cancel-reason'; payloadId: number; reason: string }
  /** The pilot's state, and a history row. */
  | { kind: 'pilot-state'; pilotId: number; to: PilotState; reason: string; at: number }
  /** A heartbeat's contact, usage and what it says of the pilot. */
  | { kind: 'pilot-heartbeat'; pilotId: number; beat: HeartbeatRequest; at: number }
  /** The pilot's shutdown code and message; its cores are free. */
  | { kind: 'pilot-shutdown'; pilotId: number; code: number; message: string }
  /** The report is applied under its seq (the pilot's applied seq, its contact, the report row). */
  | { kind: 'report-applied'; pilotId: number; report: Report; receivedAt: number; outcome: string }
  /** A new instruction to the pilot. */
  | { kind: 'add-instruction'; pilotId: number; body: InstructionRequest; at: number }
  /** The pilot acknowledged instruction `instructionId`. */
  | { kind: 'instruction-done'; pilotId: number; instructionId: number; doneAt: number; ok: boolean; message: string | null }
  /** One attempt's use added to its group's and pilot's accounting on `day`, in the column of `outcome`. */
  | { kind: 'charge'; day: string; group: string; pilotId: number; coreSec: number; wallSec: number; outcome: AttemptOutcome }
  /** One more payload failed or cancelled after an interrupted attempt, in that attempt's accounting row. */
  | { kind: 'count-end'; day: string; group: string; pilotId: number; end: 'failed' | 'cancelled' }
  /** A lost or evicted attempt's run, kept for fair-share usage. */
  | { kind: 'lost-attempt'; payloadId: number; pilotId: number; cores: number; startedAt: number; endedAt: number; cause: 'lost' | 'evicted' };

/**
 * Move payload `row` to `to`, setting `set`: the change, and the row as it
 * is after it (for a rule that moves it again). Throws VMP_CONFLICT when the
 * state machine (transitions.ts) forbids the move; nothing is changed then.
 */
export function movePayload(
  row: PayloadRow,
  to: PayloadState,
  set: PayloadChanges,
  reason: string,
  at: number,
): { change: Change; after: PayloadRow } {
  if (!payloadTransitionAllowed(row.state, to)) {
    throw new VmpilotError('VMP_CONFLICT', `payload ${row.id} cannot go from ${row.state} to ${to}`);
  }
  const historyPilotId = set.pilot_id !== undefined ? set.pilot_id : row.pilot_id;
  return {
    change: { kind: 'move-payload', payloadId: row.id, from: row.state, to, set, historyPilotId, reason, at },
    after: { ...row, ...set, state: to },
  };
}

/** The UTC day (YYYY-MM-DD) of a time in ms. */
export function dayOf(at: number): string {
  return new Date(at).toISOString().slice(0, 10);
}
