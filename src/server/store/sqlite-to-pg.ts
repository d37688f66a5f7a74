/**
 * `vmpilot-server migrate --from sqlite:FILE --to postgres://…`: move an
 * installation from its SQLite file to an empty PostgreSQL database. Every
 * row of every table is copied with its id, and each id sequence is set past
 * the largest id, so pilots keep their credentials and report numbers,
 * payloads their ids and history, and the next record continues the count.
 *
 * The copy is one PostgreSQL transaction: it is all there, or (on any error)
 * the target is left as empty as it was. The source is only read, and must be
 * at this build's schema version (a server of this version opened it). The
 * tables SQLite keeps by trigger (counters) are not copied: PostgreSQL counts
 * with GROUP BY. Any other table or column the target lacks stops the copy
 * before it starts, so nothing is silently left behind.
 *
 * The pure parts (what to copy, in which order) are `copyPlan` and
 * `copyOrder`; `copySqliteToPg` reads and writes.
 */
import Database from 'better-sqlite3';
import path from 'node:path';
import { VmpilotError, describeError } from '../../shared/errors.js';
import { SCHEMA_VERSION } from './migrations.js';
import { migratePg } from './pg-migrations.js';
import { pgPool, type Pg } from './pg-sql.js';

/** Tables SQLite keeps from others by triggers (and its own bookkeeping): not data to move. */
export const DERIVED_TABLES: ReadonlySet<string> = new Set(['payload_counts', 'pilot_counts', 'accounting_groups', 'sqlite_sequence']);

/** Tables of the PostgreSQL store that hold no installation data. */
const PG_OWN_TABLES: ReadonlySet<string> = new Set(['schema_version']);

/** A table and its columns. */
export interface TableColumns {
  name: string;
  columns: string[];
}

/** What to copy: each table with the columns both sides have, and what was left out on purpose. */
export interface CopyPlan {
  tables: TableColumns[];
  derived: string[];
}

/**
 * What to copy from `source` (SQLite's tables) into `target`
 * (PostgreSQL's): every table but the derived ones, each with its columns.
 * Throws VMP_DATABASE naming a table or column the target lacks. Pure.
 */
export function copyPlan(source: readonly TableColumns[], target: readonly TableColumns[]): CopyPlan {
  const into = new Map(target.map((t) => [t.name, new Set(t.columns)]));
  const tables: TableColumns[] = [];
  const derived: string[] = [];
  for (const t of source) {
    if (DERIVED_TABLES.has(t.name) || t.name.startsWith('sqlite_')) {
      derived.push(t.name);
      continue;
    }
    const columns = into.get(t.name);
    if (!columns) throw new VmpilotError('VMP_DATABASE', `the PostgreSQL database has no table ${t.name}, which the SQLite file has: nothing was copied`);
    const missing = t.columns.filter((c) => !columns.has(c));
    if (missing.length) throw new VmpilotError('VMP_DATABASE', `the PostgreSQL table ${t.name} has no column ${missing.join(', ')}, which the SQLite file has: nothing was copied`);
    tables.push({ name: t.name, columns: [...t.columns] });
  }
  return { tables, derived: derived.sort() };
}

/**
 * `tables` ordered so that a table comes after every table it references
 * (`references`: child → parents), then by name. Pure.
 */
export function copyOrder(tables: readonly TableColumns[], references: readonly { child: string; parent: string }[]): TableColumns[] {
  const left = new Map(tables.map((t) => [t.name, t]));
  const out: TableColumns[] = [];
  while (left.size > 0) {
    const ready = [...left.values()]
      .filter((t) => !references.some((r) => r.child === t.name && r.parent !== t.name && left.has(r.parent)))
      .sort((a, b) => a.name.localeCompare(b.name));
    if (ready.length === 0) throw new VmpilotError('VMP_INTERNAL', `the tables ${[...left.keys()].join(', ')} reference each other in a circle`);
    for (const t of ready) {
      out.push(t);
      left.delete(t.name);
    }
  }
  return out;
}

/** Rows in each INSERT (PostgreSQL takes at most 65,535 parameters in one statement). */
const BATCH_PARAMS = 30_000;

/** What a copy moved: rows per table, in the order copied. */
export interface CopyResult {
  tables: { name: string; rows: number }[];
  derived: string[];
}

/**
 * Copy the SQLite installation in `file` into the empty PostgreSQL database
 * at `url` (its schema is created first). `progress` hears each table as it
 * is done. Throws VMP_DATABASE (or VMP_CONFLICT for a target that holds data)
 * and leaves the target as it was.
 */
