/**
 * Pages of the admin listings (GET /v1/pilots, /v1/payloads, /v1/instances): newest
 * first, at most PAGE_MAX rows, the next page named by a `Link` header
 * (RFC 8288, `rel="next"`) holding the same filters and a `cursor`. A
 * client follows it until there is none. A query may count rows instead
 * (`offset`); its Link then names the next offset. Pure.
 */
import { VmpilotError } from '../../shared/errors.js';
import { PAGE_DEFAULT, PAGE_MAX } from './limits.js';

/** The page asked for: how many rows, and ids below which (null: from the newest). */
export interface Page {
  limit: number;
  before: number | null;
  /** Rows to skip (`offset`, the dashboard's "51-100 of N"), or null with a cursor or from the start. */
  offset: number | null;
}

/** The header that tells a listing's total (all matching rows, whatever the page). */
export const TOTAL_HEADER = 'x-total-count';

/** The page of a query's `limit` and `cursor` (both validated as digits by the schema). */
export function pageOf(query: { limit?: string; cursor?: string; offset?: string }): Page {
  const limit = query.limit === undefined ? PAGE_DEFAULT : Number(query.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > PAGE_MAX) {
    throw new VmpilotError('VMP_BAD_REQUEST', `query.limit must be from 1 to ${PAGE_MAX}, not ${query.limit}: ask for more by following the Link header of each page`);
  }
  if (query.offset !== undefined && query.cursor !== undefined) {
    throw new VmpilotError('VMP_BAD_REQUEST', 'query.offset and query.cursor cannot be given together: follow the Link header (cursor) or count rows (offset), not both');
  }
  return {
    limit,
    before: query.cursor === undefined ? null : Number(query.cursor),
    offset: query.offset === undefined ? null : Number(query.offset),
  };
}

/**
 * The Link header to the page after `rows` (newest first), or null when
 * this page was the last (it held fewer rows than asked for).
 */
export function nextLink(path: string, query: Record<string, string | undefined>, page: Page, rows: readonly { id: number }[]): string | null {
  const last = rows[rows.length - 1];
  if (rows.length < page.limit || !last) return null;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && k !== 'cursor' && k !== 'limit' && k !== 'offset') q.set(k, v);
  q.set('limit', String(page.limit));
  if (page.offset !== null) q.set('offset', String(page.offset + page.limit));
  else q.set('cursor', String(last.id));
  return `<${path}?${q.toString()}>; rel="next"`;
}
