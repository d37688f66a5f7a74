/**
 * The SQLite store's instructions and reports: reading what a report needs
 * (apply-report.ts `reportNeeds`), deciding (`effectOfReport`) and applying
 * (sqlite-apply.ts) in one transaction per report; instructions added, the
 * drain kept idempotent (pilot-rules.ts `drainOnce`), and read.
 */
import type { Instruction, InstructionRequest, PilotState, Report } from '../../protocol/index.js';
import { VmpilotError } from '../../shared/errors.js';
import { effectOfReport, noSuchPilot, reportNeeds, type InstructionAckRow, type ReportReads } from './apply-report.js';
import { payloadRow } from './payload-ops.js';
import { drainsOf, instructionsOf, pendingOf } from './pilot-records.js';
import { drainOnce } from './pilot-rules.js';
import type { PilotRow } from './rows.js';
import { applyChanges } from './sqlite-apply.js';
import { heldBy } from './sqlite-pilots.js';
import type { Sql } from './sql.js';
import type { InstructionStore, ReportOutcome, StorePolicy } from './store.js';

/** Apply `report` of `pilotId` (call inside a transaction). */
function applyReportIn(sql: Sql, pilotId: number, report: Report, at: number, policy: StorePolicy): ReportOutcome {
  const pilot = sql.get<PilotRow>('SELECT * FROM pilots WHERE id = ?', pilotId);
  if (!pilot) return noSuchPilot(pilotId);
  const needs = reportNeeds(pilot, report);
  const reads: ReportReads = {};
  if (needs.storedReport) reads.storedBody = sql.get<{ body: string }>('SELECT body FROM reports WHERE pilot_id = ? AND seq = ?', pilotId, report.seq)?.body ?? null;
  if (needs.payloadId !== null) reads.payload = payloadRow(sql, needs.payloadId) ?? null;
  if (needs.held) reads.held = heldBy(sql, pilotId);
  if (needs.instructionId !== null) {
    reads.instruction =
      sql.get<InstructionAckRow>('SELECT id, created_at, done_at FROM instructions WHERE id = ? AND pilot_id = ?', needs.instructionId, pilotId) ?? null;
  }
  const { outcome, changes } = effectOfReport(pilot, report, reads, at, policy);
  const added = applyChanges(sql, changes);
  // a refusal's only instruction is the kill it sends
  const instruction = added[0];
  return outcome.kind === 'refused' && instruction ? { ...outcome, instruction } : outcome;
}

/** The instructions and reports part of the SQLite store on `sql`. */
export function sqliteInstructions(sql: Sql, policy: StorePolicy): InstructionStore {
  return {
    async addInstruction(pilotId: number, request: InstructionRequest, at: number): Promise<Instruction> {
      return applyChanges(sql, [{ kind: 'add-instruction', pilotId, body: request, at }])[0]!;
    },

    async drainOnce(pilotId: number, request: Extract<InstructionRequest, { type: 'drain' }>, at: number) {
      return sql.tx(() => {
        const pilot = sql.get<{ state: PilotState }>('SELECT state FROM pilots WHERE id = ?', pilotId);
        if (!pilot) throw new VmpilotError('VMP_NOT_FOUND', `no pilot ${pilotId}`);
        const drain = drainOnce(drainsOf(sql, pilotId), pilot.state, pilotId, request, at);
        if ('existing' in drain) return { instruction: drain.existing, existing: true };
        return { instruction: applyChanges(sql, [drain.add])[0]!, existing: false };
      });
    },

    async instructionsOf(pilotId: number) {
      return instructionsOf(sql, pilotId);
    },

    async pendingInstructions(pilotId: number) {
      return pendingOf(sql, pilotId);
    },

    async applyReport(pilotId: number, report: Report, at: number): Promise<ReportOutcome> {
      return sql.tx(() => applyReportIn(sql, pilotId, report, at, policy));
    },

    async appliedSeq(pilotId: number) {
      return sql.get<{ s: number }>('SELECT applied_seq AS s FROM pilots WHERE id = ?', pilotId)?.s ?? 0;
    },
  };
}
