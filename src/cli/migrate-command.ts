/**
 * `vmpilot-server migrate --from sqlite:FILE --to postgres://…`: the command
 * around store/sqlite-to-pg.ts. Progress (a line per table) goes to stderr
 * on a terminal; the summary to stdout.
 */
import { VmpilotError } from '../shared/errors.js';
import { isPostgresUrl, redactedUrl } from '../server/store/pg.js';
import { copySqliteToPg } from '../server/store/sqlite-to-pg.js';

/** `--from sqlite:FILE` (or a bare file name): the file; throws VMP_USAGE for anything else. */
export function sqliteSource(from: string): string {
  const file = from.startsWith('sqlite:') ? from.slice('sqlite:'.length) : from;
  if (!file || /^[a-z]+:\/\//i.test(file)) throw new VmpilotError('VMP_USAGE', `--from "${from}" is not a SQLite file: give sqlite:/var/lib/vmpilot/server.db`);
  return file;
}

/** Copy the installation; print what was copied. */
export async function migrateCommand(
  o: { from: string; to: string; json?: boolean },
  out: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
  progress: (line: string) => void = (line) => {
    if (process.stderr.isTTY) process.stderr.write(`${line}\n`);
  },
): Promise<void> {
  const file = sqliteSource(o.from);
  if (!isPostgresUrl(o.to)) throw new VmpilotError('VMP_USAGE', `--to "${redactedUrl(o.to)}" is not a PostgreSQL URL: give postgres://USER@HOST/DB`);
  const result = await copySqliteToPg(file, o.to, (table, rows) => progress(`copied ${table}: ${rows.toLocaleString('en-US')} rows`));
  if (o.json) return out(JSON.stringify(result));
  const width = Math.max(...result.tables.map((t) => t.name.length), 5);
  out(`${'TABLE'.padEnd(width)}  ROWS`);
  for (const t of result.tables) out(`${t.name.padEnd(width)}  ${t.rows}`);
  const total = result.tables.reduce((s, t) => s + t.rows, 0);
  out(`\ncopied ${total} rows of ${result.tables.length} tables from ${file} into ${redactedUrl(o.to)} (not copied, PostgreSQL counts them itself: ${result.derived.join(', ') || 'none'})`);
  out(`next: vmpilot-server serve --db ${redactedUrl(o.to)} …`);
}
