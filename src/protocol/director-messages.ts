/**
 * What the director's admin routes exchange (docs/protocol.md "Director"):
 * the endpoints with their live counts and backoff, instances with their
 * history and cost so far, starting and stopping instances by hand, and the
 * last cycle's record. Protocol version 1, added in v1; every field is
 * plain JSON.
 */
import type { PilotState } from './common-messages.js';

/** The states of an instance (docs/director.md: requested → … → deleted, or failed). */
export const INSTANCE_STATE_NAMES = ['requested', 'starting', 'booting', 'registered', 'halted', 'failed', 'deleted'] as const;
export type InstanceStateName = (typeof INSTANCE_STATE_NAMES)[number];

/** A machine the director started, or an operator through it (GET /v1/instances, /v1/instances/:id). */
export interface InstanceView {
  id: number;
  /** Its idempotency key: the resource's name or tag at its driver. */
  key: string;
  endpoint: string;
  shape: string;
  cores: number;
  memoryMb: number;
  /** The group whose queued work it was started for; null: started by hand. */
  forGroup: string | null;
  /** The only groups its pilot is given work of; null: any group. */
  groups: readonly string[] | null;
  state: InstanceStateName;
  /** Why it is in its state. */
  reason: string;
  /** The driver's id of its resource (a job id, a directory, a VM id); null until the create is answered. */
  driverId: string | null;
  /** The pilot that registered with its one-time credential. */
  pilotId: number | null;
  costPerHour: number;
  /** costPerHour × hours from startedAt (else requestedAt) to deletedAt, endedAt or now. */
  costSoFar: number;
  manual: boolean;
  requestedAt: number;
  startedAt: number | null;
  bootedAt: number | null;
  registeredAt: number | null;
  /** When its pilot was asked to drain (maximum lifetime, or `instances stop`). */
  drainAt: number | null;
  endedAt: number | null;
  deletedAt: number | null;
}

/** One state change of an instance, oldest first. */
export interface InstanceHistoryView {
  state: InstanceStateName;
  reason: string;
  at: number;
}

/** GET /v1/instances/:id: the instance, its history and its pilot. */
export interface InstanceDetailReply extends InstanceView {
  history: InstanceHistoryView[];
  /** Its pilot and that pilot's state; null: none registered. */
  pilot: { id: number; state: PilotState } | null;
}

/** One shape an endpoint offers. */
export interface EndpointShapeView {
  name: string;
  cores: number;
  memoryMb: number;
  lifetimeSec: number;
  costPerHour: number;
  /** Where its price comes from instead of costPerHour: `file:PATH#KEY` or `driver`; null: costPerHour. */
  price: string | null;
  maxCostPerHour: number | null;
}

/** Live instances (not deleted) and their cores. */
export interface InstanceCount {
  instances: number;
  cores: number;
}

/** An offering held back by the failure memory. */
export interface BackoffView {
  shape: string;
  /** No start before this (ms). */
  until: number;
  /** Failures in a row. */
  failures: number;
  /** driver-error, boot-timeout, registration-timeout or fizzle. */
  kind: string;
  reason: string;
}

/** One configured endpoint (GET /v1/endpoints). */
export interface EndpointView {
  name: string;
  /** process, slurm, pbs, sge, qemu, ec2, openstack, opennebula. */
  driver: string;
  /** Started from: enabled in the config and not disabled by an operator. */
  enabled: boolean;
  /** `enabled:` in the config file. */
  enabledInConfig: boolean;
  /** `endpoint disable NAME` holds (kept across restarts). */
  disabledByOperator: boolean;
  /** The server as its machines reach it; null: the server's own URL. */
  serverUrl: string | null;
  shapes: EndpointShapeView[];
  limits: { instances: number; cores: number; startsPerCycle: number };
  /** The groups it serves with their quotas there ('*': every group not named); null: every group, no quota. */
  groups: { group: string; maxInstances: number | null; maxCores: number | null }[] | null;
  /** Its live instances, in all and by state. */
  live: InstanceCount & { byState: Partial<Record<InstanceStateName, InstanceCount>> };
  /** Its offerings backed off now. */
  backoff: BackoffView[];
}

/** POST /v1/endpoints/:name/disable and /enable. */
export interface EndpointSwitchReply {
  name: string;
  enabled: boolean;
  disabledByOperator: boolean;
}

/** POST /v1/instances: start instances by hand, whatever the demand. */
export interface StartInstancesRequest {
  endpoint: string;
  /** Default: the endpoint's first shape. */
  shape?: string;
  /** Default 1. */
  count?: number;
}

/** POST /v1/instances reply: the instances recorded (`requested`; the director creates them at once). */
export interface StartInstancesReply {
  instances: InstanceView[];
}

/** POST /v1/instances/stop: drain, then discard. */
export interface StopInstancesRequest {
  ids: number[];
}

