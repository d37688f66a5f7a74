/**
 * The DirectorStore contract (store-contract.ts) and the InstanceStore
 * contract (instance-store-contract.ts) on the PostgreSQL store, on a real
 * PostgreSQL 15 (test/postgres.ts: one cluster for this file, a
 * new database per test).
 */
import { afterAll, beforeAll } from 'vitest';
import { openPgStore } from '../../../../src/server/store/pg.js';
import { startPostgres, type PgCluster } from '../../../postgres.js';
import { pgWorld } from '../store/worlds.js';
import { instanceStoreContract } from './instance-store-contract.js';
import { directorStoreContract } from './store-contract.js';

let cluster: PgCluster;
beforeAll(async () => {
  cluster = await startPostgres();
}, 180_000);
afterAll(async () => {
  await cluster?.stop();
});

directorStoreContract('PostgreSQL', async () => {
  const store = await openPgStore(await cluster.createDatabase(), { maxAttempts: 3 }, { poolSize: 2 });
  return { store, enqueue: (list, at) => store.submitPayloads(list.map((p) => ({ command: ['x'], ...p })), at), close: () => store.close() };
});

instanceStoreContract('PostgreSQL', pgWorld(() => cluster));
