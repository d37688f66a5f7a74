/**
 * What the dashboard's overview and pilot detail read from the SQLite store:
 * live cores, the age of each group's queue, a pilot's instructions with
 * their acknowledgements and its last heartbeat. Each is a few indexed rows
 * or one pass over the live pilots and queued payloads, never every record.
 */
import type { HeartbeatRequest } from '../../protocol/index.js';
import { instruction, type InstructionRow } from './rows.js';
import type { Sql } from './sql.js';
import type { InstructionRecord, OverviewFigures } from './store.js';

/** Cores of the pilots that can run payloads, cores allocated now, and each group's queue with its oldest submission. */
export function overviewFiguresIn(sql: Sql): OverviewFigures {
  const cores = sql.get<{ n: number | null }>(
    "SELECT SUM(cores) AS n FROM pilots INDEXED BY pilots_state_id WHERE state IN ('booting', 'running', 'draining')",
  );
  const used = sql.get<{ n: number | null }>(
    "SELECT SUM(allocated_cores) AS n FROM payloads INDEXED BY payloads_state_id WHERE state IN ('assigned', 'running')",
  );
  // each group's count from the counts the triggers keep; its oldest queued payload is its lowest
  // queued id (ids follow submission), one index step each rather than a pass over every queued payload
  const queues = sql
    .all<{ group: string; queued: number }>(`SELECT grp AS "group", n AS queued FROM payload_counts WHERE state = 'queued' AND n > 0 ORDER BY grp`)
    .map((q) => ({
      ...q,
      oldestSubmittedAt:
        sql.get<{ at: number }>(
          `SELECT submitted_at AS at FROM payloads INDEXED BY payloads_state_id WHERE state = 'queued' AND grp = ? ORDER BY id LIMIT 1`,
          q.group,
        )?.at ?? 0,
    }));
  return { coresTotal: cores?.n ?? 0, coresUsed: used?.n ?? 0, queues };
}

/** A pilot's newest `limit` instructions and its last heartbeat's body. */
export function pilotDetailIn(
  sql: Sql,
  pilotId: number,
  limit: number,
): { instructions: InstructionRecord[]; lastHeartbeat: { at: number; beat: HeartbeatRequest } | null } {
  const rows = sql.all<InstructionRow & { created_at: number; done_at: number | null; ok: number | null; message: string | null }>(
    'SELECT id, pilot_id, body, created_at, done_at, ok, message FROM instructions WHERE pilot_id = ? ORDER BY id DESC LIMIT ?',
    pilotId,
    limit,
  );
  const instructions = rows.map((r) => ({
    instruction: instruction(r),
    createdAt: r.created_at,
    doneAt: r.done_at,
    ok: r.ok === null ? null : r.ok === 1,
    message: r.message,
  }));
  const beat = sql.get<{ at: number | null; body: string | null }>(
    'SELECT last_heartbeat_at AS at, last_heartbeat AS body FROM pilots WHERE id = ?',
    pilotId,
  );
  const lastHeartbeat = beat?.at != null && beat.body ? { at: beat.at, beat: JSON.parse(beat.body) as HeartbeatRequest } : null;
  return { instructions, lastHeartbeat };
}
