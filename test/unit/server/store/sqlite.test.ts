import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SCHEMA_VERSION } from '../../../../src/server/store/migrations.js';
import { openSqliteStore, type SqliteStore } from '../../../../src/server/store/sqlite.js';
import { systemClock } from '../../../../src/shared/clock.js';
import { isVmpilotError } from '../../../../src/shared/errors.js';
import { tempDir } from '../helpers.js';
import { storeContract } from './store-contract.js';
import { sqliteWorld } from './worlds.js';

// the shared contract (store-contract.ts) on a temp file; each open() is another connection to it
storeContract('SQLite', () => sqliteWorld());
// and as the server opens it: heartbeats committed in groups (heartbeat-group.test.ts has the batches' own cases)
storeContract('SQLite, heartbeats group-committed', () => sqliteWorld({ groupCommit: systemClock }));

describe('SqliteStore', () => {
  let tmp: ReturnType<typeof tempDir>;
  let file: string;
  let store: SqliteStore;

  beforeEach(() => {
    tmp = tempDir();
    file = path.join(tmp.dir, 'server.db');
    store = openSqliteStore(file);
  });
  afterEach(async () => {
    await store.close();
    tmp.remove();
  });

  it('creates the schema at the newest version, in WAL mode', () => {
    const db = new Database(file, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });
});

describe('openSqliteStore', () => {
  it('says which file it cannot open', () => {
    try {
      openSqliteStore('/nonexistent-dir/for/sure/server.db');
      expect.unreachable();
    } catch (err) {
      expect(isVmpilotError(err, 'VMP_DATABASE')).toBe(true);
      expect((err as Error).message).toContain('/nonexistent-dir/for/sure/server.db');
    }
  });
});
