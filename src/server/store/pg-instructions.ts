/**
 * The PostgreSQL store's instructions and reports, as
 * sqlite-instructions.ts: reading what a report needs (apply-report.ts
 * `reportNeeds`), deciding (`effectOfReport`) and applying (pg-apply.ts) in
 * one transaction per report, with the pilot's row locked first so that two
 * replicas given the same report (a retry through another) apply it once
 * and in seq order; instructions added, the drain kept idempotent
 * (pilot-rules.ts `drainOnce`), and read.
 */
import type { Instruction, InstructionRequest, Report } from '../../protocol/index.js';
import { VmpilotError } from '../../shared/errors.js';
import { effectOfReport, noSuchPilot, reportNeeds, type InstructionAckRow, type ReportReads } from './apply-report.js';
import { applyChanges } from './pg-apply.js';
import { pgHeldBy, pgPayloadRow } from './pg-pilots.js';
import { pgDrainsOf, pgInstructionsOf, pgPendingOf } from './pg-reads.js';
import type { Pg, PgPool } from './pg-sql.js';
import { drainOnce } from './pilot-rules.js';
import type { PilotRow } from './rows.js';
import type { InstructionStore, ReportOutcome, StorePolicy } from './store.js';

/** Apply `report` of `pilotId` (inside a transaction). */
async function applyReportIn(q: Pg, pilotId: number, report: Report, at: number, policy: StorePolicy): Promise<ReportOutcome> {
  const pilot = await q.get<PilotRow>('SELECT * FROM pilots WHERE id = ? FOR NO KEY UPDATE', pilotId);
  if (!pilot) return noSuchPilot(pilotId);
  const needs = reportNeeds(pilot, report);
  const reads: ReportReads = {};
  if (needs.storedReport) {
    reads.storedBody = (await q.get<{ body: string }>('SELECT body FROM reports WHERE pilot_id = ? AND seq = ?', pilotId, report.seq))?.body ?? null;
  }
  if (needs.payloadId !== null) reads.payload = (await pgPayloadRow(q, needs.payloadId, true)) ?? null;
  if (needs.held) reads.held = await pgHeldBy(q, pilotId);
  if (needs.instructionId !== null) {
    reads.instruction =
      (await q.get<InstructionAckRow>('SELECT id, created_at, done_at FROM instructions WHERE id = ? AND pilot_id = ?', needs.instructionId, pilotId)) ?? null;
  }
  const { outcome, changes } = effectOfReport(pilot, report, reads, at, policy);
  const added = await applyChanges(q, changes);
  // a refusal's only instruction is the kill it sends
  const instruction = added[0];
  return outcome.kind === 'refused' && instruction ? { ...outcome, instruction } : outcome;
}

/** The instructions and reports part of the PostgreSQL store on `pool`. */
export function pgInstructions(pool: PgPool, policy: StorePolicy): InstructionStore {
  return {
    async addInstruction(pilotId: number, request: InstructionRequest, at: number): Promise<Instruction> {
      return (await applyChanges(pool, [{ kind: 'add-instruction', pilotId, body: request, at }]))[0]!;
    },

    async drainOnce(pilotId: number, request: Extract<InstructionRequest, { type: 'drain' }>, at: number) {
      return pool.tx(async (q) => {
        // locked: two replicas draining one pilot at once add one drain
        const pilot = await q.get<{ state: PilotRow['state'] }>('SELECT state FROM pilots WHERE id = ? FOR NO KEY UPDATE', pilotId);
        if (!pilot) throw new VmpilotError('VMP_NOT_FOUND', `no pilot ${pilotId}`);
        const drain = drainOnce(await pgDrainsOf(q, pilotId), pilot.state, pilotId, request, at);
        if ('existing' in drain) return { instruction: drain.existing, existing: true };
        return { instruction: (await applyChanges(q, [drain.add]))[0]!, existing: false };
      });
    },

    async instructionsOf(pilotId: number) {
      return pgInstructionsOf(pool, pilotId);
    },

    async pendingInstructions(pilotId: number) {
      return pgPendingOf(pool, pilotId);
    },

    async applyReport(pilotId: number, report: Report, at: number): Promise<ReportOutcome> {
      return pool.tx((q) => applyReportIn(q, pilotId, report, at, policy));
    },

    async appliedSeq(pilotId: number) {
      return (await pool.get<{ s: number }>('SELECT applied_seq AS s FROM pilots WHERE id = ?', pilotId))?.s ?? 0;
    },
  };
}
