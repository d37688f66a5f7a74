/**
 * The server's store: the only place that holds records, and the only
 * interface the rest of the server uses to read or change them, in parts by
 * role (settings, pilots, payloads, instructions and reports, accounting,
 * reservations); `Store` is all of them. What a change does is decided by
 * pure rules (apply-report.ts, endings.ts, pilot-rules.ts, over rows, into
 * the changes of changes.ts); an implementation reads the rows, applies the
 * changes and holds all the SQL (sqlite.ts and its parts, with versioned
 * migrations); a PostgreSQL store implements the same reading and applying.
 * Methods are async so that a networked database fits; every method that
 * changes several rows does so in one transaction, so a crash leaves either
 * all of it or none.
 */
import type {
  Assignment,
  HeartbeatRequest,
  Instruction,
  InstructionRequest,
  InstructionView,
  LifecycleState,
  PayloadHistoryEntry,
  PayloadState,
  PayloadView,
  PilotState,
  PilotView,
  RegisterRequest,
  RelayRef,
  Report,
  SubmitRequest,
} from '../../protocol/index.js';
import type { Clock } from '../../shared/clock.js';
import type { InstanceState } from '../director/instance-states.js';
import type { CycleRecord } from '../director/loop.js';
import type { DirectorStore, InstanceRecord } from '../director/ports.js';
import type { Candidate, Offer, Picker } from '../queue/offer.js';
import type { Designator, Waiting } from '../queue/reservations.js';
import type { RunInterval } from '../queue/usage.js';
import type { PayloadSort, PilotSort } from './list-order.js';

// what the matcher sees belongs to queue/; named here too for the store's callers
export type { Candidate, Offer, Picker } from '../queue/offer.js';

/** Which payloads to list, newest first: at most `limit` (none: all), with ids below `before` (paging). */
export interface PayloadFilter {
  state?: PayloadState;
  group?: string;
  pilotId?: number;
  /** Names containing this text (case-sensitive). */
  nameContains?: string;
  limit?: number;
  /** Ids below this one (newest first) or, with `oldestFirst`, above it. */
  before?: number;
  /** Skip this many matching rows first (instead of `before`). */
  offset?: number;
  /** Oldest first instead of newest first. */
  oldestFirst?: boolean;
  /** Sorted by this instead (list-order.ts); paged by `offset` only. */
  sort?: PayloadSort;
}

/** Which pilots to list, newest first: in any of `states` (none: all), at most `limit`, ids below `before`. */
export interface PilotFilter {
  states?: readonly PilotState[];
  limit?: number;
  before?: number;
  /** Skip this many matching rows first (instead of `before`). */
  offset?: number;
  /** Sorted by this instead (list-order.ts); paged by `offset` only. */
  sort?: PilotSort;
}

/** What the overview adds to the counts: live cores and the age of each group's queue. */
export interface OverviewFigures {
  /** Cores of pilots that can run payloads (booting, running, draining). */
  coresTotal: number;
  /** Cores allocated to assigned and running payloads. */
  coresUsed: number;
  /** Each group with queued payloads: how many, and when the oldest of them was submitted. */
  queues: { group: string; queued: number; oldestSubmittedAt: number }[];
}

/** One instruction as an administrator sees it: when it was sent and whether the pilot acknowledged it. */
export interface InstructionRecord {
  instruction: Instruction;
  createdAt: number;
  doneAt: number | null;
  ok: boolean | null;
  message: string | null;
}

/** Who holds a credential hash, and until when it is valid (null: no expiry). */
export interface CredentialOwner {
  pilotId: number;
  expiresAt: number | null;
}

/** One accounting row: what one group used on one pilot on one day (UTC). */
export interface AccountingRow {
  /** YYYY-MM-DD, UTC, the day the payload (or the attempt) ended. */
  day: string;
  group: string;
  pilotId: number;
  coreSec: number;
  wallSec: number;
  done: number;
  failed: number;
  cancelled: number;
  /** Attempts the infrastructure ended (evicted or lost). */
  evicted: number;
  doneCoreSec: number;
  failedCoreSec: number;
  cancelledCoreSec: number;
  evictedCoreSec: number;
}

/** What one group used in all, on every pilot and day: the columns of `AccountingRow`, summed. */
export type AccountingTotal = Omit<AccountingRow, 'day' | 'pilotId'>;

