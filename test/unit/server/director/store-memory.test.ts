import { MemoryDirectorStore } from '../../../../src/server/director/memory-store.js';
import { directorStoreContract } from './store-contract.js';

directorStoreContract('in memory', async () => ({ store: new MemoryDirectorStore(), close: async () => {} }));
