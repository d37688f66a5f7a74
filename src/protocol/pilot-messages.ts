/**
 * The pilot's calls, version 1: register, heartbeat, match and reports, each
 * with the pilot credential (register with the registration token). Their
 * schemas are in pilot-schemas.ts; docs/protocol.md shows an example of each.
 *
 * Times are milliseconds since the Unix epoch unless a name says `Sec`.
 */
import type { Capabilities, Requirements } from './requirements.js';
import type { EvictionReason, Instruction, LifecycleState } from './common-messages.js';

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
