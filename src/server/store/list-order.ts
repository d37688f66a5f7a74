/**
 * The order of a listing (payloads, pilots), as SQL both engines read
 * alike: the listing's sort key (a column a person sorts a table by) mapped
 * to a fixed expression, never to text the caller gave, with rows that have
 * no value last in either direction and ties broken newest first. Pure.
 */
import type { PayloadState, PilotState } from '../../protocol/index.js';

/** What a payload listing can be sorted by. */
export const PAYLOAD_SORT_KEYS = ['id', 'name', 'group', 'state', 'cores', 'pilot', 'exit', 'attempts', 'started', 'ended'] as const;
export type PayloadSortKey = (typeof PAYLOAD_SORT_KEYS)[number];

/** What a pilot listing can be sorted by. */
export const PILOT_SORT_KEYS = ['id', 'host', 'state', 'cores', 'heartbeat', 'shutdown'] as const;
export type PilotSortKey = (typeof PILOT_SORT_KEYS)[number];

/** A listing's sort: its key, and whether it runs from the largest value down. */
export interface ListSort<K extends string> {
  key: K;
  descending: boolean;
}
export type PayloadSort = ListSort<PayloadSortKey>;
export type PilotSort = ListSort<PilotSortKey>;

/** States in the order of a life (the ends last). */
const lifeOrder = (column: string, life: readonly string[]) => `CASE ${column} ${life.map((s, i) => `WHEN '${s}' THEN ${i}`).join(' ')} END`;
const PAYLOAD_LIFE: readonly PayloadState[] = ['queued', 'assigned', 'running', 'lost', 'evicted', 'done', 'failed', 'cancelled'];
const PILOT_LIFE: readonly PilotState[] = ['submitted', 'booting', 'running', 'draining', 'halting', 'stalled', 'error', 'halted'];

/** A key's expression, and whether it may hold no value (those rows come last, whichever the direction). */
type Columns<K extends string> = Readonly<Record<K, { e: string; nullable?: true }>>;

const PAYLOAD_COLUMNS: Columns<PayloadSortKey> = {
  id: { e: 'id' },
  name: { e: 'name' },
  group: { e: 'grp' },
  state: { e: lifeOrder('state', PAYLOAD_LIFE) },
  cores: { e: 'COALESCE(allocated_cores, cores_min)' },
  pilot: { e: 'pilot_id', nullable: true },
  exit: { e: 'exit_code', nullable: true },
  attempts: { e: 'attempts' },
  started: { e: 'started_at', nullable: true },
  ended: { e: 'ended_at', nullable: true },
};

const PILOT_COLUMNS: Columns<PilotSortKey> = {
  id: { e: 'p.id' },
  host: { e: 'p.hostname' },
  state: { e: lifeOrder('p.state', PILOT_LIFE) },
  cores: { e: 'p.cores' },
  heartbeat: { e: 'p.last_heartbeat_at', nullable: true },
  shutdown: { e: 'p.shutdown_code', nullable: true },
};

/** "name" sorts A to Z, "-name" Z to A; null for text that names none of `keys`. Pure. */
export function parseSort<K extends string>(keys: readonly K[], text: string): ListSort<K> | null {
  const descending = text.startsWith('-');
  const key = descending ? text.slice(1) : text;
  return (keys as readonly string[]).includes(key) ? { key: key as K, descending } : null;
}

function orderBy<K extends string>(columns: Columns<K>, id: string, sort: ListSort<K> | undefined): string {
  if (!sort || columns[sort.key].e === id) return `${id} ${sort && !sort.descending ? 'ASC' : 'DESC'}`;
  const { e, nullable } = columns[sort.key];
  return `${nullable ? `(${e}) IS NULL, ` : ''}${e} ${sort.descending ? 'DESC' : 'ASC'}, ${id} DESC`;
}

/** The ORDER BY clause (without the words) of a payload listing; none: newest first. */
export function payloadOrderBy(sort: PayloadSort | undefined): string {
  return orderBy(PAYLOAD_COLUMNS, 'id', sort);
}

/** The ORDER BY clause of a pilot listing (its table is `p`); none: newest first. */
export function pilotOrderBy(sort: PilotSort | undefined): string {
  return orderBy(PILOT_COLUMNS, 'p.id', sort);
}
