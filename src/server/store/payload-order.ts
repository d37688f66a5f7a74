/**
 * The order of a payload listing, as SQL both engines read alike: the
 * listing's sort key (a column a person sorts a table by) mapped to a fixed
 * expression, never to text the caller gave, with rows that have no value
 * last in either direction and ties broken newest first. Pure.
 */
import type { PayloadState } from '../../protocol/index.js';

/** What a payload listing can be sorted by. */
export const PAYLOAD_SORT_KEYS = ['id', 'name', 'group', 'state', 'cores', 'pilot', 'exit', 'attempts', 'started', 'ended'] as const;
export type PayloadSortKey = (typeof PAYLOAD_SORT_KEYS)[number];

/** A listing's sort: its key, and whether it runs from the largest value down. */
export interface PayloadSort {
  key: PayloadSortKey;
  descending: boolean;
}

/** States in the order of a payload's life (done, failed and cancelled being ends). */
const LIFE: readonly PayloadState[] = ['queued', 'assigned', 'running', 'lost', 'evicted', 'done', 'failed', 'cancelled'];

const EXPRESSION: Readonly<Record<PayloadSortKey, string>> = {
  id: 'id',
  name: 'name',
  group: 'grp',
  state: `CASE state ${LIFE.map((s, i) => `WHEN '${s}' THEN ${i}`).join(' ')} END`,
  cores: 'COALESCE(allocated_cores, cores_min)',
  pilot: 'pilot_id',
  exit: 'exit_code',
  attempts: 'attempts',
  started: 'started_at',
  ended: 'ended_at',
};

/** Columns that may hold no value: those rows come last, whichever the direction. */
const NULLABLE: ReadonlySet<PayloadSortKey> = new Set(['pilot', 'exit', 'started', 'ended']);

/**
 * "sort=name" is by name A to Z, "sort=-name" Z to A; null for text that
 * names no key. Pure.
 */
export function parsePayloadSort(text: string): PayloadSort | null {
  const descending = text.startsWith('-');
  const key = descending ? text.slice(1) : text;
  return (PAYLOAD_SORT_KEYS as readonly string[]).includes(key) ? { key: key as PayloadSortKey, descending } : null;
}

/** The ORDER BY clause (without the words) for `sort`; none: newest first. */
export function payloadOrderBy(sort: PayloadSort | undefined): string {
  if (!sort || sort.key === 'id') return `id ${sort && !sort.descending ? 'ASC' : 'DESC'}`;
  const e = EXPRESSION[sort.key];
  const nullsLast = NULLABLE.has(sort.key) ? `(${e}) IS NULL, ` : '';
  return `${nullsLast}${e} ${sort.descending ? 'DESC' : 'ASC'}, id DESC`;
}
