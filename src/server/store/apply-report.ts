/**
 * What one pilot report does to the records. Pure: `effectOfReport` is a
 * function of the pilot's row, the rows the report names (`reportNeeds` says
 * which; the store reads them in its transaction), the time and the policy,
 * and returns the outcome with the changes (changes.ts) the store applies in
 * that same transaction: the report's effect, the pilot's applied seq and the
 * report row together or not at all. A report with a seq at or below the
 * pilot's applied seq is a duplicate and changes nothing (a different report
 * under an applied seq is refused as a conflict); one beyond the applied seq
 * + 1 is out of order and changes nothing either (report-rules.ts). Times the
 * pilot reports are kept within what the server saw (`clampTime`).
 */
import type {
  InstructionRequest,
  PayloadEndedReport,
  PayloadReleasedReport,
  PayloadStartedReport,
  PilotState,
  Report,
  ShutdownReport,
} from '../../protocol/index.js';
import { isVmpilotError } from '../../shared/errors.js';
import { movePayload, type Change } from './changes.js';
import { endReported, losePayload, unassign } from './endings.js';
import { clampTime, sameReport } from './report-rules.js';
import type { PayloadRow, PilotRow } from './rows.js';
import { pilotStateFor, type ReportOutcome, type StorePolicy } from './store.js';
import { pilotTransitionAllowed } from './transitions.js';

/** Refusal codes a pilot may see in `ReportsReply.refused`. */
export const REFUSAL = {
  /** The payload is not assigned to (or running on) this pilot. */
  notYours: 'VMP_PAYLOAD_NOT_YOURS',
  /** The payload is already in a state the report cannot move it from. */
  badState: 'VMP_PAYLOAD_STATE',
  /** No such instruction for this pilot. */
  noInstruction: 'VMP_NO_INSTRUCTION',
  /** The pilot has halted; it cannot change state again. */
  halted: 'VMP_PILOT_HALTED',
  /** The pilot cannot go from its state to the one reported. */
  pilotState: 'VMP_PILOT_STATE',
  /** Another report was applied under this seq: a second sender holds the pilot's credential. */
  seqConflict: 'VMP_REPORT_CONFLICT',
} as const;

/** What a rule decided: applied, or refused (perhaps with a kill to send), and the changes it makes. */
export interface Effect {
  result: { kind: 'applied' } | { kind: 'refused'; code: string; message: string; kill?: InstructionRequest };
  changes: Change[];
}

/** An instruction of the pilot as an acknowledgement reads it. */
export interface InstructionAckRow {
  id: number;
  created_at: number;
  done_at: number | null;
}

/** What a report needs read besides its pilot's row. */
export interface ReportNeeds {
  /** The report stored under its seq (it is a resend). */
  storedReport: boolean;
  /** The payload it names. */
  payloadId: number | null;
  /** Every payload the pilot holds (assigned or running), by id. */
  held: boolean;
  /** The pilot's instruction it acknowledges. */
  instructionId: number | null;
}

/** The rows `reportNeeds` asked for, as read (null or absent: there is none). */
export interface ReportReads {
  storedBody?: string | null;
  payload?: PayloadRow | null;
  held?: PayloadRow[];
  instruction?: InstructionAckRow | null;
}

/** Which rows the store must read for `report` of `pilot`. Pure. */
export function reportNeeds(pilot: PilotRow, report: Report): ReportNeeds {
  const none: ReportNeeds = { storedReport: false, payloadId: null, held: false, instructionId: null };
  if (report.seq <= pilot.applied_seq) return { ...none, storedReport: true };
  if (report.seq > pilot.applied_seq + 1) return none;
  switch (report.type) {
    case 'payload-started':
    case 'payload-ended':
    case 'payload-released':
      return { ...none, payloadId: report.payloadId };
    case 'instruction-done':
      return { ...none, instructionId: report.instructionId };
    case 'shutdown':
      return { ...none, held: true };
    case 'state':
      return none;
  }
}