/** Which accounting rows to read: days from and to (inclusive, YYYY-MM-DD). */
export interface AccountingFilter {
  from?: string;
  to?: string;
  group?: string;
  pilotId?: number;
}

/** What the stall sweep did. */
export interface SweepResult {
  /** Pilots that became stalled. */
  stalled: number[];
  /** Payloads put back in the queue. */
  requeued: number[];
  /** Payloads that failed because they had no attempt left (or were submitted with requeue: false). */
  failed: number[];
  /** Payloads an administrator had asked to kill: cancelled. */
  cancelled: number[];
}

/** Counts for /metrics and the dashboard. */
export interface StoreCounts {
  pilotsByState: Record<string, number>;
  payloadsByState: Record<string, number>;
  queuedByGroup: Record<string, number>;
  /** Core-seconds accounted so far by how the attempts ended: done, failed, cancelled, evicted. */
  coreSecByOutcome: Record<string, number>;
}

/** The outcome of applying one report. */
export type ReportOutcome =
  | { kind: 'applied' }
  | { kind: 'duplicate' }
  /** Its seq is beyond the pilot's applied seq + 1: nothing was applied, and no later report of the request may be. */
  | { kind: 'out-of-order'; appliedSeq: number; message: string }
  | {
      kind: 'refused';
      code: string;
      message: string;
      /** An instruction created in the same transaction, e.g. kill a payload the pilot should not run. */
      instruction?: Instruction;
    };

/** One entry of a pilot's state history. */
export interface PilotStateChange {
  state: PilotState;
  reason: string;
  at: number;
}

/** Policies the store applies when it changes records. */
export interface StorePolicy {
  /** How many times a payload may be handed out before a loss fails it (default 3). */
  maxAttempts: number;
  /** The half-life of recent usage the director's demand weighs shares with (default DEFAULT_HALF_LIFE_SEC; the same as the matcher's). */
  usageHalfLifeSec?: number;
  /** The time the director's demand is read at (default the system clock). */
  clock?: Clock;
}

/** Opening, closing and the server's own settings. */
export interface SettingsStore {
  /** Create tables or migrate them to the newest version. */
  migrate(): Promise<void>;
  close(): Promise<void>;
  /** A setting (e.g. hashed tokens generated on first start), or null. */
  getSetting(key: string): Promise<string | null>;
  setSetting(key: string, value: string): Promise<void>;
}

/** Pilots: registration, credentials, contact, state, and the stall sweep. */
export interface PilotStore {
  /** A new pilot, `booting`; `relay`: the relay it registered through (null: directly). */
  createPilot(request: RegisterRequest, credentialHash: string, at: number, credentialExpiresAt?: number | null, relay?: RelayRef | null): Promise<PilotView>;
  getPilot(id: number): Promise<PilotView | null>;
  /**
   * The pilot a credential hash belongs to (its current credential, or the
   * one it replaced, until that one's own expiry), or null.
   */
  credentialOwner(credentialHash: string): Promise<CredentialOwner | null>;
  /** When the pilot's current credential expires (null: never). */
  credentialExpiresAt(pilotId: number): Promise<number | null>;
  /** Replace the pilot's credential; the old one stays valid until its own expiry. */
  renewCredential(pilotId: number, credentialHash: string, expiresAt: number): Promise<void>;
  /** Pilots matching `filter`, newest first. */
  listPilots(filter: PilotFilter): Promise<PilotView[]>;
  /** How many pilots match `filter` (its paging ignored). */
  countPilots(filter: PilotFilter): Promise<number>;
  /**
   * Record a heartbeat: last contact, usage, and the state it implies. A
   * payload the pilot says it runs that is not (or no longer) its own gets a
   * kill-payload instruction for that pilot.
   */
  recordHeartbeat(pilotId: number, beat: HeartbeatRequest, at: number): Promise<void>;
  /** Record that the pilot asked for work now (also counts as contact). */
  touchPilot(pilotId: number, at: number): Promise<void>;
  /** The pilot's last heartbeat as it sent it, or null. */
  lastHeartbeat(pilotId: number): Promise<HeartbeatRequest | null>;
  /** Pilot states for state changes the server itself makes (e.g. stalled). */
  setPilotState(pilotId: number, state: PilotState, reason: string, at: number): Promise<void>;
  /** A pilot's state changes, oldest first. */
  pilotHistory(pilotId: number): Promise<PilotStateChange[]>;
  /**
   * Mark stalled every live pilot with no contact since `cutoff`; its
   * payloads become lost and go back to the queue (or fail, attempts used up).
   */
  sweepStalled(cutoff: number, at: number): Promise<SweepResult>;
}

