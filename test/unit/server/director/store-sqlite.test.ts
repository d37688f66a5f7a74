/**
 * The SQLite InstanceStore: the DirectorStore contract on a temp file, and
 * the InstanceStore contract (instance-store-contract.ts): what survives
 * reopening it, the queue and the pilots as the director reads them from
 * the server's own records, the registration that spends an instance's
 * credential, and the director loop's life of an instance on it.
 */
import path from 'node:path';
import { openSqliteStore } from '../../../../src/server/store/sqlite.js';
import { tempDir } from '../helpers.js';
import { sqliteWorld } from '../store/worlds.js';
import { instanceStoreContract } from './instance-store-contract.js';
import { directorStoreContract } from './store-contract.js';

directorStoreContract('SQLite', async () => {
  const tmp = tempDir();
  const store = openSqliteStore(path.join(tmp.dir, 'server.db'));
  return {
    store,
    enqueue: (list, at) => store.submitPayloads(list.map((p) => ({ command: ['x'], ...p })), at),
    close: async () => {
      await store.close();
      tmp.remove();
    },
  };
});

instanceStoreContract('SQLite', sqliteWorld);
