/**
 * A thin wrapper over a node-postgres pool for the PostgreSQL store, shaped
 * like sql.ts so store code reads the same: `get`, `all` and `run` take SQL
 * with `?` placeholders (numbered for PostgreSQL here), and `tx` runs a
 * function in one transaction on one pooled connection, rolled back whole
 * when it throws and tried again when PostgreSQL chose it as a deadlock's
 * or a serialization failure's victim. BIGINT and NUMERIC columns come back
 * as JavaScript numbers (the store's times are ms since the epoch, well
 * within 2^53), through type parsers of this pool only.
 *
 * When PostgreSQL cannot be reached (stopped, restarting, the network cut)
 * every query and transaction fails with VMP_DATABASE_UNAVAILABLE (HTTP 503,
 * Retry-After) rather than node-postgres's own error, and the pool opens new
 * connections once it is back: replicas reconnect by themselves.
 */
import pg from 'pg';
import { VmpilotError, describeError } from '../../shared/errors.js';

/** How a value of a column type is parsed: BIGINT (20) and NUMERIC (1700) as numbers, the rest as pg does. */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === 20 || oid === 1700 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/** PostgreSQL's error codes a transaction is tried again for: serialization failure, deadlock. */
const RETRY = new Set(['40001', '40P01']);

/** How many times a transaction is tried before its error is thrown. */
const TRIES = 5;

/** Node's socket errors that mean PostgreSQL is not there (refused, reset, unreachable, timed out). */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * PostgreSQL's SQLSTATEs that mean the server went or is not ready: connection
 * exceptions (class 08), admin or crash shutdown, starting up, too many connections.
 */
const GONE_STATES = new Set(['57P01', '57P02', '57P03', '53300']);

/** node-postgres's own words for a connection that ended or could not be had in time. */
const GONE_MESSAGE = /^Connection terminated|not queryable|timeout exceeded when trying to connect/;

/** Seconds a client is told to wait (Retry-After) when the database is unavailable. */
export const UNAVAILABLE_RETRY_SEC = 5;

/**
 * True when `err` says PostgreSQL could not be reached or dropped the
 * connection, as opposed to refusing a statement (a constraint, a syntax
 * error, a deadlock), which stays the error it is.
 */
export function isConnectionLost(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (SOCKET_CODES.has(code) || GONE_STATES.has(code) || /^08/.test(code))) return true;
  return GONE_MESSAGE.test(err.message);
}

/** `err` as VMP_DATABASE_UNAVAILABLE when the connection was lost, else `err` itself. */
export function asUnavailable(err: unknown): unknown {
  if (err instanceof VmpilotError || !isConnectionLost(err)) return err;
  return new VmpilotError('VMP_DATABASE_UNAVAILABLE', `the server's database is unavailable; try again in ${UNAVAILABLE_RETRY_SEC} s`, {
    cause: err,
    details: { retryAfterSec: UNAVAILABLE_RETRY_SEC, reason: describeError(err) },
  });
}

/** Run one query, its connection errors as VMP_DATABASE_UNAVAILABLE. */
async function query(on: Queryable, text: string, params: unknown[]): Promise<pg.QueryResult> {
  try {
    return await on.query(numbered(text), params);
  } catch (err) {
    throw asUnavailable(err);
  }
}

/** `?` placeholders as `$1`, `$2`, ... (none of the store's SQL has a `?` inside a quoted text). */
export function numbered(text: string): string {
  let n = 0;
  let quoted = false;
  let out = '';
  for (const ch of text) {
    if (ch === "'") quoted = !quoted;
    out += ch === '?' && !quoted ? `$${++n}` : ch;
  }
  return out;
}

/** What runs queries: the pool (each statement its own transaction) or one client inside a transaction. */
interface Queryable {
  query(text: string, values?: unknown[]): Promise<pg.QueryResult>;
}

/** Queries on a pool or inside one transaction. */
export class Pg {
  constructor(private readonly on: Queryable) {}

  /** The first row, or undefined. */
  async get<T>(sql: string, ...params: unknown[]): Promise<T | undefined> {
    return (await query(this.on, sql, params)).rows[0] as T | undefined;
  }

  /** All rows. */
  async all<T>(sql: string, ...params: unknown[]): Promise<T[]> {
    return (await query(this.on, sql, params)).rows as T[];
  }

  /** Run a change; the rows it returned (RETURNING) and how many rows it changed. */
  async run(sql: string, ...params: unknown[]): Promise<{ rows: Record<string, unknown>[]; changes: number }> {
    const r = await query(this.on, sql, params);
    return { rows: r.rows as Record<string, unknown>[], changes: r.rowCount ?? 0 };
  }
}

/** The pool of the PostgreSQL store: queries outside transactions, transactions on one client each. */
export class PgPool extends Pg {
  constructor(readonly pool: pg.Pool) {
    super(pool);
  }

  /**
   * Run `fn` in one transaction (READ COMMITTED; rows are locked where the
   * store's SQL says FOR UPDATE). Rolled back when it throws; tried again
   * from the start, up to TRIES times, when PostgreSQL ends it as a deadlock's
   * or a serialization failure's victim, so `fn` must only read and write
   * through `q`. A connection lost meanwhile is VMP_DATABASE_UNAVAILABLE
   * (the transaction was not committed, or its COMMIT's answer was lost).
   */
  async tx<T>(fn: (q: Pg) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let client: pg.PoolClient;
      try {
        client = await this.pool.connect();
      } catch (err) {
        throw asUnavailable(err);
      }
      let broken: unknown = undefined;
      // a checked-out client has no pool listener: its connection ending between two queries must not be an uncaught 'error'
      const onError = (err: Error) => (broken = err);
      client.on('error', onError);
      try {
        await client.query('BEGIN');
        const result = await fn(new Pg(client));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        try {
          await client.query('ROLLBACK');
        } catch (rollback) {
          // the connection itself failed: do not give it back to the pool
          broken = rollback;
        }
        const code = (err as { code?: unknown }).code;
        if (attempt < TRIES && typeof code === 'string' && RETRY.has(code)) continue;
        throw asUnavailable(err);
      } finally {
        client.off('error', onError);
        client.release(broken instanceof Error ? broken : undefined);
      }
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** How long a query waits for a connection to PostgreSQL (ms). */
export const CONNECT_TIMEOUT_MS = 10_000;

/** The default number of connections each server keeps to PostgreSQL at most. */
export const DEFAULT_POOL_SIZE = 10;

/** A pool of at most `max` connections to `url`, with the store's type parsers. */
export function pgPool(url: string, max: number = DEFAULT_POOL_SIZE): PgPool {
  // a connection (new, or a free one of the pool) not had within CONNECT_TIMEOUT_MS is VMP_DATABASE_UNAVAILABLE, not a request hung until TCP gives up
  const pool = new pg.Pool({ connectionString: url, max, types, application_name: 'vmpilot-server', connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  // an idle connection that breaks (PostgreSQL restarted) is dropped from the pool; the next query opens a new one
  pool.on('error', () => {});
  return new PgPool(pool);
}
