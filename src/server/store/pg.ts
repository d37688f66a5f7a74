/**
 * The PostgreSQL store (node-postgres): the same Store (store.ts) as the
 * SQLite one, for several server replicas on one database. Every change is
 * committed before the method returns; a change of several rows is one
 * transaction. One file per part, as for SQLite: pilots (pg-pilots.ts),
 * payloads with the claim (pg-payloads.ts), instructions and reports
 * (pg-instructions.ts), reservation designations (pg-reservations.ts), the
 * director's instances and state (pg-instances.ts, pg-director-state.ts),
 * the reads beyond single rows (pg-reads.ts); the same pure rules decide
 * (apply-report.ts, endings.ts, pilot-rules.ts) and pg-apply.ts writes
 * their changes. pg-sql.ts holds the pool, pg-migrations.ts the schema.
 */
import { VmpilotError, describeError } from '../../shared/errors.js';
import { pgDirectorState } from './pg-director-state.js';
import { pgInstructions } from './pg-instructions.js';
import { migratePg } from './pg-migrations.js';
import { pgPayloads } from './pg-payloads.js';
import { pgPilots } from './pg-pilots.js';
import { pgAccounting, pgAccountingByGroup, pgCounts, pgOverviewFigures, pgPilotDetail, pgRunIntervals } from './pg-reads.js';
import { pgReservations } from './pg-reservations.js';
import { DEFAULT_POOL_SIZE, pgPool, type PgPool } from './pg-sql.js';
import type { AccountingStore, SettingsStore, Store, StorePolicy } from './store.js';

/** Whether `db` (as --db or VMPILOT_DB give it) names a PostgreSQL database rather than a SQLite file. */
export function isPostgresUrl(db: string): boolean {
  return /^postgres(ql)?:\/\//i.test(db);
}

/** `url` without its password, for messages and logs. */
export function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/:[^:@/]*@/, ':***@');
  }
}

/** How the PostgreSQL store connects. */
export interface PgOptions {
  /** At most this many connections from this server (default DEFAULT_POOL_SIZE). */
  poolSize?: number;
}

/**
 * Connect to the database at `url` and migrate it (once, however many
 * servers start together). Throws VMP_DATABASE with the URL (its password
 * left out) when it cannot connect or migrate.
 */
export async function openPgStore(url: string, policy: StorePolicy = { maxAttempts: 3 }, options: PgOptions = {}): Promise<Store> {
  const pool = pgPool(url, options.poolSize ?? DEFAULT_POOL_SIZE);
  try {
    await migratePg(pool);
    return pgStore(pool, policy);
  } catch (err) {
    await pool.close().catch(() => {});
    throw new VmpilotError('VMP_DATABASE', `cannot open database ${redactedUrl(url)}: ${describeError(err)}`, { cause: err });
  }
}

/** The Store on a pool whose database is migrated: its parts, each on the same pool. */
export function pgStore(pool: PgPool, policy: StorePolicy): Store {
  return {
    ...pgSettings(pool),
    ...pgPilots(pool, policy),
    ...pgPayloads(pool),
    ...pgInstructions(pool, policy),
    ...pgAccountingPart(pool),
    ...pgReservations(pool),
    ...pgDirectorState(pool, policy),
  };
}

function pgSettings(pool: PgPool): SettingsStore {
  let closed = false;
  return {
    async migrate() {
      await migratePg(pool);
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.close();
    },
    async getSetting(key: string) {
      return (await pool.get<{ value: string }>('SELECT value FROM settings WHERE key = ?', key))?.value ?? null;
    },
    async setSetting(key: string, value: string) {
      await pool.run('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', key, value);
    },
  };
}

function pgAccountingPart(pool: PgPool): AccountingStore {
  return {
    runIntervals: (since) => pgRunIntervals(pool, since),
    accounting: (filter) => pgAccounting(pool, filter),
    accountingByGroup: () => pgAccountingByGroup(pool),
    counts: () => pgCounts(pool),
    overviewFigures: () => pgOverviewFigures(pool),
    pilotDetail: (pilotId, limit) => pgPilotDetail(pool, pilotId, limit),
  };
}