export async function copySqliteToPg(file: string, url: string, progress: (table: string, rows: number) => void = () => {}): Promise<CopyResult> {
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new VmpilotError('VMP_DATABASE', `cannot open the SQLite file ${path.resolve(file)}: ${describeError(err)}`, { cause: err });
  }
  const pool = pgPool(url, 2);
  try {
    const version = Number(db.pragma('user_version', { simple: true }));
    if (version !== SCHEMA_VERSION) {
      throw new VmpilotError(
        'VMP_DATABASE',
        `the SQLite file ${path.resolve(file)} is at schema version ${version}, this vmpilot at ${SCHEMA_VERSION}: ` +
          (version < SCHEMA_VERSION ? 'start this version of vmpilot-server serve on it once (it migrates the file), stop it, then migrate' : 'migrate it with the vmpilot that wrote it'),
      );
    }
    try {
      await migratePg(pool);
    } catch (err) {
      throw new VmpilotError('VMP_DATABASE', `cannot prepare the PostgreSQL database: ${describeError(err)}`, { cause: err });
    }
    const source = sqliteTables(db);
    const target = await pgTables(pool);
    const plan = copyPlan(source, target);
    const order = copyOrder(plan.tables, await pgReferences(pool));
    const counted = await identityTables(pool);
    const copied = await pool.tx(async (q) => {
      for (const t of order) {
        const held = await q.get<{ one: number }>(`SELECT 1 AS one FROM "${t.name}" LIMIT 1`);
        if (held) throw new VmpilotError('VMP_CONFLICT', `the PostgreSQL database is not empty (table ${t.name} holds rows): migrate into a new, empty database`);
      }
      const done: { name: string; rows: number }[] = [];
      for (const t of order) {
        const rows = await copyTable(db, q, t);
        if (counted.has(t.name)) await restartIdentity(q, t.name);
        done.push({ name: t.name, rows });
        progress(t.name, rows);
      }
      return done;
    });
    return { tables: copied, derived: plan.derived };
  } catch (err) {
    if (err instanceof VmpilotError) throw err;
    throw new VmpilotError('VMP_DATABASE', `the copy to PostgreSQL failed, and nothing was kept there: ${describeError(err)}`, { cause: err });
  } finally {
    db.close();
    await pool.close().catch(() => {});
  }
}

/** The tables of the SQLite file and their columns. */
function sqliteTables(db: Database.Database): TableColumns[] {
  const names = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all() as string[];
  return names.map((name) => ({ name, columns: (db.pragma(`table_info(${JSON.stringify(name)})`) as { name: string }[]).map((c) => c.name) }));
}

/** The tables of the store in PostgreSQL (its own bookkeeping left out) and their columns. */
async function pgTables(q: Pg): Promise<TableColumns[]> {
  const rows = await q.all<{ table_name: string; column_name: string }>(
    "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position",
  );
  const byTable = new Map<string, string[]>();
  for (const r of rows) if (!PG_OWN_TABLES.has(r.table_name)) byTable.set(r.table_name, [...(byTable.get(r.table_name) ?? []), r.column_name]);
  return [...byTable].map(([name, columns]) => ({ name, columns }));
}

/** Which table references which, from PostgreSQL's foreign keys. */
async function pgReferences(q: Pg): Promise<{ child: string; parent: string }[]> {
  return q.all<{ child: string; parent: string }>(
    "SELECT conrelid::regclass::text AS child, confrelid::regclass::text AS parent FROM pg_constraint WHERE contype = 'f' AND connamespace = current_schema()::regnamespace",
  );
}

/** Copy every row of `t`, in id (rowid) order, a batch per INSERT; the rows copied. */
async function copyTable(db: Database.Database, q: Pg, t: TableColumns): Promise<number> {
  const per = Math.max(1, Math.floor(BATCH_PARAMS / t.columns.length));
  const select = db.prepare(`SELECT ${t.columns.map((c) => `"${c}"`).join(', ')} FROM "${t.name}" ORDER BY rowid`).raw();
  let batch: unknown[][] = [];
  let rows = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    const one = `(${t.columns.map(() => '?').join(', ')})`;
    await q.run(`INSERT INTO "${t.name}" (${t.columns.map((c) => `"${c}"`).join(', ')}) VALUES ${batch.map(() => one).join(', ')}`, ...batch.flat());
    rows += batch.length;
    batch = [];
  };
  for (const row of select.iterate() as IterableIterator<unknown[]>) {
    batch.push(row.map((v) => (typeof v === 'bigint' ? Number(v) : v)));
    if (batch.length >= per) await flush();
  }
  await flush();
  return rows;
}

/** The tables whose id PostgreSQL counts (an identity column). */
async function identityTables(q: Pg): Promise<Set<string>> {
  const rows = await q.all<{ table_name: string }>(
    "SELECT table_name FROM information_schema.columns WHERE table_schema = current_schema() AND column_name = 'id' AND is_identity = 'YES'",
  );
  return new Set(rows.map((r) => r.table_name));
}

/** Set `table`'s id sequence past its largest id, so the next row continues the count. */
async function restartIdentity(q: Pg, table: string): Promise<void> {
  await q.run(`SELECT setval(pg_get_serial_sequence(?, 'id'), COALESCE((SELECT MAX(id) FROM "${table}"), 0) + 1, false)`, table);
}
