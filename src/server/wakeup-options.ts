/**
 * `serve --db-wakeups listen|poll` and `--db-poll-ms`: how the match
 * requests waiting on one server hear of work queued through another
 * server of the same PostgreSQL database (api/pg-notifier.ts). Refused with
 * a SQLite --db, where one server process wakes its own requests. Pure.
 */
import { VmpilotError } from '../shared/errors.js';
import { DEFAULT_POLL_MS, WAKEUP_MODES, type WakeupMode } from './api/pg-notifier.js';
import { isPostgresUrl } from './store/pg.js';

/** The flags as given (undefined: not given). */
export interface WakeupFlags {
  /** A SQLite file or a postgres:// URL (--db). */
  db: string;
  /** --db-wakeups. */
  dbWakeups?: string | undefined;
  /** --db-poll-ms. */
  dbPollMs?: number | undefined;
}

/** How wake-ups cross servers on PostgreSQL (null: SQLite, one process); throws VMP_USAGE naming the flag. */
export function wakeupsOf(o: WakeupFlags): { mode: WakeupMode; pollMs: number } | null {
  if (!isPostgresUrl(o.db)) {
    const given = o.dbWakeups !== undefined ? '--db-wakeups' : o.dbPollMs !== undefined ? '--db-poll-ms' : null;
    if (given) throw new VmpilotError('VMP_USAGE', `${given} applies to a PostgreSQL --db only (postgres://…); with a SQLite file one server wakes its own match requests: leave ${given} out`);
    return null;
  }
  const mode = o.dbWakeups ?? 'listen';
  if (!(WAKEUP_MODES as readonly string[]).includes(mode)) {
    throw new VmpilotError('VMP_USAGE', `--db-wakeups "${mode}" is not a mode: listen (LISTEN/NOTIFY, polling as a fallback) or poll (polling only, e.g. behind PgBouncer's transaction pooling)`);
  }
  const pollMs = o.dbPollMs ?? DEFAULT_POLL_MS[mode as WakeupMode];
  if (!Number.isInteger(pollMs) || pollMs < 100 || pollMs > 600_000) {
    throw new VmpilotError('VMP_USAGE', `--db-poll-ms must be whole milliseconds from 100 to 600000, not ${pollMs}`);
  }
  return { mode: mode as WakeupMode, pollMs };
}
