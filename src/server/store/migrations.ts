/**
 * Versioned schema migrations of the SQLite store. The database's
 * `PRAGMA user_version` holds the number of migrations applied; each one runs
 * in its own transaction, so a crash leaves the schema at one version or the
 * next, never in between. Append new migrations; never edit an applied one.
 */
import type Database from 'better-sqlite3';

/** One step of the schema: its version and the SQL that brings it there. */
export interface Migration {
  version: number;
  description: string;
  sql: string;
}

/** Every migration, in order of version. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'settings, pilots with state history, payloads with state history, instructions, reports',
    sql: `
      CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );
      CREATE TABLE pilots (
        id                INTEGER PRIMARY KEY AUTOINCREMENT,
        hostname          TEXT    NOT NULL,
        version           TEXT    NOT NULL,
        state             TEXT    NOT NULL,
        cores             INTEGER NOT NULL,
        cores_used        INTEGER,
        memory_mb         INTEGER NOT NULL,
        disk_mb           INTEGER,
        external_id       TEXT,
        deadline          INTEGER,
        labels            TEXT    NOT NULL DEFAULT '{}',
        credential_hash   TEXT    NOT NULL UNIQUE,
        registered_at     INTEGER NOT NULL,
        last_contact_at   INTEGER,
        last_heartbeat_at INTEGER,
        last_heartbeat    TEXT,
        applied_seq       INTEGER NOT NULL DEFAULT 0,
        shutdown_code     INTEGER,
        shutdown_message  TEXT
      );
      CREATE TABLE pilot_states (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        pilot_id INTEGER NOT NULL REFERENCES pilots(id),
        state    TEXT    NOT NULL,
        reason   TEXT    NOT NULL,
        at       INTEGER NOT NULL
      );
      CREATE INDEX pilot_states_pilot ON pilot_states(pilot_id, id);
      CREATE TABLE payloads (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        name            TEXT    NOT NULL,
        grp             TEXT    NOT NULL,
        command         TEXT    NOT NULL,
        env             TEXT    NOT NULL,
        cores_min       INTEGER NOT NULL,
        cores_max       INTEGER NOT NULL,
        whole_node      INTEGER NOT NULL,
        memory_mb       INTEGER,
        wall_sec        INTEGER,
        priority        INTEGER NOT NULL,
        state           TEXT    NOT NULL,
        pilot_id        INTEGER REFERENCES pilots(id),
        allocated_cores INTEGER,
        exit_code       INTEGER,
        signal          TEXT,
        output_tail     TEXT,
        message         TEXT,
        submitted_at    INTEGER NOT NULL,
        assigned_at     INTEGER,
        started_at      INTEGER,
        ended_at        INTEGER,
        attempts        INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX payloads_queue ON payloads(state, priority DESC, id);
      CREATE INDEX payloads_pilot ON payloads(pilot_id, state);
      CREATE TABLE payload_states (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        payload_id INTEGER NOT NULL REFERENCES payloads(id),
        state      TEXT    NOT NULL,
        pilot_id   INTEGER,
        reason     TEXT    NOT NULL,
        at         INTEGER NOT NULL
      );
      CREATE INDEX payload_states_payload ON payload_states(payload_id, id);
      CREATE TABLE instructions (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        pilot_id   INTEGER NOT NULL REFERENCES pilots(id),
        body       TEXT    NOT NULL,
        created_at INTEGER NOT NULL,
        done_at    INTEGER,
        ok         INTEGER,
        message    TEXT
      );
      CREATE INDEX instructions_pending ON instructions(pilot_id, done_at);
      CREATE TABLE reports (
        pilot_id    INTEGER NOT NULL REFERENCES pilots(id),
        seq         INTEGER NOT NULL,
        type        TEXT    NOT NULL,
        at          INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        outcome     TEXT    NOT NULL,
        body        TEXT    NOT NULL,
        PRIMARY KEY (pilot_id, seq)
      );
    `,
  },
  {
    version: 2,
    description: 'credential expiry and renewal, payload end index for fair-share usage, accounting by day, group and pilot, lost attempts',
    sql: `
      ALTER TABLE pilots ADD COLUMN credential_expires_at INTEGER;
      ALTER TABLE pilots ADD COLUMN prev_credential_hash TEXT;
      ALTER TABLE pilots ADD COLUMN prev_credential_expires_at INTEGER;
      CREATE INDEX pilots_prev_credential ON pilots(prev_credential_hash);
      CREATE INDEX pilots_state_contact ON pilots(state, last_contact_at);
      CREATE INDEX payloads_ended ON payloads(ended_at);
      CREATE TABLE accounting (
        day       TEXT    NOT NULL,
        grp       TEXT    NOT NULL,
        pilot_id  INTEGER NOT NULL REFERENCES pilots(id),
        core_sec  REAL    NOT NULL DEFAULT 0,
        wall_sec  REAL    NOT NULL DEFAULT 0,
        done      INTEGER NOT NULL DEFAULT 0,
        failed    INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (day, grp, pilot_id)
      );
      CREATE TABLE lost_attempts (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        payload_id INTEGER NOT NULL REFERENCES payloads(id),
        pilot_id   INTEGER NOT NULL REFERENCES pilots(id),
        cores      INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        ended_at   INTEGER NOT NULL
      );
      CREATE INDEX lost_attempts_ended ON lost_attempts(ended_at);
    `,
  },
  {
    version: 3,
    description: 'indexes that keep a claim independent of the queue length and of the payload history',
    sql: `
      CREATE INDEX payloads_group_queue ON payloads(state, grp, priority DESC, id);
      CREATE INDEX payloads_open_runs ON payloads(started_at) WHERE ended_at IS NULL AND started_at IS NOT NULL;
    `,
  },
  {
    version: 4,
    description:
      'cancelled payloads, evicted attempts (the infrastructure stopped them) and requeue opt-out; accounting split by how attempts ended',
    sql: `
      ALTER TABLE payloads ADD COLUMN requeue INTEGER NOT NULL DEFAULT 1;
      ALTER TABLE payloads ADD COLUMN cancel_reason TEXT;
      ALTER TABLE lost_attempts ADD COLUMN cause TEXT NOT NULL DEFAULT 'lost';
      CREATE INDEX lost_attempts_payload ON lost_attempts(payload_id);
      ALTER TABLE accounting ADD COLUMN cancelled INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE accounting ADD COLUMN evicted INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE accounting ADD COLUMN done_core_sec REAL NOT NULL DEFAULT 0;
      ALTER TABLE accounting ADD COLUMN failed_core_sec REAL NOT NULL DEFAULT 0;
      ALTER TABLE accounting ADD COLUMN cancelled_core_sec REAL NOT NULL DEFAULT 0;
      ALTER TABLE accounting ADD COLUMN evicted_core_sec REAL NOT NULL DEFAULT 0;
      -- until now a payload cancelled before it ran was recorded failed, with this message (it never ran: no accounting)
      UPDATE payloads SET state = 'cancelled' WHERE state = 'failed' AND started_at IS NULL AND message LIKE 'cancelled: %';
      UPDATE payload_states SET state = 'cancelled' WHERE state = 'failed' AND reason LIKE 'cancelled: %';
      -- split what was accounted so far from the records it was counted from: lost runs (lost_attempts),
      -- payloads done, and payloads failed other than by losing their last attempt
      UPDATE accounting SET
        evicted = (SELECT COUNT(*) FROM lost_attempts l JOIN payloads p ON p.id = l.payload_id
          WHERE l.pilot_id = accounting.pilot_id AND p.grp = accounting.grp
            AND strftime('%Y-%m-%d', l.ended_at / 1000, 'unixepoch') = accounting.day),
        evicted_core_sec = COALESCE((SELECT SUM(l.cores * MAX(0, l.ended_at - l.started_at) / 1000.0)
          FROM lost_attempts l JOIN payloads p ON p.id = l.payload_id
          WHERE l.pilot_id = accounting.pilot_id AND p.grp = accounting.grp
            AND strftime('%Y-%m-%d', l.ended_at / 1000, 'unixepoch') = accounting.day), 0),
        done_core_sec = COALESCE((SELECT SUM(COALESCE(p.allocated_cores, 0) * MAX(0, p.ended_at - p.started_at) / 1000.0)
          FROM payloads p WHERE p.pilot_id = accounting.pilot_id AND p.state = 'done' AND p.grp = accounting.grp
            AND p.started_at IS NOT NULL AND strftime('%Y-%m-%d', p.ended_at / 1000, 'unixepoch') = accounting.day), 0),
        failed_core_sec = COALESCE((SELECT SUM(COALESCE(p.allocated_cores, 0) * MAX(0, p.ended_at - p.started_at) / 1000.0)
          FROM payloads p WHERE p.pilot_id = accounting.pilot_id AND p.state = 'failed' AND p.grp = accounting.grp
            AND p.started_at IS NOT NULL AND strftime('%Y-%m-%d', p.ended_at / 1000, 'unixepoch') = accounting.day
            AND NOT EXISTS (SELECT 1 FROM lost_attempts l WHERE l.payload_id = p.id AND l.started_at = p.started_at)), 0);
    `,
  },
  {
    version: 5,
    description: 'how a pilot isolates its payloads, as it said at registration (null: it did not say)',
    sql: `
      ALTER TABLE pilots ADD COLUMN isolation TEXT;
    `,
  },
  {
    // caps' migration: numbered 8 on merge (6 and 7 belong to branches merged beside it)
    version: 8,
    description: 'payload requirements and pilot capabilities (JSON, NULL when none)',
    sql: `
      ALTER TABLE payloads ADD COLUMN requirements TEXT;
      ALTER TABLE pilots ADD COLUMN capabilities TEXT;
    `,
  },
];

/** The schema version this build writes and reads. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

/**
 * Bring `db` to SCHEMA_VERSION, one transaction per migration. Refuses a
 * database written by a newer vmpilot (its version is higher than ours).
 * Returns the versions applied.
 */
export function migrate(db: Database.Database): number[] {
  const current = Number(db.pragma('user_version', { simple: true }));
  if (current > SCHEMA_VERSION) {
    throw new RangeError(`database schema version ${current} is newer than this server's (${SCHEMA_VERSION})`);
  }
  const applied: number[] = [];
  for (const m of MIGRATIONS) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    })();
    applied.push(m.version);
  }
  return applied;
}
