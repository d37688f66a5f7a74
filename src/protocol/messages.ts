/**
 * The messages that travel between the agent and the server, version 1.
 *
 * This folder is the only code the agent and the server share. Every request
 * body here has a JSON schema in `schemas.ts`; the server validates against it,
 * the agent builds its bodies from these types. `docs/protocol.md` shows an
 * example of each message.
 *
 * Times are milliseconds since the Unix epoch unless a name says `Sec`.
 */
import type { RelayRef } from './relay.js';
import type { Capabilities, Requirements } from './requirements.js';

/** Lifecycle state of an agent, as the agent itself sees it. */
export type LifecycleState = 'booting' | 'serving' | 'draining' | 'halting' | 'halted';

/** State of a pilot (one agent on one VM or batch job) as the server records it. */
export type PilotState =
  | 'submitted'
  | 'booting'
  | 'running'
  | 'draining'
  | 'halting'
  | 'halted'
  | 'stalled'
  | 'error';

/**
 * State of a payload on the server:
 * queued → assigned → running → done | failed | cancelled.
 * `assigned` means handed to one pilot, which has not yet said it started.
 * `failed`: the payload's own doing (a non-zero exit, a signal, a limit), or
 * its attempts used up; `cancelled`: an administrator killed it. `lost` (its
 * pilot stalled or halted) and `evicted` (the infrastructure stopped it: a
 * halt, SIGTERM, the deadline, the lease fence) end an attempt: they are steps
 * of a payload's history, after which it is queued again or fails; no payload
 * rests in them. Clients should show a state they do not know as it is.
 */
export type PayloadState = 'queued' | 'assigned' | 'running' | 'done' | 'failed' | 'cancelled' | 'lost' | 'evicted';

/** Payload states after which nothing more happens to a payload. */
export const FINAL_PAYLOAD_STATES: readonly PayloadState[] = ['done', 'failed', 'cancelled'];

/**
 * Why the infrastructure, not the payload, stopped a payload
 * (`PayloadEndedReport.evicted`): a `halt` instruction, a signal to the agent
 * (`signal`: SIGTERM from a batch system's preemption or wall time, systemd's
 * stop; SIGINT), the node's `deadline` (MJF shutdowntime, batch end time,
 * `--lifetime`), the `lease` fence (the server unreachable for nearly the
 * lease), or an `error` of the agent itself that halts it.
 */
export type EvictionReason = 'halt' | 'signal' | 'deadline' | 'lease' | 'error';

/** Every EvictionReason, for schemas and checks. */
export const EVICTION_REASONS: readonly EvictionReason[] = ['halt', 'signal', 'deadline', 'lease', 'error'];

/**
 * How many cores a payload asks for: exactly N (min = max = N), a range
 * (it gets as many free cores as there are, up to max), or the whole node
 * (it runs only on an empty node and gets all of its cores).
 */
export interface CoreRequest {
  min: number;
  max: number;
  wholeNode: boolean;
}

// ---------------------------------------------------------------------------
// Register: POST /v1/register, with the registration token.

export interface RegisterRequest {
  hostname: string;
  /** Agent version, e.g. "0.1.0". */
  version: string;
  /** Cores this agent may use (its allocation, not necessarily the host's). */
  cores: number;
  memoryMb: number;
  diskMb?: number;
  /** Batch job id or cloud instance id, when there is one. */
  externalId?: string;
  /** When the agent must be gone (ms epoch), when known. */
  deadline?: number | null;
  /** Free-form labels, e.g. site or cloud name. */
  labels?: Record<string, string>;
  /**
   * How this agent keeps its payloads from itself and from each other
   * (`ISOLATION_MODES`); absent (an older agent) counts as `none`. The
   * server gives payloads of groups that require isolation only to pilots
   * with one other than `none`.
   */
  isolation?: IsolationMode;
  /** What the node is and has beyond cores and memory: matched against payloads' requirements (docs/requirements.md). */
  capabilities?: Capabilities;
}

/**
 * How an agent isolates its payloads: `slot-users` (root; one account per
 * payload running at once), `payload-user` (root; one account for all),
 * `bwrap` and `unshare` (not root; a user and PID namespace that hides the
 * agent's state and processes), or `none`.
 */
export const ISOLATION_MODES = ['slot-users', 'payload-user', 'bwrap', 'unshare', 'none'] as const;
export type IsolationMode = (typeof ISOLATION_MODES)[number];

