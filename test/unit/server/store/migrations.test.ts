import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS, SCHEMA_VERSION, migrate, outOfOrder } from '../../../../src/server/store/migrations.js';
import { PG_MIGRATIONS } from '../../../../src/server/store/pg-migrations.js';
import { openSqliteStore } from '../../../../src/server/store/sqlite.js';
import { registration, tempDir } from '../helpers.js';

const T = 1_700_000_000_000;
const columns = (db: Database.Database, table: string) => (db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name);

describe('schema migrations', () => {
  it('are the same versions on PostgreSQL, with the same descriptions where the step is the same', () => {
    // one number names one schema on either engine: a SQLite migration needs its PostgreSQL twin (pg-migrations.ts)
    expect(outOfOrder(PG_MIGRATIONS)).toBeNull();
    expect(PG_MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((m) => m.version));
    for (const v of [1, 2, 3, 4, 5, 7, 8, 9]) expect(PG_MIGRATIONS.find((m) => m.version === v)?.description).toBe(MIGRATIONS.find((m) => m.version === v)?.description);
  });

  it('are listed in order of version, each once; the relay columns are migration 7', () => {
    expect(outOfOrder(MIGRATIONS)).toBeNull();
    expect(MIGRATIONS.find((m) => m.sql.includes('relay_name'))?.version).toBe(7);
    expect(SCHEMA_VERSION).toBe(MIGRATIONS[MIGRATIONS.length - 1]!.version);
    // what a merge that put them out of order would be told
    expect(outOfOrder([{ version: 5 }, { version: 7 }, { version: 6 }])).toBe('migration 6 is listed after migration 7: keep MIGRATIONS in order of version');
    expect(outOfOrder([{ version: 5 }, { version: 7 }, { version: 7 }])).toMatch(/migration 7 is listed after migration 7/);
  });

  it('make a fresh database at the newest version, relays included', async () => {
    const tmp = tempDir();
    try {
      const file = path.join(tmp.dir, 'server.db');
      const store = openSqliteStore(file);
      const p = await store.createPilot(registration(), 'hash-via-relay', T, null, { name: 'login01', site: 'CC-IN2P3' });
      expect((await store.getPilot(p.id))?.relay).toEqual({ name: 'login01', site: 'CC-IN2P3' });
      await store.close();
      const db = new Database(file, { readonly: true });
      expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(columns(db, 'pilots')).toEqual(expect.arrayContaining(['isolation', 'relay_name', 'relay_site']));
      db.close();
    } finally {
      tmp.remove();
    }
  });

  it('bring a database written at version 5 up to the newest, in order, keeping its pilots', async () => {
    const tmp = tempDir();
    try {
      const file = path.join(tmp.dir, 'server.db');
      // what the server of version 5 made and wrote
      const old = new Database(file);
      for (const m of MIGRATIONS.filter((x) => x.version <= 5)) old.exec(m.sql);
      old.pragma('user_version = 5');
      old.exec(`INSERT INTO pilots (id, hostname, version, state, cores, memory_mb, credential_hash, registered_at, isolation) VALUES (1, 'cn0001', '0.1.0', 'running', 4, 1, 'x', ${T}, 'bwrap')`);
      expect(migrate(old)).toEqual(MIGRATIONS.filter((m) => m.version > 5).map((m) => m.version));
      expect(old.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      // once is all: a second start applies nothing
      expect(migrate(old)).toEqual([]);
      old.close();

      const store = openSqliteStore(file);
      // the pilot of before came directly; a new one records the relay it came through
      expect(await store.getPilot(1)).toMatchObject({ hostname: 'cn0001', isolation: 'bwrap', relay: null });
      const p = await store.createPilot(registration(), 'hash-new', T, null, { name: 'login01', site: 'CC-IN2P3' });
      expect((await store.getPilot(p.id))?.relay).toEqual({ name: 'login01', site: 'CC-IN2P3' });
      await store.close();
    } finally {
      tmp.remove();
    }
  });

  it("bring a database written at version 9 to the director's tables: instances, their history, its state, disabled endpoints, a pilot's instance and groups", async () => {
    const tmp = tempDir();
    try {
      const file = path.join(tmp.dir, 'server.db');
      const old = new Database(file);
      for (const m of MIGRATIONS.filter((x) => x.version <= 9)) old.exec(m.sql);
      old.pragma('user_version = 9');
      old.exec(`INSERT INTO pilots (id, hostname, version, state, cores, memory_mb, credential_hash, registered_at) VALUES (1, 'cn0001', '0.1.0', 'running', 4, 1, 'x', ${T})`);
      expect(migrate(old)).toEqual(MIGRATIONS.filter((m) => m.version > 9).map((m) => m.version));
      expect(columns(old, 'pilots')).toEqual(expect.arrayContaining(['instance_id', 'groups']));
      expect(columns(old, 'instances')).toEqual(expect.arrayContaining(['key', 'groups', 'credential_hash', 'pilot_id', 'manual', 'drain_at', 'deleted_at']));
      expect(columns(old, 'instance_history')).toEqual(['id', 'instance_id', 'state', 'reason', 'at']);
      expect(columns(old, 'director_state')).toEqual(['key', 'value']);
      expect(columns(old, 'disabled_endpoints')).toEqual(['name', 'at']);
      const indexes = (old.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'instances'").all() as { name: string }[]).map((r) => r.name);
      expect(indexes).toEqual(expect.arrayContaining(['instances_credential']));
      old.close();

      const store = openSqliteStore(file);
      // the pilot of before serves any group and is nobody's instance
      const before = await store.getPilot(1);
      expect(before).toMatchObject({ hostname: 'cn0001' });
      expect(before?.instanceId).toBeUndefined();
      expect(before?.groups).toBeUndefined();
      await store.createInstance({ key: 'k', endpoint: 'a', shape: 's', cores: 1, memoryMb: 1, forGroup: null, requirementClass: '', groups: ['atlas'], credentialHash: 'h', costPerHour: 0, manual: true }, T);
      await expect(store.createInstance({ key: 'k', endpoint: 'a', shape: 's', cores: 1, memoryMb: 1, forGroup: null, requirementClass: '', groups: null, credentialHash: 'h2', costPerHour: 0, manual: true }, T)).rejects.toMatchObject({ code: 'VMP_CONFLICT' });
      expect((await store.liveInstances()).map((i) => i.groups)).toEqual([['atlas']]);
      await store.close();
    } finally {
      tmp.remove();
    }
  });

  it('refuse a database of a newer vmpilot', () => {
    const db = new Database(':memory:');
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    expect(() => migrate(db)).toThrow(`database schema version ${SCHEMA_VERSION + 1} is newer than this server's (${SCHEMA_VERSION})`);
    db.close();
  });
});
