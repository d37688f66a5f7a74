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
 * queued → assigned → running → done | failed | lost.
 * `assigned` means handed to one pilot, which has not yet said it started.
 */
export type PayloadState = 'queued' | 'assigned' | 'running' | 'done' | 'failed' | 'lost';

/** Payload states after which nothing more happens to a payload. */
export const FINAL_PAYLOAD_STATES: readonly PayloadState[] = ['done', 'failed', 'lost'];

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
}

export interface RegisterReply {
  pilotId: number;
  /** The per-pilot credential: every later call of this pilot carries it. */
  credential: string;
  heartbeatIntervalSec: number;
  /** The longest the server holds a match request open. */
  matchWaitMaxSec: number;
  serverTime: number;
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
}

export interface HeartbeatReply {
  /** When to send the next heartbeat. */
  intervalSec: number;
  instructions: Instruction[];
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
   * Payload ids the pilot already holds (running or starting). The server
   * hands back a payload it assigned to this pilot but whose reply may have
   * been lost, unless it is listed here.
   */
  holding: number[];
  /** How long the server may hold the request open, at most its own bound. */
  waitSec: number;
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
}

export interface MatchReply {
  payload: Assignment | null;
  instructions: Instruction[];
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
}

export interface SubmitReply {
  id: number;
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
}

/** A pilot as an administrator sees it (GET /v1/pilots, /v1/pilots/:id). */
export interface PilotView {
  id: number;
  hostname: string;
  version: string;
  state: PilotState;
  cores: number;
  coresUsed: number;
  memoryMb: number;
  externalId: string | null;
  registeredAt: number;
  lastHeartbeatAt: number | null;
  deadline: number | null;
  shutdownCode: number | null;
  shutdownMessage: string | null;
}

/** POST /v1/pilots/:pilotId/instructions reply. */
export interface InstructionReply {
  instruction: Instruction;
}

/** GET /v1/health, no token. */
export interface HealthReply {
  ok: true;
  version: string;
  protocol: number;
}

/** Every error reply has this body. `code` is stable; branch on it, not on the message. */
export interface ErrorReply {
  error: { code: string; message: string };
}
