/**
 * What the store keeps about one pilot beyond its row, for `vmpilot-server
 * pilot N`: every instruction sent to it with its acknowledgement, and its
 * last heartbeat as it came; and the one rule that keeps `drain` idempotent.
 * SQL over the store's connection (sqlite.ts calls these inside its methods).
 */
import type { HeartbeatRequest, Instruction, InstructionRequest, InstructionView, PilotState } from '../../protocol/index.js';
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

/** Pilot states in which a drain the pilot acknowledged still holds (a drain is kept until the halt). */
const DRAINED: readonly PilotState[] = ['draining', 'halting', 'halted'];

/**
 * A drain instruction for `pilotId`, unless it already has one that holds:
 * one not yet acknowledged, or one it acknowledged and is still draining
 * after. Then that one is returned and nothing is added (`existing`), as a
 * repeated kill of a payload is answered with its first instruction. A pilot
 * that serves again after an acknowledged drain (its agent restarted without
 * its state) gets a new one. Run inside the caller's transaction.
 */
export function drainOnceIn(
  sql: Sql,
  pilotId: number,
  request: Extract<InstructionRequest, { type: 'drain' }>,
  state: PilotState,
  at: number,
): { instruction: Instruction; existing: boolean } {
  const drains = sql
    .all<InstructionRecordRow>('SELECT id, body, created_at, done_at, ok, message FROM instructions WHERE pilot_id = ? ORDER BY id DESC', pilotId)
    .filter((r) => (JSON.parse(r.body) as { type?: string }).type === 'drain');
  const holding = drains.find((r) => r.done_at === null || (r.ok === 1 && DRAINED.includes(state)));
  if (holding) return { instruction: view(holding).instruction, existing: true };
  const { id } = sql.run('INSERT INTO instructions (pilot_id, body, created_at) VALUES (?, ?, ?)', pilotId, JSON.stringify(request), at);
  return { instruction: { id, ...request }, existing: false };
}
