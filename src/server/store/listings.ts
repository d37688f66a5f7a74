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
import { payloadOrderBy, pilotOrderBy } from './list-order.js';

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
  const offset = f.offset ?? 0;
  const states = f.states ? [...new Set<PilotState>(f.states)] : null;
  if (f.sort) {
    // sorted by a column: one read of every pilot in the states (an admin's page; pilots are thousands, not millions)
    const where = states ? `WHERE p.state IN (${states.map(() => '?').join(', ')})` : '';
    return sql.all<PilotRow>(`${select} ${where} ORDER BY ${pilotOrderBy(f.sort)} LIMIT ? OFFSET ?`, ...(states ?? []), limit, offset);
  }
  if (!states) return sql.all<PilotRow>(`${select} WHERE p.id < ? ORDER BY p.id DESC LIMIT ? OFFSET ?`, before, limit, offset);
  // each state's range holds at most offset + limit of the rows wanted
  const each = limit === ALL ? ALL : limit + offset;
  const rows = states.flatMap((state) =>
    sql.all<PilotRow>(`${select} WHERE p.state = ? AND p.id < ? ORDER BY p.id DESC LIMIT ?`, state, before, each),
  );
  rows.sort((a, b) => b.id - a.id);
  return limit === ALL ? rows.slice(offset) : rows.slice(offset, offset + limit);
}

/** How many pilots match `f`'s states (from the counts the triggers keep). */
export function countPilotsIn(sql: Sql, f: PilotFilter): number {
  const states = f.states ? [...new Set<PilotState>(f.states)] : null;
  if (!states) return sql.get<{ n: number | null }>('SELECT SUM(n) AS n FROM pilot_counts')?.n ?? 0;
  return sql.get<{ n: number | null }>(
    `SELECT SUM(n) AS n FROM pilot_counts WHERE state IN (${states.map(() => '?').join(', ')})`, ...states,
  )?.n ?? 0;
}

/** The WHERE clause and its parameters of a payload filter, paging left out. */
function payloadWhere(f: PayloadFilter): { where: string[]; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  if (f.state) (where.push('state = ?'), params.push(f.state));
  if (f.group) (where.push('grp = ?'), params.push(f.group));
  if (f.pilotId !== undefined) (where.push('pilot_id = ?'), params.push(f.pilotId));
  // instr(), not LIKE: no wildcard in the text can widen the search
  if (f.nameContains) (where.push('instr(name, ?) > 0'), params.push(f.nameContains));
  return { where, params };
}

/**
 * Payloads matching `f`, newest first (or oldest first), without `env` and
 * `output_tail`, with their evictions and core-seconds (a few indexed rows
 * of each listed one).
 */
export function listPayloadsIn(sql: Sql, f: PayloadFilter): PayloadListRow[] {
  const { where, params } = payloadWhere(f);
  if (f.before !== undefined) (where.push(f.oldestFirst ? 'id > ?' : 'id < ?'), params.push(f.before));
  const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
  return sql.all<PayloadListRow>(
    `${PAYLOAD_LIST_SELECT} ${clause} ORDER BY ${payloadOrderBy(f.sort ?? (f.oldestFirst ? { key: 'id', descending: false } : undefined))} LIMIT ? OFFSET ?`,
    ...params,
    f.limit ?? ALL,
    f.offset ?? 0,
  );
}

/**
 * How many payloads match `f` (paging ignored): from the counts the
 * triggers keep when it filters by state and group only, else one indexed count.
 */
export function countPayloadsIn(sql: Sql, f: PayloadFilter): number {
  if (f.pilotId === undefined && !f.nameContains) {
    const where: string[] = [];
    const params: unknown[] = [];
    if (f.state) (where.push('state = ?'), params.push(f.state));
    if (f.group) (where.push('grp = ?'), params.push(f.group));
    const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
    return sql.get<{ n: number | null }>(`SELECT SUM(n) AS n FROM payload_counts ${clause}`, ...params)?.n ?? 0;
  }
  const { where, params } = payloadWhere(f);
  return sql.get<{ n: number }>(`SELECT COUNT(*) AS n FROM payloads WHERE ${where.join(' AND ')}`, ...params)?.n ?? 0;
}