export interface RegisterReply {
  pilotId: number;
  /** The per-pilot credential: every later call of this pilot carries it. */
  credential: string;
  heartbeatIntervalSec: number;
  /** The longest the server holds a match request open. */
  matchWaitMaxSec: number;
  serverTime: number;
  /**
   * When the credential expires (ms epoch); heartbeats bring a new one
   * before then (`HeartbeatReply.credential`). Absent or null: it does not expire.
   */
  credentialExpiresAt?: number | null;
  /**
   * The pilot's lease, seconds: after this long without contact the server
   * marks the pilot stalled and gives its payloads to other pilots
   * (`serve --stall-after`). An agent that has not reached the server for
   * nearly this long stops its payloads, so none runs on two pilots at once.
   * Absent: the server does not say, and the agent does not fence.
   */
  leaseSec?: number;
  /**
   * True: this server takes `PayloadEndedReport.evicted` (it puts a payload
   * the infrastructure stopped back in the queue). An older server would
   * refuse the unknown field, so the agent sends it to no other.
   */
  acceptsEvicted?: boolean;
}

// ---------------------------------------------------------------------------
// Instructions: typed commands from an administrator, carried to the pilot in
// heartbeat and match replies. Each has an id; the agent reports it done
// (an `instruction-done` report) and the server stops sending it. Carrying out
// the same instruction twice changes nothing.

export type Instruction =
  | { id: number; type: 'drain'; reason?: string }
  | { id: number; type: 'halt'; code?: number; reason?: string }
  | { id: number; type: 'kill-payload'; payloadId: number; reason?: string }
  | { id: number; type: 'set'; heartbeatIntervalSec?: number; idleTimeoutSec?: number }
  | { id: number; type: 'ping' };

export type InstructionType = Instruction['type'];

/** What an administrator sends to create an instruction (no id yet). */
export type InstructionRequest = DistributiveOmit<Instruction, 'id'>;
type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

// ---------------------------------------------------------------------------
// Heartbeat: POST /v1/pilots/:pilotId/heartbeat, with the pilot credential.

export interface PayloadHeartbeat {
  id: number;
  state: 'starting' | 'running' | 'stopping';
  cores: number;
  cpuSec?: number;
  rssMb?: number;
}

export interface HeartbeatRequest {
  at: number;
  state: LifecycleState;
  version: string;
  uptimeSec: number;
  cores: { total: number; used: number; free: number };
  memoryMb: { total: number; used: number };
  /** Load average over 1, 5 and 15 minutes. */
  load?: [number, number, number];
  /** CPU use of the node since the last beat, 0..1 per core summed (0..cores). */
  cpuUse?: number;
  diskFreeMb?: number;
  payloads: PayloadHeartbeat[];
  /** When the agent must be gone (ms epoch), or null when there is no limit. */
  deadline?: number | null;
  /** Machine/Job Features values as read, key → value. */
  features?: Record<string, string | number>;
  /** The node's capabilities as of now (as at register); the server keeps the latest. */
  capabilities?: Capabilities;
}

export interface HeartbeatReply {
  /** When to send the next heartbeat. */
  intervalSec: number;
  instructions: Instruction[];
  /**
   * A new per-pilot credential, sent when the current one nears its expiry:
   * use it for every later call and keep it with the pilot's state. The old
   * one stays valid until its own expiry, so a lost reply does no harm.
   */
  credential?: string;
  /** When `credential` expires (ms epoch). */
  credentialExpiresAt?: number;
}

// ---------------------------------------------------------------------------
// Match: POST /v1/pilots/:pilotId/match. The pilot says what it can take; the
// server answers with one payload that fits, or holds the request open until
// one arrives, an instruction comes, or `waitSec` passes.

export interface MatchRequest {
  freeCores: number;
  totalCores: number;
  freeMemoryMb: number;
  /** Seconds left before the agent's deadline minus its grace period; null when unlimited. */
  remainingSec: number | null;
  /**
   * Payload ids the server must not hand back: those the pilot holds
   * (running or starting), and those it released, still has reports of on
   * the way, or was handed again after it started them. The server hands
   * back a payload it assigned to this pilot but whose reply may have been
   * lost, unless it is listed here.
   */
  holding: number[];
  /** How long the server may hold the request open, at most its own bound. */
  waitSec: number;
  /**
   * Only hand out a payload that gets at least this many cores here. The
   * agent sets it while it reserves its cores for the largest waiting
   * request (`MatchReply.largestWaiting`), so that no smaller work takes them.
   */
  minCores?: number;
  /**
   * Backfill: the pilot holds cores for its reserved payload
   * (`MatchReply.largestWaiting`) and lends the free ones meanwhile. Hand out
   * only a payload that declares a wall time of at most `wallSec` (it ends
   * before the reserved payload can start), or that fits in `spareCores`
   * (cores that stay free even once the reserved payload runs), whatever its
   * wall time; a payload with no wall time fits only the second way.
   * `wallSec` counts from when the server received the request. Sent only to
   * a server that says it honours it (`largestWaiting.backfill`).
   */
  backfill?: { wallSec: number; spareCores: number };
  /**
   * Ids of the GPUs no payload holds now (ids as in the pilot's
   * `capabilities.gpus`): a payload asking for GPUs is handed out only when
   * enough of these fit it. Absent: none free.
   */
  freeGpus?: string[];
  /** Scratch disk (MiB) not promised to a payload held now; absent: unknown, so no payload asking for scratch fits. */
  freeScratchMb?: number;
}

