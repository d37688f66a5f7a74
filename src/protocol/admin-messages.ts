/**
 * The administrator's calls, version 1: submit and kill payloads, list
 * payloads and pilots with their histories, send instructions, accounting,
 * usage and the overview; each with the admin token. The request schemas are
 * in admin-schemas.ts; docs/protocol.md shows an example of each message.
 *
 * Times are milliseconds since the Unix epoch unless a name says `Sec`.
 */
import type { RelayRef } from './relay.js';
import type { Capabilities, Requirements } from './requirements.js';
import type { CoreRequest, Instruction, PayloadState, PilotState } from './common-messages.js';
import type { HeartbeatRequest, IsolationMode } from './pilot-messages.js';

/** POST /v1/payloads, with the admin token. */
export interface SubmitRequest {
  command: string[];
  cores?: CoreRequest;
  memoryMb?: number | null;
  wallSec?: number | null;
  group?: string;
  name?: string;
  priority?: number;
  env?: Record<string, string>;
  /**
   * false: an attempt the infrastructure ended (evicted, or lost with its
   * pilot) fails the payload instead of queueing it again: for work that
   * must not run twice. Default true.
   */
  requeue?: boolean;
  /** What it needs of the node beyond cores, memory and wall time (docs/requirements.md). */
  requirements?: Requirements;
}

export interface SubmitReply {
  id: number;
}

/** POST /v1/payloads/batch, with the admin token: all are queued, or none. */
export interface SubmitBatchRequest {
  payloads: SubmitRequest[];
}

export interface SubmitBatchReply {
  /** The new payloads' ids, in the order given. */
  ids: number[];
}

/** POST /v1/payloads/:payloadId/kill, with the admin token (body optional). */
export interface KillRequest {
  reason?: string;
}

/**
 * A queued payload is cancelled at once (`cancelled`, no instruction); an
 * assigned or running one gets a `kill-payload` instruction to its pilot and
 * ends `cancelled` when its pilot reports it stopped (`done` if it exited 0
 * first).
 */
export interface KillReply {
  payloadId: number;
  state: PayloadState;
  instruction: Instruction | null;
}

/**
 * POST /v1/payloads/:id/resubmit, with the admin token and no body: an
 * ended payload (done, failed, cancelled) queued again as a new payload with
 * the same request; the original stays as it ended.
 */
export interface ResubmitReply {
  /** The new payload. */
  id: number;
  /** The payload it copies. */
  resubmitOf: number;
}

/**
 * GET /v1/accounting?from=&to=&group=&pilot=: one row per day, group and
 * pilot. `coreSec` is every core-second used; the `*CoreSec` fields split it
 * by how each attempt ended: done, failed (the payload's own doing),
 * cancelled (an administrator's kill), evicted (the infrastructure stopped
 * it, or its pilot was lost). `done`, `failed` and `cancelled` count
 * payloads that ended so; `evicted` counts attempts the infrastructure
 * ended (a payload evicted on its last attempt counts in both `evicted` and
 * `failed`).
 */
export interface AccountingEntry {
  /** YYYY-MM-DD (UTC), the day the payload or attempt ended. */
  day: string;
  group: string;
  pilotId: number;
  coreSec: number;
  wallSec: number;
  done: number;
  failed: number;
  cancelled?: number;
  evicted?: number;
  doneCoreSec?: number;
  failedCoreSec?: number;
  cancelledCoreSec?: number;
  evictedCoreSec?: number;
}

/** GET /v1/usage?minutes=&stepSec=: average running cores per group in each step; the last value is the cores running now. */
export interface UsageTimeline {
  /** Start of the first step (ms epoch). */
  from: number;
  stepSec: number;
  /** Group → cores per step, oldest first. */
  groups: Record<string, number[]>;
}

