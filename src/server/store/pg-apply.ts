/**
 * The PostgreSQL store's applying of changes (changes.ts), as
 * sqlite-apply.ts does for SQLite: the SQL of each kind, run in order inside
 * the caller's transaction. A payload's move changes its row only while it
 * is still in the state the rule read; otherwise it throws VMP_CONFLICT and
 * the transaction rolls back whole.
 */
import type { Instruction } from '../../protocol/index.js';
import { VmpilotError } from '../../shared/errors.js';
import type { Change, PayloadChanges } from './changes.js';
import type { AttemptOutcome } from './outcomes.js';
import type { Pg } from './pg-sql.js';

/** The accounting column that takes an outcome's core-seconds: a lost attempt is the infrastructure's, like an eviction. */
const CORE_SEC_COLUMN: Record<AttemptOutcome, string> = {
  done: 'done_core_sec',
  failed: 'failed_core_sec',
  cancelled: 'cancelled_core_sec',
  evicted: 'evicted_core_sec',
  lost: 'evicted_core_sec',
};

/** Apply `changes` in order (call inside a transaction); the instructions they added, in order. */
export async function applyChanges(sql: Pg, changes: readonly Change[]): Promise<Instruction[]> {
  const added: Instruction[] = [];
  for (const c of changes) {
    const instruction = await applyOne(sql, c);
    if (instruction) added.push(instruction);
  }
  return added;
}

async function applyOne(sql: Pg, c: Change): Promise<Instruction | null> {
  switch (c.kind) {
    case 'move-payload': {
      const cols = Object.keys(c.set) as (keyof PayloadChanges)[];
      const sets = ['state = ?', ...cols.map((col) => `${col} = ?`)].join(', ');
      const r = await sql.run(`UPDATE payloads SET ${sets} WHERE id = ? AND state = ?`, c.to, ...cols.map((col) => c.set[col] ?? null), c.payloadId, c.from);
      if (r.changes !== 1) throw new VmpilotError('VMP_CONFLICT', `payload ${c.payloadId} changed under us`);
      await sql.run('INSERT INTO payload_states (payload_id, state, pilot_id, reason, at) VALUES (?, ?, ?, ?, ?)', c.payloadId, c.to, c.historyPilotId, c.reason, c.at);
      return null;
    }
    case 'cancel-reason':
      await sql.run('UPDATE payloads SET cancel_reason = COALESCE(cancel_reason, ?) WHERE id = ?', c.reason, c.payloadId);
      return null;
    case 'pilot-state':
      await sql.run('UPDATE pilots SET state = ? WHERE id = ?', c.to, c.pilotId);
      await sql.run('INSERT INTO pilot_states (pilot_id, state, reason, at) VALUES (?, ?, ?, ?)', c.pilotId, c.to, c.reason, c.at);
      return null;
    case 'pilot-heartbeat': {
      const b = c.beat;
      await sql.run(
        `UPDATE pilots SET last_contact_at = ?, last_heartbeat_at = ?, last_heartbeat = ?, version = ?,
           cores_used = ?, deadline = COALESCE(?, deadline), capabilities = COALESCE(?, capabilities) WHERE id = ?`,
        c.at, c.at, JSON.stringify(b), b.version, b.cores.used, b.deadline ?? null,
        b.capabilities ? JSON.stringify(b.capabilities) : null, c.pilotId,
      );
      return null;
    }
    case 'pilot-shutdown':
      await sql.run('UPDATE pilots SET shutdown_code = ?, shutdown_message = ?, cores_used = 0 WHERE id = ?', c.code, c.message, c.pilotId);
      return null;
    case 'report-applied':
      await sql.run('UPDATE pilots SET applied_seq = ?, last_contact_at = ? WHERE id = ?', c.report.seq, c.receivedAt, c.pilotId);
      await sql.run(
        'INSERT INTO reports (pilot_id, seq, type, at, received_at, outcome, body) VALUES (?, ?, ?, ?, ?, ?, ?)',
        c.pilotId, c.report.seq, c.report.type, c.report.at, c.receivedAt, c.outcome, JSON.stringify(c.report),
      );
      return null;
    case 'add-instruction': {
      const { rows } = await sql.run('INSERT INTO instructions (pilot_id, body, created_at) VALUES (?, ?, ?) RETURNING id', c.pilotId, JSON.stringify(c.body), c.at);
      return { id: Number(rows[0]?.id), ...c.body } as Instruction;
    }
    case 'instruction-done':
      await sql.run(
        'UPDATE instructions SET done_at = ?, ok = ?, message = ? WHERE id = ? AND pilot_id = ? AND done_at IS NULL',
        c.doneAt, c.ok ? 1 : 0, c.message, c.instructionId, c.pilotId,
      );
      return null;
    case 'charge': {
      const col = CORE_SEC_COLUMN[c.outcome];
      await sql.run(
        `INSERT INTO accounting (day, grp, pilot_id, core_sec, wall_sec, done, failed, cancelled, evicted, ${col})
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (day, grp, pilot_id) DO UPDATE SET core_sec = accounting.core_sec + excluded.core_sec,
           wall_sec = accounting.wall_sec + excluded.wall_sec, done = accounting.done + excluded.done,
           failed = accounting.failed + excluded.failed, cancelled = accounting.cancelled + excluded.cancelled,
           evicted = accounting.evicted + excluded.evicted, ${col} = accounting.${col} + excluded.${col}`,
        c.day, c.group, c.pilotId, c.coreSec, c.wallSec,
        c.outcome === 'done' ? 1 : 0,
        c.outcome === 'failed' ? 1 : 0,
        c.outcome === 'cancelled' ? 1 : 0,
        c.outcome === 'evicted' || c.outcome === 'lost' ? 1 : 0,
        c.coreSec,
      );
      return null;
    }
    case 'count-end':
      await sql.run(`UPDATE accounting SET ${c.end} = ${c.end} + 1 WHERE day = ? AND grp = ? AND pilot_id = ?`, c.day, c.group, c.pilotId);
      return null;
    case 'lost-attempt':
      await sql.run(
        'INSERT INTO lost_attempts (payload_id, pilot_id, cores, started_at, ended_at, cause) VALUES (?, ?, ?, ?, ?, ?)',
        c.payloadId, c.pilotId, c.cores, c.startedAt, c.endedAt, c.cause,
      );
      return null;
  }
}
