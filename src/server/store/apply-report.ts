/**
 * Applying one pilot report to the records. The caller runs this inside one
 * transaction: the report's effect, the pilot's applied seq and the report
 * row are written together or not at all. A report with a seq at or below the
 * pilot's applied seq is a duplicate and changes nothing (a different report
 * under an applied seq is refused as a conflict); one beyond the applied seq
 * + 1 is out of order and changes nothing either (report-rules.ts). Times the
 * pilot reports are kept within what the server saw (`clampTime`).
 */
import type {
  Instruction,
  InstructionRequest,
  PayloadEndedReport,
  PayloadReleasedReport,
  PayloadStartedReport,
  Report,
  ShutdownReport,
} from '../../protocol/index.js';
import { isVmpilotError } from '../../shared/errors.js';
import { movePayload, payloadRow } from './payload-ops.js';
import type { PayloadRow, PilotRow } from './rows.js';
import type { Sql } from './sql.js';
import { endReported, losePayload, unassign } from './endings.js';
import { clampTime, sameReport } from './report-rules.js';
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

/** What a report does: an outcome, and for a refusal perhaps an instruction to send. */
type Effect = { kind: 'applied' } | { kind: 'refused'; code: string; message: string; kill?: InstructionRequest };

/** Apply `report` for `pilotId` (call inside a transaction). */
export function applyReportIn(sql: Sql, pilotId: number, report: Report, at: number, policy: StorePolicy): ReportOutcome {
  const pilot = sql.get<PilotRow>('SELECT * FROM pilots WHERE id = ?', pilotId);
  if (!pilot) return { kind: 'refused', code: 'VMP_NOT_FOUND', message: `no pilot ${pilotId}` };
  if (report.seq <= pilot.applied_seq) return resent(sql, pilot, report);
  if (report.seq > pilot.applied_seq + 1) {
    return { kind: 'out-of-order', appliedSeq: pilot.applied_seq, message: `report seq ${report.seq} does not follow the last applied seq ${pilot.applied_seq}` };
  }
  const effect = effectOf(sql, pilot, report, at, policy);
  sql.run('UPDATE pilots SET applied_seq = ?, last_contact_at = ? WHERE id = ?', report.seq, at, pilotId);
  sql.run(
    'INSERT INTO reports (pilot_id, seq, type, at, received_at, outcome, body) VALUES (?, ?, ?, ?, ?, ?, ?)',
    pilotId,
    report.seq,
    report.type,
    report.at,
    at,
    effect.kind === 'refused' ? `refused ${effect.code}` : 'applied',
    JSON.stringify(report),
  );
  if (effect.kind !== 'refused') return effect;
  const refused: ReportOutcome = { kind: 'refused', code: effect.code, message: effect.message };
  if (!effect.kill) return refused;
  const { id } = sql.run(
    'INSERT INTO instructions (pilot_id, body, created_at) VALUES (?, ?, ?)',
    pilotId,
    JSON.stringify(effect.kill),
    at,
  );
  return { ...refused, instruction: { id, ...effect.kill } as Instruction };
}

/**
 * A report under a seq already applied: the same report sent again changes
 * nothing; a different one is refused, and changes nothing either.
 */
function resent(sql: Sql, pilot: PilotRow, report: Report): ReportOutcome {
  const stored = sql.get<{ body: string }>('SELECT body FROM reports WHERE pilot_id = ? AND seq = ?', pilot.id, report.seq);
  if (!stored || sameReport(stored.body, report)) return { kind: 'duplicate' };
  return {
    kind: 'refused',
    code: REFUSAL.seqConflict,
    message: `seq ${report.seq} was already applied with another report: a second sender holds this pilot's credential`,
  };
}

function effectOf(sql: Sql, pilot: PilotRow, report: Report, at: number, policy: StorePolicy): Effect {
  switch (report.type) {
    case 'payload-started':
      return started(sql, pilot, report, at);
    case 'payload-ended':
      return ended(sql, pilot, report, at, policy);
    case 'payload-released':
      return released(sql, pilot, report, at);
    case 'instruction-done': {
      // done no earlier than sent, and no later than now
      const r = sql.run(
        'UPDATE instructions SET done_at = MIN(MAX(?, created_at), ?), ok = ?, message = ? WHERE id = ? AND pilot_id = ? AND done_at IS NULL',
        report.at,
        at,
        report.ok ? 1 : 0,
        report.message ?? null,
        report.instructionId,
        pilot.id,
      );
      if (r.changes === 1) return { kind: 'applied' };
      const known = sql.get('SELECT id FROM instructions WHERE id = ? AND pilot_id = ?', report.instructionId, pilot.id);
      // reporting an instruction done twice changes nothing and is no error
      if (known) return { kind: 'applied' };
      return { kind: 'refused', code: REFUSAL.noInstruction, message: `no instruction ${report.instructionId} for this pilot` };
    }
    case 'state':
      return setState(sql, pilot, pilotStateFor(report.state), report.reason, at);
    case 'shutdown':
      return shutdown(sql, pilot, report, at, policy);
  }
}

