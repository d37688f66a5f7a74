/**
 * The worlds the Store contract runs in (store-contract.ts `StoreWorld`): an
 * empty SQLite file in a temporary directory, or a new database on a
 * running PostgreSQL (test/postgres.ts); each `open()` is another store on
 * the same database, as another server process would be.
 */
import path from 'node:path';
import { openPgStore } from '../../../../src/server/store/pg.js';
import { openSqliteStore, type SqliteOptions } from '../../../../src/server/store/sqlite.js';
import type { Store } from '../../../../src/server/store/store.js';
import type { PgCluster } from '../../../postgres.js';
import { tempDir } from '../helpers.js';
import type { StoreWorld } from './store-contract.js';

/** A new SQLite file; `close()` closes every store opened on it and removes it. `options`: how each store writes (group commit). */
export async function sqliteWorld(options: SqliteOptions = {}): Promise<StoreWorld> {
  const tmp = tempDir();
  const file = path.join(tmp.dir, 'server.db');
  const opened: Store[] = [];
  return {
    async open(policy) {
      const s = openSqliteStore(file, policy, options);
      opened.push(s);
      return s;
    },
    async close() {
      for (const s of opened) await s.close();
      tmp.remove();
    },
  };
}

/** A new database on `cluster` (the cluster is read when called: started in the file's beforeAll). */
export function pgWorld(cluster: () => PgCluster): () => Promise<StoreWorld> {
  return async () => {
    const url = await cluster().createDatabase();
    const opened: Store[] = [];
    return {
      async open(policy) {
        const s = await openPgStore(url, policy, { poolSize: 4 });
        opened.push(s);
        return s;
      },
      async close() {
        for (const s of opened) await s.close();
      },
    };
  };
}
