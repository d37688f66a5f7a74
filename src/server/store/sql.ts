/**
 * A thin wrapper over a better-sqlite3 connection that caches prepared
 * statements by their text, so store code can write SQL inline.
 */
import type Database from 'better-sqlite3';

/** Cached statements over one connection. */
export class Sql {
  private readonly cache = new Map<string, Database.Statement>();
  /** One transaction function, made once: better-sqlite3 builds a wrapper per `transaction()` call. */
  private readonly inTx: Database.Transaction<(fn: () => unknown) => unknown>;

  constructor(readonly db: Database.Database) {
    this.inTx = db.transaction((fn: () => unknown) => fn());
  }

  private stmt(sql: string): Database.Statement {
    let s = this.cache.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.cache.set(sql, s);
    }
    return s;
  }

  /** The first row, or undefined. */
  get<T>(sql: string, ...params: unknown[]): T | undefined {
    return this.stmt(sql).get(...params) as T | undefined;
  }

  /** All rows. */
  all<T>(sql: string, ...params: unknown[]): T[] {
    return this.stmt(sql).all(...params) as T[];
  }

  /** Run a change; returns the new row id and the number of rows changed. */
  run(sql: string, ...params: unknown[]): { id: number; changes: number } {
    const r = this.stmt(sql).run(...params);
    return { id: Number(r.lastInsertRowid), changes: r.changes };
  }

  /**
   * Run `fn` in one transaction (IMMEDIATE, so two writers never deadlock);
   * inside another transaction, in a savepoint of it.
   */
  tx<T>(fn: () => T): T {
    return this.inTx.immediate(fn) as T;
  }
}
