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
    version: 6,
    description:
      'indexes that let listings page newest first by state, group or pilot without sorting, and usage find lost attempts by run; counts by state and accounting totals by group (with the split by outcome) kept by triggers, so /metrics and the dashboard read a few rows, not every record',
    // (the triggers insert a missing row with WHERE NOT EXISTS: an outer upsert's conflict clause would override an OR IGNORE)
    sql: `
      CREATE INDEX pilots_state_id ON pilots(state, id);
      CREATE INDEX payloads_state_id ON payloads(state, id);
      CREATE INDEX payloads_group_id ON payloads(grp, id);
      CREATE INDEX payloads_pilot_id ON payloads(pilot_id, id);
      -- the usage of fair share asks of each run whether it was a lost attempt: by payload and start (version 4 indexed the payload only)
      DROP INDEX lost_attempts_payload;
      CREATE INDEX lost_attempts_payload ON lost_attempts(payload_id, started_at);

      -- pilots by state, and payloads by state and group (every state there is, cancelled and evicted included)
      CREATE TABLE pilot_counts (state TEXT PRIMARY KEY, n INTEGER NOT NULL);
      INSERT INTO pilot_counts (state, n) SELECT state, COUNT(*) FROM pilots GROUP BY state;
      CREATE TRIGGER pilot_counts_insert AFTER INSERT ON pilots BEGIN
        INSERT INTO pilot_counts (state, n) SELECT NEW.state, 0 WHERE NOT EXISTS (SELECT 1 FROM pilot_counts WHERE state = NEW.state);
        UPDATE pilot_counts SET n = n + 1 WHERE state = NEW.state;
      END;
      CREATE TRIGGER pilot_counts_update AFTER UPDATE OF state ON pilots WHEN OLD.state IS NOT NEW.state BEGIN
        UPDATE pilot_counts SET n = n - 1 WHERE state = OLD.state;
        INSERT INTO pilot_counts (state, n) SELECT NEW.state, 0 WHERE NOT EXISTS (SELECT 1 FROM pilot_counts WHERE state = NEW.state);
        UPDATE pilot_counts SET n = n + 1 WHERE state = NEW.state;
      END;
      CREATE TRIGGER pilot_counts_delete AFTER DELETE ON pilots BEGIN
        UPDATE pilot_counts SET n = n - 1 WHERE state = OLD.state;
      END;

      CREATE TABLE payload_counts (state TEXT NOT NULL, grp TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (state, grp));
      INSERT INTO payload_counts (state, grp, n) SELECT state, grp, COUNT(*) FROM payloads GROUP BY state, grp;
      CREATE TRIGGER payload_counts_insert AFTER INSERT ON payloads BEGIN
        INSERT INTO payload_counts (state, grp, n) SELECT NEW.state, NEW.grp, 0
          WHERE NOT EXISTS (SELECT 1 FROM payload_counts WHERE state = NEW.state AND grp = NEW.grp);
        UPDATE payload_counts SET n = n + 1 WHERE state = NEW.state AND grp = NEW.grp;
      END;
      CREATE TRIGGER payload_counts_update AFTER UPDATE OF state, grp ON payloads
        WHEN OLD.state IS NOT NEW.state OR OLD.grp IS NOT NEW.grp BEGIN
        UPDATE payload_counts SET n = n - 1 WHERE state = OLD.state AND grp = OLD.grp;
        INSERT INTO payload_counts (state, grp, n) SELECT NEW.state, NEW.grp, 0
          WHERE NOT EXISTS (SELECT 1 FROM payload_counts WHERE state = NEW.state AND grp = NEW.grp);
        UPDATE payload_counts SET n = n + 1 WHERE state = NEW.state AND grp = NEW.grp;
      END;
      CREATE TRIGGER payload_counts_delete AFTER DELETE ON payloads BEGIN
        UPDATE payload_counts SET n = n - 1 WHERE state = OLD.state AND grp = OLD.grp;
      END;

      -- every column of accounting summed by group: totals, counts by how payloads and attempts ended, core-seconds by outcome
      CREATE TABLE accounting_groups (
        grp                TEXT PRIMARY KEY,
        core_sec           REAL    NOT NULL,
        wall_sec           REAL    NOT NULL,
        done               INTEGER NOT NULL,
        failed             INTEGER NOT NULL,
        cancelled          INTEGER NOT NULL,
        evicted            INTEGER NOT NULL,
        done_core_sec      REAL    NOT NULL,
        failed_core_sec    REAL    NOT NULL,
        cancelled_core_sec REAL    NOT NULL,
        evicted_core_sec   REAL    NOT NULL
      );
      INSERT INTO accounting_groups (grp, core_sec, wall_sec, done, failed, cancelled, evicted,
          done_core_sec, failed_core_sec, cancelled_core_sec, evicted_core_sec)
        SELECT grp, SUM(core_sec), SUM(wall_sec), SUM(done), SUM(failed), SUM(cancelled), SUM(evicted),
          SUM(done_core_sec), SUM(failed_core_sec), SUM(cancelled_core_sec), SUM(evicted_core_sec)
          FROM accounting GROUP BY grp;
      CREATE TRIGGER accounting_groups_insert AFTER INSERT ON accounting BEGIN
        INSERT INTO accounting_groups (grp, core_sec, wall_sec, done, failed, cancelled, evicted,
            done_core_sec, failed_core_sec, cancelled_core_sec, evicted_core_sec)
          SELECT NEW.grp, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 WHERE NOT EXISTS (SELECT 1 FROM accounting_groups WHERE grp = NEW.grp);
        UPDATE accounting_groups SET core_sec = core_sec + NEW.core_sec, wall_sec = wall_sec + NEW.wall_sec,
          done = done + NEW.done, failed = failed + NEW.failed, cancelled = cancelled + NEW.cancelled, evicted = evicted + NEW.evicted,
          done_core_sec = done_core_sec + NEW.done_core_sec, failed_core_sec = failed_core_sec + NEW.failed_core_sec,
          cancelled_core_sec = cancelled_core_sec + NEW.cancelled_core_sec, evicted_core_sec = evicted_core_sec + NEW.evicted_core_sec
          WHERE grp = NEW.grp;
      END;
      CREATE TRIGGER accounting_groups_update AFTER UPDATE ON accounting BEGIN
        UPDATE accounting_groups SET core_sec = core_sec - OLD.core_sec, wall_sec = wall_sec - OLD.wall_sec,
          done = done - OLD.done, failed = failed - OLD.failed, cancelled = cancelled - OLD.cancelled, evicted = evicted - OLD.evicted,
          done_core_sec = done_core_sec - OLD.done_core_sec, failed_core_sec = failed_core_sec - OLD.failed_core_sec,
          cancelled_core_sec = cancelled_core_sec - OLD.cancelled_core_sec, evicted_core_sec = evicted_core_sec - OLD.evicted_core_sec
          WHERE grp = OLD.grp;
        INSERT INTO accounting_groups (grp, core_sec, wall_sec, done, failed, cancelled, evicted,
            done_core_sec, failed_core_sec, cancelled_core_sec, evicted_core_sec)
          SELECT NEW.grp, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 WHERE NOT EXISTS (SELECT 1 FROM accounting_groups WHERE grp = NEW.grp);
        UPDATE accounting_groups SET core_sec = core_sec + NEW.core_sec, wall_sec = wall_sec + NEW.wall_sec,
          done = done + NEW.done, failed = failed + NEW.failed, cancelled = cancelled + NEW.cancelled, evicted = evicted + NEW.evicted,
          done_core_sec = done_core_sec + NEW.done_core_sec, failed_core_sec = failed_core_sec + NEW.failed_core_sec,
          cancelled_core_sec = cancelled_core_sec + NEW.cancelled_core_sec, evicted_core_sec = evicted_core_sec + NEW.evicted_core_sec
          WHERE grp = NEW.grp;
      END;
      CREATE TRIGGER accounting_groups_delete AFTER DELETE ON accounting BEGIN
        UPDATE accounting_groups SET core_sec = core_sec - OLD.core_sec, wall_sec = wall_sec - OLD.wall_sec,
          done = done - OLD.done, failed = failed - OLD.failed, cancelled = cancelled - OLD.cancelled, evicted = evicted - OLD.evicted,
          done_core_sec = done_core_sec - OLD.done_core_sec, failed_core_sec = failed_core_sec - OLD.failed_core_sec,
          cancelled_core_sec = cancelled_core_sec - OLD.cancelled_core_sec, evicted_core_sec = evicted_core_sec - OLD.evicted_core_sec
          WHERE grp = OLD.grp;
      END;
    `,
  },
  {
    version: 7,
    description: 'the relay (name and site) a pilot registered through (null: directly)',
    sql: `
      ALTER TABLE pilots ADD COLUMN relay_name TEXT;
      ALTER TABLE pilots ADD COLUMN relay_site TEXT;
    `,
  },
  {
    version: 8,
    description: 'payload requirements and pilot capabilities (JSON, NULL when none)',
    sql: `
      ALTER TABLE payloads ADD COLUMN requirements TEXT;
      ALTER TABLE pilots ADD COLUMN capabilities TEXT;
      -- a claim reads the queue head of each group twice, payloads with requirements and without (sqlite.ts: queuedCandidates)
      CREATE INDEX payloads_group_queue_plain ON payloads(state, grp, priority DESC, id) WHERE requirements IS NULL;
      CREATE INDEX payloads_group_queue_required ON payloads(state, grp, priority DESC, id) WHERE requirements IS NOT NULL;
    `,
  },
  {
    version: 9,
    description: 'reservation designations: which pilot reserves cores for which waiting payload (soft state, shared by server processes)',
    sql: `
      CREATE TABLE designations (
        payload_id INTEGER PRIMARY KEY,
        pilot_id INTEGER NOT NULL,
        seen_at INTEGER NOT NULL
      );
    `,
  },
  {
    version: 10,
    description:
      "the director's records: instances with their state history, its own state as JSON (failure memory, offering stats, the last cycle), disabled endpoints; a pilot's instance and the groups it may serve",
    sql: `
      CREATE TABLE instances (
        id                INTEGER PRIMARY KEY AUTOINCREMENT,
        key               TEXT    NOT NULL UNIQUE,
        endpoint          TEXT    NOT NULL,
        shape             TEXT    NOT NULL,
        cores             INTEGER NOT NULL,
        memory_mb         INTEGER NOT NULL,
        for_group         TEXT,
        requirement_class TEXT    NOT NULL,
        -- JSON array of the groups its pilot may serve; NULL: any group
        groups            TEXT,
        state             TEXT    NOT NULL,
        reason            TEXT    NOT NULL,
        driver_id         TEXT,
        credential_hash   TEXT    NOT NULL,
        -- the pilot that registered with its credential (no foreign key: the director names what it saw)
        pilot_id          INTEGER,
        cost_per_hour     REAL    NOT NULL,
        manual            INTEGER NOT NULL,
        requested_at      INTEGER NOT NULL,
        started_at        INTEGER,
        booted_at         INTEGER,
        registered_at     INTEGER,
        drain_at          INTEGER,
        ended_at          INTEGER,
        deleted_at        INTEGER
      );
      CREATE INDEX instances_credential ON instances(credential_hash);
      CREATE INDEX instances_state_id ON instances(state, id);
      CREATE INDEX instances_endpoint_id ON instances(endpoint, id);
      CREATE INDEX instances_pilot ON instances(pilot_id);
      CREATE TABLE instance_history (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        instance_id INTEGER NOT NULL REFERENCES instances(id),
        state       TEXT    NOT NULL,
        reason      TEXT    NOT NULL,
        at          INTEGER NOT NULL
      );
      CREATE INDEX instance_history_instance ON instance_history(instance_id, id);
      -- failure memory, offering stats, the last cycle's record: one JSON value each
      CREATE TABLE director_state (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );
      CREATE TABLE disabled_endpoints (
        name TEXT PRIMARY KEY,
        at   INTEGER NOT NULL
      );
      ALTER TABLE pilots ADD COLUMN instance_id INTEGER;
      -- JSON array of the groups it may serve; NULL: any group
      ALTER TABLE pilots ADD COLUMN groups TEXT;
    `,
  },
  {
    version: 11,
    description: "what a payload's last run used, as its pilot reported at its end: CPU seconds and peak memory (NULL: not reported)",
    sql: `
      ALTER TABLE payloads ADD COLUMN cpu_sec REAL;
      ALTER TABLE payloads ADD COLUMN peak_rss_mb REAL;
    `,
  },
  {
    version: 12,
    description:
      'no index on pilots(state, last_contact_at): every heartbeat, report and match moves last_contact_at, so the index was written on each; the stall sweep filters on COALESCE(last_contact_at, registered_at), which the index could not serve, and finds live pilots by state through pilots(state, id).',
    sql: `DROP INDEX pilots_state_contact;`,
  },
];

/**
 * What is wrong with the order of `list`, or null: versions must rise from
 * one migration to the next (they may skip a number another branch holds).
 * Pure.
 */
export function outOfOrder(list: readonly Pick<Migration, 'version'>[]): string | null {
  for (const [i, m] of list.entries()) {
    const before = list[i - 1];
    if (before && m.version <= before.version) return `migration ${m.version} is listed after migration ${before.version}: keep MIGRATIONS in order of version`;
  }
  return null;
}

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
  // applied in the order listed, each once: a list out of order would apply one twice or never
  const disorder = outOfOrder(MIGRATIONS);
  if (disorder) throw new RangeError(disorder);
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