/** What `resubmitPayload` did: the copy's id, or the state that kept the original from being copied. */
export type Resubmitted = { kind: 'resubmitted'; id: number } | { kind: 'not-ended'; state: PayloadState };

/** Payloads: submit, read, the claim that hands one out, and an administrator's kill. */
export interface PayloadStore {
  submitPayload(request: SubmitRequest, at: number): Promise<PayloadView>;
  /** Queue every payload of `list` in one transaction (all or none); their ids in order. */
  submitPayloads(list: SubmitRequest[], at: number): Promise<number[]>;
  getPayload(id: number): Promise<PayloadView | null>;
  /**
   * Queue a copy of ended payload `id` (done, failed or cancelled): the same
   * request as a new payload, whose history starts "resubmitted from payload
   * ID". The original is left as it is. Null when there is no such payload.
   */
  resubmitPayload(id: number, at: number): Promise<Resubmitted | null>;
  /** A payload's state changes, oldest first (empty when there is no such payload). */
  payloadHistory(id: number): Promise<PayloadHistoryEntry[]>;
  /** Payloads matching `filter`, newest first, without their output tails (never read for a listing). */
  listPayloads(filter: PayloadFilter): Promise<PayloadView[]>;
  /** How many payloads match `filter` (its paging ignored). */
  countPayloads(filter: PayloadFilter): Promise<number>;
  /**
   * In one transaction: hand this pilot one queued payload chosen by `pick`,
   * moving it queued → assigned. Returns it, or null when nothing fits.
   */
  claimPayload(pilotId: number, offer: Offer, pick: Picker, at: number, halfLifeSec?: number): Promise<Assignment | null>;
  /** Queued payloads as the matcher sees them (the first ones of each group). */
  waitingCandidates(): Promise<Candidate[]>;
  /**
   * A payload already assigned to this pilot that it has not said it started
   * and does not list in `holding`: the reply that carried it may have been
   * lost, so it is handed out again rather than a new one.
   */
  redeliverable(pilotId: number, holding: number[]): Promise<Assignment | null>;
  /** How many payloads are queued. */
  queuedCount(): Promise<number>;
  /**
   * Cancel or kill a payload for an administrator: a queued one is cancelled
   * at once (returns null); an assigned or running one gets a kill-payload
   * instruction to its pilot (returned) and ends cancelled however its
   * attempt ends, unless it exits 0. VMP_CONFLICT when it has ended.
   */
  killPayload(payloadId: number, reason: string, at: number): Promise<Instruction | null>;
}

/** Instructions to pilots, and the reports pilots send: applied once each, by (pilot, seq), in one transaction each. */
export interface InstructionStore {
  addInstruction(pilotId: number, request: InstructionRequest, at: number): Promise<Instruction>;
  /**
   * A drain for the pilot, or the drain it already has (not yet acknowledged,
   * or acknowledged and still draining: `existing`, nothing added). One
   * transaction. VMP_NOT_FOUND when there is no such pilot.
   */
  drainOnce(pilotId: number, request: Extract<InstructionRequest, { type: 'drain' }>, at: number): Promise<{ instruction: Instruction; existing: boolean }>;
  /** Every instruction sent to the pilot, oldest first, with its acknowledgement. */
  instructionsOf(pilotId: number): Promise<InstructionView[]>;
  /** Instructions sent to this pilot that it has not reported done. */
  pendingInstructions(pilotId: number): Promise<Instruction[]>;
  /** Apply one report (apply-report.ts decides what it does). */
  applyReport(pilotId: number, report: Report, at: number): Promise<ReportOutcome>;
  /** The highest seq applied for this pilot (0 when none). */
  appliedSeq(pilotId: number): Promise<number>;
}

