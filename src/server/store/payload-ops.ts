/**
 * A payload row read by id, and what a pilot is handed for it. (Its state
 * changes are `move-payload` changes: changes.ts, sqlite-apply.ts.)
 */
import type { Assignment, Requirements } from '../../protocol/index.js';
import type { PayloadRow } from './rows.js';
import { payloadEnv, payloadRequirements } from './rows.js';
import type { Sql } from './sql.js';

/** Read one payload row. */
export function payloadRow(sql: Sql, id: number): PayloadRow | undefined {
  return sql.get<PayloadRow>('SELECT * FROM payloads WHERE id = ?', id);
}

/** What a pilot is handed for payload `row`. */
export function assignment(row: PayloadRow): Assignment {
  return {
    id: row.id,
    name: row.name,
    group: row.grp,
    command: JSON.parse(row.command) as string[],
    env: payloadEnv(row),
    cores: row.allocated_cores ?? row.cores_min,
    memoryMb: row.memory_mb,
    wallSec: row.wall_sec,
    ...requirementsOf(row),
  };
}

function requirementsOf(row: PayloadRow): { requirements?: Requirements } {
  const r = payloadRequirements(row);
  return r ? { requirements: r } : {};
}
