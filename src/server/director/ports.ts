/**
 * The director's ports: what its loop reads and writes (DirectorStore), the
 * machines it starts and removes (Driver), and the records they exchange.
 * Everything else in director/ is pure or an adapter of one of these; the
 * loop gets a Clock and a Logger from shared/ as the rest of the server does.
 *
 * The SQLite store implements DirectorStore (store/sqlite-instances.ts and
 * sqlite-director-state.ts, as part of its InstanceStore); `memory-store.ts`
 * does too, for the loop's tests, and one contract suite runs on both
 * (test/unit/server/director/store-contract.ts).
 */
import type { PilotState } from '../../protocol/index.js';
import type { CycleRecord } from './loop.js';
import type { QueuedWork } from './demand.js';
import type { FailureMemory } from './failure-memory.js';
import type { InstanceState } from './instance-states.js';
import type { OfferingStats } from './offerings.js';

/** A machine the director started (or an operator did, through it). */
export interface InstanceRecord {
  id: number;
  /**
   * The idempotency key: unique, recorded before the driver is called,
   * given to the driver as the resource's name or tag. A create repeated with
   * the same key never makes a second machine.
   */
  key: string;
  endpoint: string;
  shape: string;
  cores: number;
  memoryMb: number;
  /** The group whose demand it was started for (null: started by hand). */
  forGroup: string | null;
  requirementClass: string;
  /**
   * The groups its pilot may serve (its endpoint's groups when it was
   * recorded; null: any group). Registration gives them to the pilot, and
   * matching hands that pilot only payloads of these groups.
   */
  groups: readonly string[] | null;
  state: InstanceState;
  /** Why it is in its state (the last change's reason). */
  reason: string;
  /** The driver's id of the resource (null until the create is answered). */
  driverId: string | null;
  /** sha256 of its one-time registration credential. */
  credentialHash: string;
  /** The pilot that registered with that credential. */
  pilotId: number | null;
  /** Price per hour when it was started. */
  costPerHour: number;
  manual: boolean;
  requestedAt: number;
  /** When the driver accepted the create. */
  startedAt: number | null;
  /** When the driver first said it runs. */
  bootedAt: number | null;
  registeredAt: number | null;
  /** When the director asked its pilot to drain (max lifetime). */
  drainAt: number | null;
  /** When it reached halted or failed. */
  endedAt: number | null;
  deletedAt: number | null;
}

/** A new instance, before it has an id. */
export type NewInstance = Pick<InstanceRecord, 'key' | 'endpoint' | 'shape' | 'cores' | 'memoryMb' | 'forGroup' | 'requirementClass' | 'groups' | 'credentialHash' | 'costPerHour' | 'manual'>;

/** A change to an instance: its new state and why, and the facts learnt with it. */
export interface InstanceChange {
  state: InstanceState;
  reason: string;
  driverId?: string | null;
  pilotId?: number | null;
  credentialHash?: string;
  drainAt?: number | null;
}

/** A pilot, as far as supply and discarding need it. */
export interface PilotSummary {
  id: number;
  state: PilotState;
  cores: number;
  coresUsed: number;
  memoryMb: number;
  memoryUsedMb: number;
  /** When the pilot must stop (ms), or null. */
  deadline: number | null;
  registeredAt: number;
  lastContactAt: number | null;
  /** When it became stalled (null: it is not). */
  stalledAt: number | null;
  /** When it halted (null: it has not). */
  haltedAt: number | null;
  shutdownCode: number | null;
  /** Payloads it started. */
  payloadsRun: number;
}