/** GET /v1/overview: the totals that say whether the site is healthy (added in v1). */
export interface OverviewReply {
  /** When it was read (ms epoch). */
  at: number;
  /** Payloads by state now (states with none left out). */
  payloads: Record<string, number>;
  /** Attempts the infrastructure ended (evicted or lost) since the start. */
  evictedAttempts: number;
  /** Pilots by state now (stalled included). */
  pilots: Record<string, number>;
  /** Cores of pilots that can run payloads (booting, running, draining), allocated now, and free. */
  cores: { total: number; used: number; free: number };
  /** Each group that has a share or queued payloads or ran in the last hour. */
  groups: OverviewGroup[];
  /** Cloud instances by endpoint and state, when the server runs a director; else empty. */
  instances: { endpoint: string; state: string; count: number }[];
}

/** One group in the overview. */
export interface OverviewGroup {
  group: string;
  queued: number;
  /** When its oldest queued payload was submitted, or null when none is queued. */
  oldestQueuedAt: number | null;
  /** Its fair-share target as a fraction of all (0..1). */
  target: number;
  /** Its fraction (0..1) of the core-seconds every group ran in the last hour. */
  lastHour: number;
  /** Core-seconds it ran in the last hour. */
  lastHourCoreSec: number;
}

/** GET /v1/pilots/:id/detail: its instructions with acknowledgements, newest first, and its last heartbeat (added in v1). */
export interface PilotDetailReply {
  instructions: {
    instruction: Instruction;
    createdAt: number;
    /** When the pilot acknowledged it, or null while it has not. */
    doneAt: number | null;
    ok: boolean | null;
    message: string | null;
  }[];
  /** The last heartbeat as the pilot sent it (load, memory, disk, payloads, Machine/Job Features), or null before its first. */
  lastHeartbeat: { at: number; beat: HeartbeatRequest } | null;
}

/** A payload as an administrator sees it (GET /v1/payloads, /v1/payloads/:id). */
export interface PayloadView {
  id: number;
  name: string;
  group: string;
  command: string[];
  cores: CoreRequest;
  memoryMb: number | null;
  wallSec: number | null;
  priority: number;
  state: PayloadState;
  pilotId: number | null;
  allocatedCores: number | null;
  exitCode: number | null;
  signal: string | null;
  submittedAt: number;
  assignedAt: number | null;
  startedAt: number | null;
  endedAt: number | null;
  attempts: number;
  message: string | null;
  outputTail?: string | null;
  /** false when submitted with `requeue: false` (absent from older servers: true). */
  requeue?: boolean;
  /** Attempts the infrastructure ended (evicted or lost), and the core-seconds they used. */
  evictions?: number;
  evictedCoreSec?: number;
  /**
   * Core-seconds of the run that ended it, charged as its final state (done,
   * failed, cancelled); 0 while it has not ended, when it never ran, or when
   * its last attempt was interrupted (those are in `evictedCoreSec`).
   */
  coreSec?: number;
  /** CPU seconds and peak memory (MB) of its last run, as its pilot measured them at the end; null while it has not ended, or when not reported. */
  cpuSec?: number | null;
  peakRssMb?: number | null;
  /** cpuSec / (wall seconds × allocated cores) of that run, e.g. 0.93; null when not known. */
  cpuEfficiency?: number | null;
  /** What it needs of the node beyond cores, memory and wall time; absent or null: nothing. */
  requirements?: Requirements | null;
  /**
   * For a queued payload in `GET /v1/payloads/:id`: why no live pilot can
   * run it ("no live pilot has a GPU"); null when one could. Absent in lists.
   */
  waiting?: string | null;
}

/** One step of a payload's history (GET /v1/payloads/:id/history), oldest first. */
export interface PayloadHistoryEntry {
  state: PayloadState;
  /** The pilot that held it then, or null. */
  pilotId: number | null;
  reason: string;
  at: number;
}

/** One state change of a pilot (GET /v1/pilots/:id/history), oldest first. */
export interface PilotHistoryEntry {
  state: PilotState;
  reason: string;
  at: number;
}

