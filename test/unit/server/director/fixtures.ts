/** Builders for the director's tests: endpoints through the real config validation, demand, supply. */
import type { EndpointState } from '../../../../src/server/director/decide.js';
import type { DemandItem } from '../../../../src/server/director/demand.js';
import { type EndpointConfig, endpointsFrom } from '../../../../src/server/director/endpoint-config.js';
import type { InstanceRecord, PilotSummary } from '../../../../src/server/director/ports.js';
import type { Supply, SupplySlot } from '../../../../src/server/director/supply.js';

export const T0 = 1_700_000_000_000;

/** One endpoint from raw YAML-like settings (process driver unless told). */
export function endpoint(name: string, raw: Record<string, unknown> = {}): EndpointConfig {
  const base = { driver: 'process', process: { workDir: `/tmp/${name}` }, shapes: { s: { cores: 4, memoryMb: 8000 } } };
  return endpointsFrom({ [name]: { ...base, ...raw } }, 'test.yaml')[0]!;
}

/** An endpoint as the decision sees it, with nothing live unless told. */
export function state(config: EndpointConfig, o: Partial<Omit<EndpointState, 'config'>> = {}): EndpointState {
  return { config, enabled: true, live: { instances: 0, cores: 0 }, liveByGroup: new Map(), ...o };
}

/** A demand item. */
export function need(group: string, count: number, cores = 1, o: Partial<DemandItem> = {}): DemandItem {
  return { group, requirementClass: '', cores, wholeNode: false, memoryMb: 0, wallSec: null, count, ...o };
}

/** A supply of these slots (counted as supplyFrom counts). */
export function supplyOf(slots: Partial<SupplySlot>[] = []): Supply {
  const full = slots.map((s, i): SupplySlot => ({ id: `s${i}`, endpoint: null, freeCores: 4, totalCores: 4, freeMemoryMb: 8000, remainingSec: null, coming: false, ...s }));
  const total = { freeCores: 0, comingCores: 0, machines: 0 };
  const byEndpoint = new Map<string, typeof total>();
  for (const s of full) {
    const e = byEndpoint.get(s.endpoint ?? '') ?? { freeCores: 0, comingCores: 0, machines: 0 };
    for (const c of [total, e]) {
      if (s.coming) c.comingCores += s.freeCores;
      else c.freeCores += s.freeCores;
      c.machines++;
    }
    byEndpoint.set(s.endpoint ?? '', e);
  }
  return { slots: full, total, byEndpoint };
}

/** An instance record. */
export function instance(id: number, o: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    id,
    key: `vmp-test-a-k${id}`,
    endpoint: 'a',
    shape: 's',
    cores: 4,
    memoryMb: 8000,
    forGroup: 'g',
    requirementClass: '',
    groups: null,
    state: 'requested',
    reason: 'decided',
    driverId: null,
    credentialHash: 'h'.repeat(64),
    pilotId: null,
    costPerHour: 0,
    manual: false,
    requestedAt: T0,
    startedAt: null,
    bootedAt: null,
    registeredAt: null,
    drainAt: null,
    endedAt: null,
    deletedAt: null,
    ...o,
  };
}

/** A pilot summary. */
export function pilot(id: number, o: Partial<PilotSummary> = {}): PilotSummary {
  return {
    id,
    state: 'running',
    cores: 4,
    coresUsed: 0,
    memoryMb: 8000,
    memoryUsedMb: 0,
    deadline: null,
    registeredAt: T0,
    lastContactAt: T0,
    stalledAt: null,
    haltedAt: null,
    shutdownCode: null,
    payloadsRun: 0,
    ...o,
  };
}
