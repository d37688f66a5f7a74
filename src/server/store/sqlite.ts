/**
 * The SQLite store (better-sqlite3): the server's records in one file, in WAL
 * mode. Every change is committed before the method returns, so whatever the
 * server has acknowledged survives a restart. All SQL of the server lives in
 * this folder, one file per part of the Store (store.ts): pilots
 * (sqlite-pilots.ts), payloads (sqlite-payloads.ts), instructions and reports
 * (sqlite-instructions.ts), accounting (aggregates.ts, overview.ts),
 * reservation designations (sqlite-reservations.ts), the director's instances
 * and state (sqlite-instances.ts, sqlite-director-state.ts); the
 * rules they apply are pure (apply-report.ts, endings.ts, pilot-rules.ts)
 * and their changes are written by sqlite-apply.ts.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Clock } from '../../shared/clock.js';
import { VmpilotError, describeError } from '../../shared/errors.js';
import { accountingByGroupIn, accountingIn, countsIn, runIntervalsIn } from './aggregates.js';
import { migrate } from './migrations.js';
import { overviewFiguresIn, pilotDetailIn } from './overview.js';
import { Sql } from './sql.js';
import { sqliteInstances } from './sqlite-director-state.js';
import { sqliteInstructions } from './sqlite-instructions.js';
import { sqlitePayloads } from './sqlite-payloads.js';
import { GroupCommit } from './heartbeat-group.js';
import { applyHeartbeat, sqlitePilots, type Heartbeat } from './sqlite-pilots.js';
import { sqliteReservations } from './sqlite-reservations.js';
import type { AccountingStore, SettingsStore, Store, StorePolicy } from './store.js';

export { DEFAULT_HALF_LIFE_SEC } from './sqlite-payloads.js';

/** The default policy: three attempts per payload. */
export const DEFAULT_POLICY: StorePolicy = { maxAttempts: 3 };

/** The Store on one better-sqlite3 connection. */
export type SqliteStore = Store;

/** How the store writes. */
export interface SqliteOptions {
  /**
   * Commit heartbeats in groups (heartbeat-group.ts): those that arrive
   * before the next turn of `clock`'s event loop share one transaction, each
   * answered once it commits. The server sets it; without it each heartbeat
   * is its own transaction.
   */
  groupCommit?: Clock;
}

/**
 * Open (creating if needed) the store in `file` and migrate it. Throws
 * VMP_DATABASE with the file name when it cannot be opened or migrated.
 */
export function openSqliteStore(file: string, policy: StorePolicy = DEFAULT_POLICY, options: SqliteOptions = {}): SqliteStore {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { fileMustExist: false });
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    // heartbeats rewrite pilot rows in place: after each checkpoint the WAL is cut back to this size
    db.pragma('journal_size_limit = 67108864');
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = ON');
    migrate(db);
    return sqliteStore(db, policy, options);
  } catch (err) {
    db?.close();
    throw new VmpilotError('VMP_DATABASE', `cannot open database ${path.resolve(file)}: ${describeError(err)}`, {
      cause: err,
    });
  }
}

/** The Store on an open, migrated connection: its parts, each over the same statements. */
export function sqliteStore(db: Database.Database, policy: StorePolicy = DEFAULT_POLICY, options: SqliteOptions = {}): SqliteStore {
  const sql = new Sql(db);
  const store: Store = {
    ...sqliteSettings(sql),
    ...sqlitePilots(sql, policy),
    ...sqlitePayloads(sql),
    ...sqliteInstructions(sql, policy),
    ...sqliteAccounting(sql),
    ...sqliteReservations(sql),
    ...sqliteInstances(sql, policy),
  };
  if (!options.groupCommit) return store;
  const group = new GroupCommit<Heartbeat>((fn) => sql.tx(fn), (h) => applyHeartbeat(sql, h), options.groupCommit);
  const close = store.close;
  return {
    ...store,
    recordHeartbeat: (pilotId, beat, at) => group.submit({ pilotId, beat, at }),
    // heartbeats still waiting are written (and answered) before the connection goes
    async close() {
      if (sql.db.open) group.flushAll();
      await close();
    },
  };
}

function sqliteSettings(sql: Sql): SettingsStore {
  return {
    async migrate() {
      migrate(sql.db);
    },
    async close() {
      if (sql.db.open) sql.db.close();
    },
    async getSetting(key: string) {
      return sql.get<{ value: string }>('SELECT value FROM settings WHERE key = ?', key)?.value ?? null;
    },
    async setSetting(key: string, value: string) {
      sql.run('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', key, value);
    },
  };
}

function sqliteAccounting(sql: Sql): AccountingStore {
  return {
    async runIntervals(since: number) {
      return runIntervalsIn(sql, since);
    },
    async accounting(filter) {
      return accountingIn(sql, filter);
    },
    async accountingByGroup() {
      return accountingByGroupIn(sql);
    },
    async counts() {
      return countsIn(sql);
    },
    async overviewFigures() {
      return overviewFiguresIn(sql);
    },
    async pilotDetail(pilotId: number, limit: number) {
      return pilotDetailIn(sql, pilotId, limit);
    },
  };
}