/** What the loop reads and writes. Every method that changes several rows does so in one transaction. */
export interface DirectorStore {
  /**
   * The first `limit` queued payloads in the queue's order, counted: one row
   * per group, priority and need (cores, memory, wall time, requirements)
   * with its `count`, placed where its oldest payload is (its id and
   * submission), so most urgent first per group; and each group's decayed usage.
   */
  queuedWork(limit: number): Promise<{ queued: QueuedWork[]; usage: ReadonlyMap<string, number> }>;
  /** Pilots that are not halted, and halted ones that a live instance names. */
  pilots(): Promise<PilotSummary[]>;
  /** Instances that are not deleted. */
  liveInstances(): Promise<InstanceRecord[]>;
  /** One instance, deleted ones too, or null. */
  getInstance(id: number): Promise<InstanceRecord | null>;
  /** Record a new instance in state `requested`; its key is unique (VMP_CONFLICT when it is not). */
  createInstance(draft: NewInstance, at: number): Promise<InstanceRecord>;
  /** Change an instance; VMP_CONFLICT when the state change is not allowed (instance-states.ts). */
  updateInstance(id: number, change: InstanceChange, at: number): Promise<InstanceRecord>;
  /** Ask a pilot to drain (an instruction), for `reason`. */
  drainPilot(pilotId: number, reason: string, at: number): Promise<void>;
  /** Endpoints an operator disabled (`endpoint disable NAME`). */
  disabledEndpoints(): Promise<ReadonlySet<string>>;
  failureMemory(): Promise<FailureMemory>;
  saveFailureMemory(memory: FailureMemory): Promise<void>;
  offeringStats(): Promise<ReadonlyMap<string, OfferingStats>>;
  saveOfferingStats(stats: ReadonlyMap<string, OfferingStats>): Promise<void>;
  /** Keep the last cycle's record (`director status`). */
  saveCycle(record: CycleRecord): Promise<void>;
  /**
   * One director at a time on one database: in one transaction, make
   * `holder` the director until `until` when nobody holds the lease, its
   * holder's time ran out (`until` <= `now`), or `holder` holds it already;
   * otherwise change nothing. Returns who holds it afterwards.
   */
  holdLease(holder: string, until: number, now: number): Promise<DirectorLease>;
}

/** Which server's director may act, and until when (ms) unless it renews. */
export interface DirectorLease {
  holder: string;
  until: number;
}

/** What a machine is to run: its pilot's bootstrap. */
export interface Bootstrap {
  /** The server's URL as the machine reaches it. */
  serverUrl: string;
  /** The instance's one-time registration credential (the secret; only its hash is stored). */
  credential: string;
  idleTimeoutSec: number;
  graceSec: number;
  /** The pilot halts after this long (the instance's maximum life). */
  lifetimeSec: number;
}

/** What `Driver.create` is asked for. */
export interface CreateRequest {
  /** The idempotency key: the same key never makes a second resource. */
  key: string;
  /**
   * The endpoint's shape it is an instance of: what a cloud driver maps to
   * its instance types, flavour or template. Absent (an older caller): the
   * first shape with these cores and memory.
   */
  shape?: string;
  cores: number;
  memoryMb: number;
  /** The machine's wall time / lifetime. */
  lifetimeSec: number;
  bootstrap: Bootstrap;
}

/** A resource as the driver sees it. */
export interface DriverResource {
  /** The driver's id (a pid directory, a job id, a VM directory). */
  id: string;
  /** The idempotency key it was made with. */
  key: string;
  /** pending: accepted, not running yet; running; ended: gone by itself, not yet removed. */
  state: 'pending' | 'running' | 'ended';
  /** When the driver made it (ms), when it knows. */
  createdAt: number | null;
  /** More facts for people (a batch state, an exit status). */
  detail: string;
}

/**
 * A place machines come from. Contract (test/unit/server/director/driver-contract.ts,
 * run by every driver):
 * - `create` with a key already used returns that resource, never a second one;
 * - `list` returns only resources of this driver's tag (this director, this endpoint);
 * - `delete` of a resource that is gone, or was never made, succeeds;
 * - after `delete` resolves, neither `list` nor `describe` shows it and nothing of it runs.
 * Errors are VmpilotErrors whose message carries the driver's own words.
 */
export interface Driver {
  readonly kind: string;
  create(request: CreateRequest): Promise<DriverResource>;
  list(): Promise<DriverResource[]>;
  describe(id: string): Promise<DriverResource | null>;
  delete(id: string): Promise<void>;
  /** Release what the driver holds (a shared ssh connection); machines keep running. */
  close(): Promise<void>;
}