/** Usage, accounting and the figures of /metrics, the overview and a pilot's detail. */
export interface AccountingStore {
  /** Stretches of running since `since` (and those still running), for usage and charts. */
  runIntervals(since: number): Promise<RunInterval[]>;
  accounting(filter: AccountingFilter): Promise<AccountingRow[]>;
  /** Accounting totals per group since the start, one row per group (cheap: kept as records change). */
  accountingByGroup(): Promise<AccountingTotal[]>;
  counts(): Promise<StoreCounts>;
  /** Live cores and queue ages for the overview. */
  overviewFigures(): Promise<OverviewFigures>;
  /** A pilot's instructions, newest first (at most `limit`), and its last heartbeat as it sent it. */
  pilotDetail(pilotId: number, limit: number): Promise<{ instructions: InstructionRecord[]; lastHeartbeat: { at: number; beat: HeartbeatRequest } | null }>;
}

/** Which pilot reserves cores for which waiting large payload (queue/reservations.ts): soft state, shared by server processes. */
export interface ReservationStore {
  /**
   * In one transaction: read every designation, let `decide` (the pure
   * `decideDesignation` of queue/reservations.ts) choose, apply its changes;
   * what the pilot is told.
   */
  designate(decide: Designator): Promise<Waiting | null>;
}

/** Which instances to list, newest first: in any of `states` (none: all, deleted included), of `endpoint`, at most `limit`, ids below `before`. */
export interface InstanceFilter {
  states?: readonly InstanceState[];
  endpoint?: string;
  limit?: number;
  /** Ids below this one. */
  before?: number;
  /** Skip this many matching rows first (instead of `before`). */
  offset?: number;
}

/** One entry of an instance's history. */
export interface InstanceHistoryEntry {
  state: InstanceState;
  reason: string;
  at: number;
}

/** What a pilot registering with an instance's one-time credential became. */
export interface InstanceRegistration {
  pilot: PilotView;
  instance: InstanceRecord;
}

/**
 * The director's records (docs/director.md): instances with their history,
 * failure memory, offering stats, the last cycle's record and the endpoints
 * an operator disabled; and what the API reads of them. The loop's part is
 * DirectorStore (director/ports.ts).
 */
export interface InstanceStore extends DirectorStore {
  /** Instances matching `filter`, newest first. */
  listInstances(filter: InstanceFilter): Promise<InstanceRecord[]>;
  /** How many instances match `filter`'s states and endpoint (its paging ignored): a listing's total. */
  countInstances(filter: Pick<InstanceFilter, 'states' | 'endpoint'>): Promise<number>;
  getInstance(id: number): Promise<InstanceRecord | null>;
  /** An instance's state changes, oldest first (empty when there is no such instance). */
  instanceHistory(id: number): Promise<InstanceHistoryEntry[]>;
  /** The last cycle's record (`director status`), or null before the first. */
  lastCycle(): Promise<CycleRecord | null>;
  /** Disable (true) or enable an endpoint by name; kept across restarts. */
  setEndpointDisabled(name: string, disabled: boolean, at: number): Promise<void>;
  /**
   * The instance whose one-time credential hashes to `hash`, while that
   * credential may still be used: its instance is requested, starting or
   * booting, and no pilot registered with it. Null otherwise.
   */
  instanceByCredential(hash: string): Promise<InstanceRecord | null>;
  /**
   * In one transaction: create the pilot (as createPilot does; it may serve
   * only the instance's `groups`) and tie it to the instance whose
   * credential hashes to `instanceCredentialHash` (its `pilotId`), which
   * spends the credential. Null, with nothing changed, when the credential is
   * nobody's, was spent, or its instance is no longer coming.
   */
  registerInstancePilot(
    instanceCredentialHash: string,
    request: RegisterRequest,
    pilotCredentialHash: string,
    at: number,
    credentialExpiresAt?: number | null,
    relay?: RelayRef | null,
  ): Promise<InstanceRegistration | null>;
}

/**
 * The whole store, its parts by role. A part that only reads or changes its
 * own records takes just that part (e.g. `Pick<Store, ...>` or `PilotStore`).
 */
export type Store = SettingsStore & PilotStore & PayloadStore & InstructionStore & AccountingStore & ReservationStore & InstanceStore;

/** The pilot state a lifecycle state reported by the agent implies. */
export function pilotStateFor(lifecycle: LifecycleState): PilotState {
  switch (lifecycle) {
    case 'booting':
      return 'booting';
    case 'serving':
      return 'running';
    case 'draining':
      return 'draining';
    case 'halting':
      return 'halting';
    case 'halted':
      return 'halted';
  }
}
