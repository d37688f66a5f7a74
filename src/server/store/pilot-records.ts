/**
 * What the store keeps about one pilot beyond its row, for `vmpilot-server
 * pilot N`: every instruction sent to it with its acknowledgement, and its
 * last heartbeat as it came; the instructions it has not acknowledged, and
 * its drains as the rule that keeps `drain` idempotent (pilot-rules.ts)
 * reads them. SQL over the store's connection (the sqlite-*.ts parts call
 * these inside their methods).
 */
import type { HeartbeatRequest, Instruction, InstructionView } from '../../protocol/index.js';
import type { DrainRecord } from './pilot-rules.js';
import type { Sql } from './sql.js';

interface InstructionRecordRow {
  id: number;
  body: string;
  created_at: number;
  done_at: number | null;
  ok: number | null;
  message: string | null;
}

function view(row: InstructionRecordRow): InstructionView {
  return {
    instruction: { id: row.id, ...(JSON.parse(row.body) as object) } as Instruction,
    createdAt: row.created_at,
    doneAt: row.done_at,
    ok: row.ok === null ? null : row.ok === 1,
    message: row.message,
  };
}

/** Every instruction sent to `pilotId`, oldest first, with when and how the pilot acknowledged it. */
export function instructionsOf(sql: Sql, pilotId: number): InstructionView[] {
  return sql.all<InstructionRecordRow>('SELECT id, body, created_at, done_at, ok, message FROM instructions WHERE pilot_id = ? ORDER BY id', pilotId).map(view);
}

/** The last heartbeat `pilotId` sent, as it sent it, or null (none yet, or no such pilot). */
export function lastHeartbeatOf(sql: Sql, pilotId: number): HeartbeatRequest | null {
  const row = sql.get<{ b: string | null }>('SELECT last_heartbeat AS b FROM pilots WHERE id = ?', pilotId);
  return row?.b ? (JSON.parse(row.b) as HeartbeatRequest) : null;
}

/** The instructions sent to `pilotId` that it has not acknowledged, oldest first. */
export function pendingOf(sql: Sql, pilotId: number): Instruction[] {
  return sql
    .all<{ id: number; body: string }>('SELECT id, body FROM instructions WHERE pilot_id = ? AND done_at IS NULL ORDER BY id', pilotId)
    .map((r) => ({ id: r.id, ...(JSON.parse(r.body) as object) }) as Instruction);
}

/** The drain instructions sent to `pilotId`, newest first, with their acknowledgements (pilot-rules.ts `drainOnce` reads them). */
export function drainsOf(sql: Sql, pilotId: number): DrainRecord[] {
  return sql
    .all<InstructionRecordRow>('SELECT id, body, created_at, done_at, ok, message FROM instructions WHERE pilot_id = ? ORDER BY id DESC', pilotId)
    .filter((r) => (JSON.parse(r.body) as { type?: string }).type === 'drain')
    .map((r) => ({ instruction: view(r).instruction, doneAt: r.done_at, ok: r.ok === null ? null : r.ok === 1 }));
}
