/**
 * Payload state changes, each validated against the state machine in
 * `transitions.ts` and written with a history row. Called inside the store's
 * transactions; an illegal change throws and rolls the transaction back.
 */
import type { Assignment, PayloadState, Requirements } from '../../protocol/index.js';
import { VmpilotError } from '../../shared/errors.js';
import type { PayloadRow } from './rows.js';
import { payloadEnv, payloadRequirements } from './rows.js';
import type { Sql } from './sql.js';
import { payloadTransitionAllowed } from './transitions.js';

/** The columns to set alongside a state change. */
export type PayloadChanges = Partial<
  Pick<
    PayloadRow,
    | 'pilot_id'
    | 'allocated_cores'
    | 'exit_code'
    | 'signal'
    | 'output_tail'
    | 'message'
    | 'assigned_at'
    | 'started_at'
    | 'ended_at'
    | 'attempts'
    | 'cancel_reason'
  >
>;

/** Read one payload row. */
export function payloadRow(sql: Sql, id: number): PayloadRow | undefined {
  return sql.get<PayloadRow>('SELECT * FROM payloads WHERE id = ?', id);
}

/**
 * Move payload `row` to `to`, setting `changes`, and record it in its history.
 * Throws VMP_CONFLICT (and writes nothing) when the state machine forbids it.
 */
export function movePayload(
  sql: Sql,
  row: PayloadRow,
  to: PayloadState,
  changes: PayloadChanges,
  reason: string,
  at: number,
): void {
  if (!payloadTransitionAllowed(row.state, to)) {
    throw new VmpilotError('VMP_CONFLICT', `payload ${row.id} cannot go from ${row.state} to ${to}`);
  }
  const cols = Object.keys(changes) as (keyof PayloadChanges)[];
  const sets = ['state = ?', ...cols.map((c) => `${c} = ?`)].join(', ');
  const r = sql.run(
    `UPDATE payloads SET ${sets} WHERE id = ? AND state = ?`,
    to,
    ...cols.map((c) => changes[c] ?? null),
    row.id,
    row.state,
  );
  if (r.changes !== 1) throw new VmpilotError('VMP_CONFLICT', `payload ${row.id} changed under us`);
  sql.run(
    'INSERT INTO payload_states (payload_id, state, pilot_id, reason, at) VALUES (?, ?, ?, ?, ?)',
    row.id,
    to,
    changes.pilot_id !== undefined ? changes.pilot_id : row.pilot_id,
    reason,
    at,
  );
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