/** The outcome of a report for a pilot the store does not have: refused, nothing changed. */
export function noSuchPilot(pilotId: number): ReportOutcome {
  return { kind: 'refused', code: 'VMP_NOT_FOUND', message: `no pilot ${pilotId}` };
}

/**
 * What `report` of `pilot`, received at `at`, does: its outcome and the
 * changes to apply. A refusal that tells the pilot to kill a payload carries
 * an `add-instruction` change (its last); the store puts the instruction it
 * added into the outcome. Pure.
 */
export function effectOfReport(
  pilot: PilotRow,
  report: Report,
  reads: ReportReads,
  at: number,
  policy: StorePolicy,
): { outcome: ReportOutcome; changes: Change[] } {
  if (report.seq <= pilot.applied_seq) return { outcome: resent(reads.storedBody ?? null, report), changes: [] };
  if (report.seq > pilot.applied_seq + 1) {
    return {
      outcome: { kind: 'out-of-order', appliedSeq: pilot.applied_seq, message: `report seq ${report.seq} does not follow the last applied seq ${pilot.applied_seq}` },
      changes: [],
    };
  }
  const { result, changes } = effectOf(pilot, report, reads, at, policy);
  const outcome = result.kind === 'refused' ? `refused ${result.code}` : 'applied';
  const all: Change[] = [...changes, { kind: 'report-applied', pilotId: pilot.id, report, receivedAt: at, outcome }];
  if (result.kind !== 'refused') return { outcome: result, changes: all };
  if (result.kill) all.push({ kind: 'add-instruction', pilotId: pilot.id, body: result.kill, at });
  return { outcome: { kind: 'refused', code: result.code, message: result.message }, changes: all };
}

/**
 * A report under a seq already applied (`stored`: the one applied then, as
 * JSON): the same report sent again changes nothing; a different one is
 * refused, and changes nothing either.
 */
function resent(stored: string | null, report: Report): ReportOutcome {
  if (!stored || sameReport(stored, report)) return { kind: 'duplicate' };
  return {
    kind: 'refused',
    code: REFUSAL.seqConflict,
    message: `seq ${report.seq} was already applied with another report: a second sender holds this pilot's credential`,
  };
}

const applied = (changes: Change[] = []): Effect => ({ result: { kind: 'applied' }, changes });
const refused = (code: string, message: string, kill?: InstructionRequest): Effect => ({
  result: kill ? { kind: 'refused', code, message, kill } : { kind: 'refused', code, message },
  changes: [],
});

function effectOf(pilot: PilotRow, report: Report, reads: ReportReads, at: number, policy: StorePolicy): Effect {
  switch (report.type) {
    case 'payload-started':
      return started(pilot, report, reads.payload ?? null, at);
    case 'payload-ended':
      return ended(pilot, report, reads.payload ?? null, at, policy);
    case 'payload-released':
      return released(pilot, report, reads.payload ?? null, at);
    case 'instruction-done': {
      const known = reads.instruction ?? null;
      // reporting an instruction done twice changes nothing and is no error
      if (known && known.done_at !== null) return applied();
      if (!known) return refused(REFUSAL.noInstruction, `no instruction ${report.instructionId} for this pilot`);
      // done no earlier than sent, and no later than now
      const doneAt = Math.min(Math.max(report.at, known.created_at), at);
      return applied([{ kind: 'instruction-done', pilotId: pilot.id, instructionId: known.id, doneAt, ok: report.ok, message: report.message ?? null }]);
    }
    case 'state':
      return pilotStateChange(pilot, pilotStateFor(report.state), report.reason, at);
    case 'shutdown':
      return shutdown(pilot, report, reads.held ?? [], at, policy);
  }
}