/** A payload handed to a pilot. */
export interface Assignment {
  id: number;
  name: string;
  group: string;
  command: string[];
  env: Record<string, string>;
  /** Cores allocated to it on this pilot. */
  cores: number;
  memoryMb: number | null;
  wallSec: number | null;
  /** What it needs of the node (docs/requirements.md); the agent checks them again before it starts it. Absent: nothing. */
  requirements?: Requirements;
}

export interface MatchReply {
  payload: Assignment | null;
  instructions: Instruction[];
  /**
   * The large waiting request this pilot should reserve cores for (the cores
   * it needs here, `minimumCores` of its request) and how long it has waited;
   * null when none is designated to it (the server designates each large
   * waiting payload to one pilot only). The agent stops taking smaller work once it has waited
   * longer than the agent's starvation bound. Absent: the server does not say.
   * `backfill: true`: this server honours `MatchRequest.backfill`, so the
   * agent may lend the held cores to work that does not delay this payload.
   */
  largestWaiting?: { cores: number; waitingSec: number; backfill?: boolean } | null;
}

// ---------------------------------------------------------------------------
// Reports: POST /v1/pilots/:pilotId/reports. Everything a pilot tells the
// server that must not be lost goes through here, numbered by `seq`, a
// per-pilot sequence that only grows. The agent keeps unsent reports on disk
// and sends them in order; the server applies each seq once and ignores a
// seq it has already applied.

interface ReportBase {
  seq: number;
  at: number;
}

export interface PayloadStartedReport extends ReportBase {
  type: 'payload-started';
  payloadId: number;
  pid?: number;
}

export interface PayloadEndedReport extends ReportBase {
  type: 'payload-ended';
  payloadId: number;
  exitCode: number | null;
  signal: string | null;
  timedOut?: boolean;
  overMemory?: boolean;
  cpuSec?: number;
  peakRssMb?: number;
  /** Last lines of the payload's output. */
  outputTail?: string;
  /** Why the agent ended it or could not run it, when it did. */
  message?: string;
  /**
   * Set when the infrastructure stopped the payload (see EvictionReason),
   * not the payload itself or an administrator's kill: the server then counts
   * the attempt as evicted and queues the payload again while it has attempts
   * left. A payload that exited 0 is done, and one over its wall time or
   * memory failed, whatever this says. Sent only to a server that takes it
   * (`RegisterReply.acceptsEvicted`).
   */
  evicted?: { reason: EvictionReason };
}

/**
 * The agent will not start a payload the server handed out because of its own
 * state (draining, halting), free cores or time left: the payload was never
 * started and goes back to the queue, with no attempt counted.
 */
export interface PayloadReleasedReport extends ReportBase {
  type: 'payload-released';
  payloadId: number;
  /** Why the agent did not start it. */
  reason: string;
}

export interface InstructionDoneReport extends ReportBase {
  type: 'instruction-done';
  instructionId: number;
  ok: boolean;
  message?: string;
}

export interface StateReport extends ReportBase {
  type: 'state';
  state: LifecycleState;
  reason: string;
}

export interface ShutdownReport extends ReportBase {
  type: 'shutdown';
  /** Shutdown code, see `shutdown-codes.ts`. */
  code: number;
  message: string;
}

export type Report =
  | PayloadStartedReport
  | PayloadEndedReport
  | PayloadReleasedReport
  | InstructionDoneReport
  | StateReport
  | ShutdownReport;

export type ReportType = Report['type'];

export interface ReportsRequest {
  reports: Report[];
}

export interface ReportsReply {
  /** The highest seq the server has applied for this pilot. */
  appliedSeq: number;
  /**
   * Reports that were received but refused (e.g. a payload the pilot no
   * longer holds). They count as delivered: do not send them again.
   */
  refused: { seq: number; code: string; message: string }[];
  /** Instructions the pilot should carry out, e.g. kill a payload it lost. */
  instructions: Instruction[];
}

// ---------------------------------------------------------------------------
// Admin: submit payloads, list payloads and pilots, send instructions.

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

/** GET /v1/usage?minutes=&stepSec=: average running cores per group in each step. */
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

/** GET /v1/health, no token. */
export interface HealthReply {
  ok: true;
  version: string;
  protocol: number;
}

/** Every error reply has this body. `code` is stable; branch on it, not on the message. */
export interface ErrorReply {
  error: {
    code: string;
    message: string;
    /** With VMP_REPORT_SEQ (409): the pilot's last applied seq, which its reports must follow. */
    appliedSeq?: number;
  };
}
