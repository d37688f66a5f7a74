/**
 * A thin wrapper over a node-postgres pool for the PostgreSQL store, shaped
 * like sql.ts so store code reads the same: `get`, `all` and `run` take SQL
 * with `?` placeholders (numbered for PostgreSQL here), and `tx` runs a
 * function in one transaction on one pooled connection, rolled back whole
 * when it throws and tried again when PostgreSQL chose it as a deadlock's
 * or a serialization failure's victim. BIGINT and NUMERIC columns come back
 * as JavaScript numbers (the store's times are ms since the epoch, well
 * within 2^53), through type parsers of this pool only.
 */
import pg from 'pg';

/** How a value of a column type is parsed: BIGINT (20) and NUMERIC (1700) as numbers, the rest as pg does. */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === 20 || oid === 1700 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/** PostgreSQL's error codes a transaction is tried again for: serialization failure, deadlock. */
const RETRY = new Set(['40001', '40P01']);

/** How many times a transaction is tried before its error is thrown. */
const TRIES = 5;

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
    return (await this.on.query(numbered(sql), params)).rows[0] as T | undefined;
  }

  /** All rows. */
  async all<T>(sql: string, ...params: unknown[]): Promise<T[]> {
    return (await this.on.query(numbered(sql), params)).rows as T[];
  }

  /** Run a change; the rows it returned (RETURNING) and how many rows it changed. */
  async run(sql: string, ...params: unknown[]): Promise<{ rows: Record<string, unknown>[]; changes: number }> {
    const r = await this.on.query(numbered(sql), params);
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
   * through `q`.
   */
  async tx<T>(fn: (q: Pg) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.pool.connect();
      let broken: unknown = undefined;
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
        throw err;
      } finally {
        client.release(broken instanceof Error ? broken : undefined);
      }
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** The default number of connections each server keeps to PostgreSQL at most. */
export const DEFAULT_POOL_SIZE = 10;

/** A pool of at most `max` connections to `url`, with the store's type parsers. */
export function pgPool(url: string, max: number = DEFAULT_POOL_SIZE): PgPool {
  const pool = new pg.Pool({ connectionString: url, max, types, application_name: 'vmpilot-server' });
  // an idle connection that breaks (PostgreSQL restarted) is dropped from the pool; the next query opens a new one
  pool.on('error', () => {});
  return new PgPool(pool);
}