function started(sql: Sql, pilot: PilotRow, report: PayloadStartedReport, at: number): Effect {
  const row = payloadRow(sql, report.payloadId);
  const kill: InstructionRequest = {
    type: 'kill-payload',
    payloadId: report.payloadId,
    reason: 'the server did not assign this payload to this pilot',
  };
  if (!row || row.pilot_id !== pilot.id) {
    return { kind: 'refused', code: REFUSAL.notYours, message: `payload ${report.payloadId} is not assigned to this pilot`, kill };
  }
  if (row.state === 'running') return { kind: 'applied' };
  if (row.state !== 'assigned') {
    return { kind: 'refused', code: REFUSAL.badState, message: `payload ${row.id} is ${row.state}, not assigned`, kill };
  }
  // started no earlier than it was handed out, and no later than now
  const startedAt = clampTime(report.at, row.assigned_at ?? at, at);
  movePayload(sql, row, 'running', { started_at: startedAt }, 'started', startedAt);
  return { kind: 'applied' };
}

function ended(sql: Sql, pilot: PilotRow, report: PayloadEndedReport, at: number, policy: StorePolicy): Effect {
  const row = payloadRow(sql, report.payloadId);
  if (!row || row.pilot_id !== pilot.id) {
    return { kind: 'refused', code: REFUSAL.notYours, message: `payload ${report.payloadId} is not assigned to this pilot` };
  }
  if (row.state !== 'running' && row.state !== 'assigned') {
    return { kind: 'refused', code: REFUSAL.badState, message: `payload ${row.id} is already ${row.state}` };
  }
  // ended no earlier than it started (or was handed out), and no later than now: every column it is
  // accounted in (done, failed, cancelled or evicted core-seconds, and a lost attempt's run) gets at most cores × that
  const endedAt = clampTime(report.at, row.started_at ?? row.assigned_at ?? at, at);
  // done, failed, cancelled, or evicted (then queued again while attempts are left): endings.ts
  endReported(sql, row, report, endedAt, policy);
  return { kind: 'applied' };
}

/** The pilot did not start a payload it was handed: back to the queue, no attempt counted. */
function released(sql: Sql, pilot: PilotRow, report: PayloadReleasedReport, at: number): Effect {
  const row = payloadRow(sql, report.payloadId);
  if (!row || row.pilot_id !== pilot.id) {
    return { kind: 'refused', code: REFUSAL.notYours, message: `payload ${report.payloadId} is not assigned to this pilot` };
  }
  if (row.state !== 'assigned' || row.started_at !== null) {
    return { kind: 'refused', code: REFUSAL.badState, message: `payload ${row.id} is ${row.state}, not assigned and never started` };
  }
  // the claim counted an attempt; a release is none
  unassign(sql, row, `released by pilot ${pilot.id}: ${report.reason}`, clampTime(report.at, row.assigned_at ?? at, at), true);
  return { kind: 'applied' };
}

/** Record a pilot state change and its history row; refuse a change `transitions.ts` forbids. */
export function setState(sql: Sql, pilot: PilotRow, to: PilotRow['state'], reason: string, at: number): Effect {
  if (pilot.state === 'halted' && to !== 'halted') {
    return { kind: 'refused', code: REFUSAL.halted, message: `pilot ${pilot.id} has halted; it cannot become ${to}` };
  }
  if (pilot.state === to) return { kind: 'applied' };
  if (!pilotTransitionAllowed(pilot.state, to)) {
    return { kind: 'refused', code: REFUSAL.pilotState, message: `pilot ${pilot.id} cannot go from ${pilot.state} to ${to}` };
  }
  sql.run('UPDATE pilots SET state = ? WHERE id = ?', to, pilot.id);
  sql.run('INSERT INTO pilot_states (pilot_id, state, reason, at) VALUES (?, ?, ?, ?)', pilot.id, to, reason, at);
  return { kind: 'applied' };
}

function shutdown(sql: Sql, pilot: PilotRow, report: ShutdownReport, at: number, policy: StorePolicy): Effect {
  sql.run(
    'UPDATE pilots SET shutdown_code = ?, shutdown_message = ?, cores_used = 0 WHERE id = ?',
    report.code,
    report.message,
    pilot.id,
  );
  setState(sql, pilot, 'halted', `shutdown ${report.code}: ${report.message}`, at);
  const held = sql.all<PayloadRow>(
    "SELECT * FROM payloads WHERE pilot_id = ? AND state IN ('assigned', 'running') ORDER BY id",
    pilot.id,
  );
  for (const row of held) {
    try {
      if (row.state === 'assigned') {
        unassign(sql, row, 'pilot halted before it started', at, false);
      } else {
        losePayload(sql, row, `pilot ${pilot.id} halted while it ran (shutdown ${report.code})`, at, policy);
      }
    } catch (err) {
      if (!isVmpilotError(err, 'VMP_CONFLICT')) throw err;
    }
  }
  return { kind: 'applied' };
}
