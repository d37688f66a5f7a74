import { MemoryDirectorStore } from '../../../../src/server/director/memory-store.js';
import { directorStoreContract } from './store-contract.js';

directorStoreContract('in memory', async () => {
  const store = new MemoryDirectorStore();
  let id = 0;
  return {
    store,
    // as a submit queues them: ids in order, each payload's need as given
    enqueue: async (list, at) =>
      list.map((p) => {
        store.queued.push({ id: ++id, group: p.group, priority: p.priority ?? 0, cores: p.cores ?? { min: 1, max: 1, wholeNode: false }, memoryMb: p.memoryMb ?? null, wallSec: p.wallSec ?? null, submittedAt: at, requirements: p.requirements ?? null });
        return id;
      }),
    close: async () => {},
  };
});
