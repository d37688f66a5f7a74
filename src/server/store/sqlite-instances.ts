/**
 * The director's records in SQLite (InstanceStore). PLACEHOLDER on the
 * branch base only: the store helper replaces every method before this is
 * merged; nothing here may land on main as it is.
 */
import { VmpilotError } from '../../shared/errors.js';
import type { Sql } from './sql.js';
import type { InstanceStore } from './store.js';

export function sqliteInstances(_sql: Sql): InstanceStore {
  const no = async (): Promise<never> => {
    throw new VmpilotError('VMP_INTERNAL', 'the SQLite InstanceStore is not built yet');
  };
  return {
    queuedWork: no,
    pilots: no,
    liveInstances: no,
    createInstance: no,
    updateInstance: no,
    drainPilot: no,
    disabledEndpoints: no,
    failureMemory: no,
    saveFailureMemory: no,
    offeringStats: no,
    saveOfferingStats: no,
    saveCycle: no,
    listInstances: no,
    getInstance: no,
    instanceHistory: no,
    lastCycle: no,
    setEndpointDisabled: no,
    instanceByCredential: no,
    registerInstancePilot: no,
  };
}