function started(pilot: PilotRow, report: PayloadStartedReport, row: PayloadRow | null, at: number): Effect {
  const kill: InstructionRequest = {
    type: 'kill-payload',
    payloadId: report.payloadId,
    reason: 'the server did not assign this payload to this pilot',
  };
  if (!row || row.pilot_id !== pilot.id) return refused(REFUSAL.notYours, `payload ${report.payloadId} is not assigned to this pilot`, kill);
  if (row.state === 'running') return applied();
  if (row.state !== 'assigned') return refused(REFUSAL.badState, `payload ${row.id} is ${row.state}, not assigned`, kill);
  // started no earlier than it was handed out, and no later than now
  const startedAt = clampTime(report.at, row.assigned_at ?? at, at);
  return applied([movePayload(row, 'running', { started_at: startedAt }, 'started', startedAt).change]);
}

function ended(pilot: PilotRow, report: PayloadEndedReport, row: PayloadRow | null, at: number, policy: StorePolicy): Effect {
  if (!row || row.pilot_id !== pilot.id) return refused(REFUSAL.notYours, `payload ${report.payloadId} is not assigned to this pilot`);
  if (row.state !== 'running' && row.state !== 'assigned') return refused(REFUSAL.badState, `payload ${row.id} is already ${row.state}`);
  // ended no earlier than it started (or was handed out), and no later than now: every column it is
  // accounted in (done, failed, cancelled or evicted core-seconds, and a lost attempt's run) gets at most cores × that
  const endedAt = clampTime(report.at, row.started_at ?? row.assigned_at ?? at, at);
  // done, failed, cancelled, or evicted (then queued again while attempts are left): endings.ts
  return applied(endReported(row, report, endedAt, policy).changes);
}

/** The pilot did not start a payload it was handed: back to the queue, no attempt counted. */
function released(pilot: PilotRow, report: PayloadReleasedReport, row: PayloadRow | null, at: number): Effect {
  if (!row || row.pilot_id !== pilot.id) return refused(REFUSAL.notYours, `payload ${report.payloadId} is not assigned to this pilot`);
  if (row.state !== 'assigned' || row.started_at !== null) {
    return refused(REFUSAL.badState, `payload ${row.id} is ${row.state}, not assigned and never started`);
  }
  // the claim counted an attempt; a release is none
  return applied(unassign(row, `released by pilot ${pilot.id}: ${report.reason}`, clampTime(report.at, row.assigned_at ?? at, at), true).changes);
}

/**
 * A pilot state change with its history row, or nothing when the pilot is
 * in that state already; refused when the pilot has halted or `transitions.ts`
 * forbids the change. Pure.
 */
export function pilotStateChange(pilot: Pick<PilotRow, 'id' | 'state'>, to: PilotState, reason: string, at: number): Effect {
  if (pilot.state === 'halted' && to !== 'halted') return refused(REFUSAL.halted, `pilot ${pilot.id} has halted; it cannot become ${to}`);
  if (pilot.state === to) return applied();
  if (!pilotTransitionAllowed(pilot.state, to)) return refused(REFUSAL.pilotState, `pilot ${pilot.id} cannot go from ${pilot.state} to ${to}`);
  return applied([{ kind: 'pilot-state', pilotId: pilot.id, to, reason, at }]);
}

/**
 * The pilot halted (`held`: the payloads it held): its code and message, its
 * state, and each payload back in the queue (not started) or lost with it.
 */
function shutdown(pilot: PilotRow, report: ShutdownReport, held: readonly PayloadRow[], at: number, policy: StorePolicy): Effect {
  const changes: Change[] = [{ kind: 'pilot-shutdown', pilotId: pilot.id, code: report.code, message: report.message }];
  changes.push(...pilotStateChange(pilot, 'halted', `shutdown ${report.code}: ${report.message}`, at).changes);
  for (const row of held) {
    try {
      const ending =
        row.state === 'assigned'
          ? unassign(row, 'pilot halted before it started', at, false)
          : losePayload(row, `pilot ${pilot.id} halted while it ran (shutdown ${report.code})`, at, policy);
      changes.push(...ending.changes);
    } catch (err) {
      if (!isVmpilotError(err, 'VMP_CONFLICT')) throw err;
    }
  }
  return applied(changes);
}
