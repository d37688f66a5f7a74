/**
 * The leader lock on PostgreSQL (leader.ts LeaderLock): a session-level
 * advisory lock, `pg_try_advisory_lock(LEADER_LOCK)`, on one connection of
 * its own, a pg Client outside the store's pool (and apart from any other
 * dedicated connection), named `vmpilot-server leader` in
 * pg_stat_activity. PostgreSQL frees the lock when that session ends: the
 * holder closed it, died (its socket closed with it), was terminated
 * (`pg_terminate_backend`), or went silent and PostgreSQL's TCP keepalives
 * on the session gave up on it (set on the session: idle 5 s, then 3 probes
 * 2 s apart, and a 10 s TCP user timeout: about 11 s). The client side keeps
 * TCP keepalive on as well; the leader's own checks (leader.ts) notice a
 * silent connection sooner than PostgreSQL does, so it stops acting before
 * another replica can take the lock.
 */
import pg from 'pg';
import { describeError } from '../../shared/errors.js';
import type { LeaderLock } from '../leader.js';

/**
 * The advisory lock key of the replicas' leader ("vmp" in ASCII, then 3).
 * Every key is in one space per database, so it must differ from the
 * migrations' (1, pg-migrations.ts) and the designations' (2,
 * pg-reservations.ts): a session holding one of theirs would hold up their
 * transactions for as long as it leads.
 */
export const LEADER_LOCK = 0x766d7003;

/** How the lock's session is named in pg_stat_activity. */
export const LEADER_APPLICATION_NAME = 'vmpilot-server leader';

/** PostgreSQL's keepalives on the lock's session, so a silent holder's lock is freed in about 11 s, not hours. */
const SESSION_KEEPALIVES = 'SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3';
/** The TCP user timeout (PostgreSQL 12 and later): unacknowledged data for this long ends the session. */
const SESSION_USER_TIMEOUT = 'SET tcp_user_timeout = 10000';

/** The leader lock of the database at `url`, not yet connected (the first `tryTake` connects). */
export function pgLeaderLock(url: string): LeaderLock {
  let client: pg.Client | null = null;
  let held = false;
  const lost: ((why: string) => void)[] = [];

  /** `c` is gone: forget it, and say so when it held the lock. */
  const forget = (c: pg.Client, why: string) => {
    if (client !== c) return;
    client = null;
    const was = held;
    held = false;
    if (was) for (const l of lost) l(why);
  };

  const drop = (c: pg.Client | null) => {
    if (c === null) return;
    if (client === c) {
      client = null;
      held = false;
    }
    // not awaited: on a dead network the goodbye may never be answered; PostgreSQL frees the lock when the session ends
    void c.end().catch(() => undefined);
  };

  const connect = async (): Promise<pg.Client> => {
    const c = new pg.Client({ connectionString: url, application_name: LEADER_APPLICATION_NAME, keepAlive: true, keepAliveInitialDelayMillis: 5000 });
    c.on('error', (err) => forget(c, describeError(err)));
    c.on('end', () => forget(c, 'the connection closed'));
    client = c;
    try {
      await c.connect();
      await c.query(SESSION_KEEPALIVES);
      await c.query(SESSION_USER_TIMEOUT).catch(() => undefined);
    } catch (err) {
      drop(c);
      throw err;
    }
    return c;
  };

  return {
    async tryTake() {
      if (held && client !== null) return true;
      const c = client ?? (await connect());
      const r = await c.query<{ took: boolean }>('SELECT pg_try_advisory_lock($1) AS took', [LEADER_LOCK]);
      if (client !== c) return false; // lost meanwhile
      held = r.rows[0]?.took === true;
      return held;
    },
    async stillHeld() {
      const c = client;
      if (!held || c === null) return false;
      await c.query('SELECT 1');
      return held && client === c;
    },
    onLost(l) {
      lost.push(l);
    },
    release() {
      drop(client);
    },
    async close() {
      const c = client;
      client = null;
      held = false;
      if (c !== null) await c.end().catch(() => undefined);
    },
  };
}