/** What `instances stop` did to one instance. */
export interface StopResult {
  id: number;
  /**
   * draining: its pilot was asked to drain, it is discarded once the pilot halts (at the latest the drain grace later);
   * already-draining: it was; stopping: not registered yet, marked failed and discarded next cycle;
   * already-ended: halted, failed or deleted; unknown: no such instance.
   */
  outcome: 'draining' | 'already-draining' | 'stopping' | 'already-ended' | 'unknown';
  /** Its state after this (null: unknown). */
  state: InstanceStateName | null;
  message: string;
}

/** POST /v1/instances/stop reply, one result per id asked for, in order. */
export interface StopInstancesReply {
  results: StopResult[];
}

/** Payloads and their cores. */
export interface WorkCount {
  payloads: number;
  cores: number;
}

/** Supply as the director counted it. */
export interface SupplyCountView {
  /** Free cores of serving pilots. */
  freeCores: number;
  /** Cores of machines coming (instances requested to booting, pilots booting). */
  comingCores: number;
  machines: number;
}

/** One machine a cycle decided to start. */
export interface PlannedStartView {
  endpoint: string;
  shape: string;
  cores: number;
  memoryMb: number;
  forGroup: string;
  requirementClass: string;
  payloads: number;
  usefulCores: number;
  costPerHour: number;
  /** costPerHour over its cores (added with the offer's record; absent in cycles recorded before). */
  pricePerCoreHour?: number;
  /** Where costPerHour came from: configured (shapes.NAME.costPerHour), price-file, or driver (ec2: spot price history or onDemandPrices). */
  priceFrom?: 'configured' | 'price-file' | 'driver';
  /** That source in words: the setting, the price file and key, the driver's offer (type and zone). */
  priceDetail?: string;
  /** The other offerings that could have served the work it was started for, and why each lost; at most 8. */
  lost?: LostCandidateView[];
  lifetimeSec: number;
}

/** An offering that lost to a start. */
export interface LostCandidateView {
  endpoint: string;
  /** null: the whole endpoint was held back (a limit, the group's quota, no shape fits). */
  shape: string | null;
  /** dearer (allowed, but it cost more per useful core-hour), or an endpoint's reason: backoff, price, limit, quota, no-fitting-shape, disabled. */
  reason: string;
  detail: string;
  /** Its price per core-hour when known. */
  pricePerCoreHour: number | null;
}

/** Why an endpoint did not start more, with the payloads it held back. */
export interface ReasonCountView {
  /** disabled, no-demand, no-fitting-shape, backoff, price, limit, quota, cheaper-elsewhere (docs/director.md). */
  reason: string;
  detail: string;
  payloads: number;
}

/** One endpoint in one decision. */
export interface EndpointDecisionView {
  endpoint: string;
  enabled: boolean;
  /** Unmet demand (after supply) in the groups it serves. */
  demand: WorkCount;
  /** Supply counted on its machines. */
  supply: SupplyCountView;
  live: InstanceCount;
  started: { shape: string; instances: number; cores: number; payloads: number }[];
  /** Empty when it started all it usefully could; most payloads first. */
  notMore: ReasonCountView[];
}

/** One thing a cycle did. */
export interface CycleActionView {
  kind: 'start' | 'create-again' | 'mark' | 'drain' | 'delete' | 'remove-orphan';
  endpoint: string;
  instanceId: number | null;
  detail: string;
  /** The driver's or the store's words when it failed. */
  error: string | null;
}

/** What one cycle saw, decided and did. */
export interface CycleView {
  at: number;
  decision: {
    at: number;
    /** All queued work seen. */
    demand: WorkCount;
    /** Of it, what fits the supply. */
    onSupply: WorkCount;
    /** Of it, what the starts take. */
    onStarts: WorkCount;
    supply: SupplyCountView;
    starts: PlannedStartView[];
    endpoints: EndpointDecisionView[];
  };
  actions: CycleActionView[];
  /** Live instances of endpoints no longer configured (left alone). */
  unmanaged: number[];
}

/**
 * GET /v1/accounting/instances: what the director's instances cost, one row
 * per group they were started for and endpoint, since the start: every
 * instance counts from when its driver accepted it (else when it was
 * requested) to when it was deleted, ended, or now; instances started by
 * hand (`instances start`, `endpoint test`) under the group "(by hand)".
 */
export interface InstanceCostEntry {
  /** The group whose queued work it was started for; "(by hand)" for instances started by hand. */
  group: string;
  endpoint: string;
  instances: number;
  instanceHours: number;
  /** Cores × hours of those instances. */
  coreHours: number;
  /** costPerHour × hours, summed (the instances' costSoFar). */
  cost: number;
}

/** GET /v1/director. */
export interface DirectorStatusReply {
  /** This server's director id (in every resource's tag); null: no endpoints, no director. */
  directorId: string | null;
  /** Its loop is cycling. */
  running: boolean;
  /** Seconds between cycles (null: no director). */
  everySec: number | null;
  /** The endpoints it directs, in the order configured. */
  endpoints: string[];
  /** The last cycle's record, or null before the first. */
  lastCycle: CycleView | null;
  /**
   * Another server's director holds the lease (one director at a time on
   * one database): this one stands by, and `lastCycle` is that one's. Absent
   * or null: this one directs (added with the lease).
   */
  standby?: { holder: string; until: number } | null;
}
