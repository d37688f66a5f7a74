/**
 * The listings of the SQLite store, newest first and in pages: each reads
 * one index range in id order (no sort of the whole table) and only the
 * columns a listing shows, so a page costs the same with 100 or 100,000
 * records (bench/server-limits.mjs).
 */
import type { PilotState } from '../../protocol/index.js';
import { PAYLOAD_LIST_SELECT, type PayloadListRow, type PilotRow } from './rows.js';
import type { Sql } from './sql.js';
import type { PayloadFilter, PilotFilter } from './store.js';

/** SQLite's "no limit". */
const ALL = -1;

/**
 * Pilots matching `f`, newest first, read with `select` (the pilot columns).
 * Several states are read one index range each (pilots_state_id) and merged,
 * rather than sorted from every pilot in them.
 */
export function listPilotsIn(sql: Sql, select: string, f: PilotFilter): PilotRow[] {
  const before = f.before ?? Number.MAX_SAFE_INTEGER;
  const limit = f.limit ?? ALL;
  const states = f.states ? [...new Set<PilotState>(f.states)] : null;
  if (!states) return sql.all<PilotRow>(`${select} WHERE p.id < ? ORDER BY p.id DESC LIMIT ?`, before, limit);
  const rows = states.flatMap((state) =>
    sql.all<PilotRow>(`${select} WHERE p.state = ? AND p.id < ? ORDER BY p.id DESC LIMIT ?`, state, before, limit),
  );
  rows.sort((a, b) => b.id - a.id);
  return limit === ALL ? rows : rows.slice(0, limit);
}

/**
 * Payloads matching `f`, newest first, without `env` and `output_tail`, with
 * their evictions and core-seconds (a few indexed rows of each listed one).
 */
export function listPayloadsIn(sql: Sql, f: PayloadFilter): PayloadListRow[] {
  const where = ['id < ?'];
  const params: unknown[] = [f.before ?? Number.MAX_SAFE_INTEGER];
  if (f.state) (where.push('state = ?'), params.push(f.state));
  if (f.group) (where.push('grp = ?'), params.push(f.group));
  if (f.pilotId !== undefined) (where.push('pilot_id = ?'), params.push(f.pilotId));
  return sql.all<PayloadListRow>(
    `${PAYLOAD_LIST_SELECT} WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT ?`,
    ...params,
    f.limit ?? ALL,
  );
}