/** A pilot as an administrator sees it (GET /v1/pilots, /v1/pilots/:id). */
export interface PilotView {
  id: number;
  hostname: string;
  version: string;
  state: PilotState;
  cores: number;
  /**
   * Cores of the payloads the server has assigned to it that have not ended
   * (assigned or running): up to date the moment the server hands one out or
   * hears it ended, not only at the next heartbeat.
   */
  coresUsed: number;
  /** Cores in use by its last heartbeat (null: none yet). Added in v1. */
  coresReported?: number | null;
  memoryMb: number;
  /** Its batch job id (Slurm, PBS, Grid Engine, HTCondor) or cloud instance id, when it said one. */
  externalId: string | null;
  /** The labels it registered with (site, batch system, ...). Added in v1. */
  labels?: Record<string, string>;
  registeredAt: number;
  /** Its last call the server accepted: registration, heartbeat, match or reports. Added in v1. */
  lastContactAt?: number | null;
  lastHeartbeatAt: number | null;
  deadline: number | null;
  shutdownCode: number | null;
  shutdownMessage: string | null;
  /** How it isolates its payloads, as it said when it registered; null: it did not say (an older agent: none). */
  isolation?: IsolationMode | null;
  /**
   * Only in GET /v1/pilots/:id: its last heartbeat as it sent it (load,
   * memory, disk, Machine/Job Features, payloads), or null before the first.
   * Added in v1.
   */
  lastHeartbeat?: HeartbeatRequest | null;
  /** The relay it registered through (added in v1); null: it came to the server directly. */
  relay?: RelayRef | null;
  /** What it said it is and has (register, then each heartbeat); null: it said nothing. */
  capabilities?: Capabilities | null;
  /** The director instance it registered as (with that instance's one-time credential); null: registered with the shared token. */
  instanceId?: number | null;
  /** The only groups whose payloads it is given (its instance's endpoint serves these); null: any group. */
  groups?: readonly string[] | null;
}

/** POST /v1/pilots/:pilotId/instructions reply. */
export interface InstructionReply {
  instruction: Instruction;
  /**
   * true: nothing new was sent; `instruction` is the drain the pilot already
   * has (not yet acknowledged, or acknowledged and still draining). A
   * repeated drain is answered so (200), as a repeated kill is. Added in v1.
   */
  existing?: boolean;
}

/** One instruction sent to a pilot and its acknowledgement (GET /v1/pilots/:pilotId/instructions). */
export interface InstructionView {
  instruction: Instruction;
  createdAt: number;
  /** When the pilot reported it done (its `instruction-done` report's time), or null: not yet. */
  doneAt: number | null;
  ok: boolean | null;
  message: string | null;
}

/** The stages of an endpoint test (`vmpilot-server endpoint test NAME`), in order. */
export type EndpointTestStageName = 'config' | 'credentials' | 'create' | 'booting' | 'registered' | 'probe' | 'halted' | 'deleted';

/** POST /v1/endpoints/:name/test, with the admin token (added in v1). */
export interface EndpointTestRequest {
  /** The endpoint's shape to start (default: its first). */
  shape?: string;
  /** The whole test at most this long, cleanup apart (default: the sum of the stages' own bounds). */
  timeoutSec?: number;
}

/** One line of the NDJSON reply of POST /v1/endpoints/:name/test: a stage that passed or failed. */
export interface EndpointTestStage {
  stage: EndpointTestStageName;
  ok: boolean;
  /** How long the stage took. */
  ms: number;
  /** What it found: the driver's id, the pilot, the probe's payload; or why it failed (the instance's reason, the driver's words, a timeout). */
  detail: string;
  /** What to check, when it failed. */
  hints?: string[];
}

/** The last line of the NDJSON reply of POST /v1/endpoints/:name/test. */
export interface EndpointTestDone {
  done: true;
  /** True when every stage passed. */
  ok: boolean;
  totalMs: number;
  /** The instance the test started (null: it failed before one was recorded). */
  instanceId?: number | null;
  /** The group made for this test only (its pilot served nothing else). */
  probeGroup?: string;
}

/** One line of the NDJSON reply of POST /v1/endpoints/:name/test. */
export type EndpointTestLine = EndpointTestStage | EndpointTestDone;
