/**
 * Row shapes of the SQLite tables and their mapping to protocol views. Kept
 * apart from the SQL so the store reads as a list of statements.
 */
import { FINAL_PAYLOAD_STATES } from '../../protocol/index.js';
import type {
  Capabilities,
  CoreRequest,
  Instruction,
  IsolationMode,
  PayloadState,
  PayloadView,
  PilotState,
  PilotView,
  Requirements,
  SubmitRequest,
} from '../../protocol/index.js';
import type { Candidate } from '../queue/offer.js';

/** A row of `payloads`. */
export interface PayloadRow {
  id: number;
  name: string;
  grp: string;
  command: string;
  env: string;
  cores_min: number;
  cores_max: number;
  whole_node: number;
  memory_mb: number | null;
  wall_sec: number | null;
  priority: number;
  state: PayloadState;
  pilot_id: number | null;
  allocated_cores: number | null;
  exit_code: number | null;
  signal: string | null;
  output_tail: string | null;
  /** CPU seconds and peak memory of its last run, as its pilot reported at the end (NULL: not reported, or not ended). */
  cpu_sec: number | null;
  peak_rss_mb: number | null;
  message: string | null;
  submitted_at: number;
  assigned_at: number | null;
  started_at: number | null;
  ended_at: number | null;
  attempts: number;
  /** 0: submitted with `requeue: false`. */
  requeue: number;
  /** Set when an administrator asked for a kill: the payload ends cancelled. */
  cancel_reason: string | null;
  /** Attempts the infrastructure ended and their core-seconds (only from PAYLOAD_SELECT). */
  evictions?: number;
  evicted_core_sec?: number;
  final_core_sec?: number;
  /** JSON of its normalised Requirements, or NULL when it has none. */
  requirements?: string | null;
}

/**
 * What `payloadView` shows beyond the columns: the count of a payload's
 * attempts the infrastructure ended (lost or evicted, from the history), the
 * core-seconds those used, and the core-seconds of the run that ended the
 * payload (as accounted: none when its last attempt was interrupted). Each
 * reads a few rows of one payload through an index. `greatest`: the
 * engine's two-argument maximum (SQLite's MAX, PostgreSQL's GREATEST).
 */
export function payloadDerived(greatest: 'MAX' | 'GREATEST'): string {
  return `(SELECT COUNT(*) FROM payload_states s WHERE s.payload_id = payloads.id AND s.state IN ('lost', 'evicted')) AS evictions,
  (SELECT COALESCE(SUM(l.cores * ${greatest}(0, l.ended_at - l.started_at)), 0) / 1000.0 FROM lost_attempts l WHERE l.payload_id = payloads.id)
    AS evicted_core_sec,
  CASE WHEN payloads.state IN ('done', 'failed', 'cancelled') AND payloads.started_at IS NOT NULL AND payloads.ended_at IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM lost_attempts l WHERE l.payload_id = payloads.id AND l.started_at = payloads.started_at)
    THEN COALESCE(payloads.allocated_cores, 0) * ${greatest}(0, payloads.ended_at - payloads.started_at) / 1000.0 ELSE 0 END AS final_core_sec`;
}

const PAYLOAD_DERIVED = payloadDerived('MAX');

/**
 * Payload rows, every column, with what `PAYLOAD_DERIVED` adds: a payload's
 * own page. Add `WHERE …` on the columns of `payloads`.
 */
export const PAYLOAD_SELECT = `SELECT payloads.*, ${PAYLOAD_DERIVED} FROM payloads`;

/**
 * The columns of `payloads` a listing reads: all but the large ones (`env`,
 * `output_tail`), which only a payload's own page shows.
 */
export const PAYLOAD_LIST_COLUMNS = `id, name, grp, command, cores_min, cores_max, whole_node, memory_mb, wall_sec, priority, state,
  pilot_id, allocated_cores, exit_code, signal, cpu_sec, peak_rss_mb, message, submitted_at, assigned_at, started_at, ended_at, attempts, requeue, cancel_reason, requirements`;

/**
 * Payload rows as a listing reads them, with what `PAYLOAD_DERIVED` adds.
 * Add `WHERE …` on the columns of `payloads`.
 */
export const PAYLOAD_LIST_SELECT = `SELECT ${PAYLOAD_LIST_COLUMNS}, ${PAYLOAD_DERIVED} FROM payloads`;

/** A payload row as a listing reads it. */
export type PayloadListRow = Omit<PayloadRow, 'env' | 'output_tail'> & { output_tail?: string | null };

/**
 * The columns of `pilots` the admin's views read: not the last heartbeat's
 * body, which is large and shown by `pilot N` only (pilot-records.ts). The
 * labels are read: `pilots` shows them, and registration bounds them
 * (limits.labelBytes, 4096 bytes of JSON by default).
 */
export const PILOT_COLUMNS = `p.id, p.hostname, p.version, p.state, p.cores, p.cores_used, p.memory_mb, p.external_id, p.labels, p.registered_at,
  p.last_contact_at, p.last_heartbeat_at, p.deadline, p.applied_seq, p.shutdown_code, p.shutdown_message, p.isolation, p.relay_name, p.relay_site, p.capabilities, p.instance_id, p.groups`;

/** A row of `pilots`, with `cores_busy` computed from its payloads. */
export interface PilotRow {
  id: number;
  hostname: string;
  version: string;
  state: PilotState;
  cores: number;
  cores_used: number | null;
  cores_busy: number | null;
  memory_mb: number;
  external_id: string | null;
  /** JSON object of its registration's labels. */
  labels: string;
  registered_at: number;
  last_contact_at: number | null;
  last_heartbeat_at: number | null;
  deadline: number | null;
  applied_seq: number;
  shutdown_code: number | null;
  shutdown_message: string | null;
  isolation: string | null;
  relay_name: string | null;
  relay_site: string | null;
  /** JSON of its Capabilities, or NULL when it declared none. */
  capabilities?: string | null;
  /** The director's instance it registered as (its one-time credential), or NULL. */
  instance_id?: number | null;
  /** JSON array of the only groups it may serve, or NULL: any group. */
  groups?: string | null;
}

/** A row of `instructions`. */
export interface InstructionRow {
  id: number;
  pilot_id: number;
  body: string;
}

/** The admin's view of a payload; `withOutput` adds its output tail. */
export function payloadView(row: PayloadListRow, withOutput = false): PayloadView {
  const view: PayloadView = {
    id: row.id,
    name: row.name,
    group: row.grp,
    command: JSON.parse(row.command) as string[],
    cores: coresOf(row),
    memoryMb: row.memory_mb,
    wallSec: row.wall_sec,
    priority: row.priority,
    state: row.state,
    pilotId: row.pilot_id,
    allocatedCores: row.allocated_cores,
    exitCode: row.exit_code,
    signal: row.signal,
    submittedAt: row.submitted_at,
    assignedAt: row.assigned_at,
    startedAt: row.started_at,
    endedAt: row.ended_at,
    attempts: row.attempts,
    message: row.message,
    requeue: row.requeue !== 0,
    evictions: row.evictions ?? 0,
    evictedCoreSec: row.evicted_core_sec ?? 0,
    coreSec: row.final_core_sec ?? 0,
    cpuSec: row.cpu_sec ?? null,
    peakRssMb: row.peak_rss_mb ?? null,
    cpuEfficiency: cpuEfficiency(row),
  };
  const requirements = payloadRequirements(row);
  if (requirements) view.requirements = requirements;
  if (withOutput) view.outputTail = row.output_tail ?? null;
  return view;
}

/**
 * CPU time over what its cores could have given, for a payload that ended
 * after a run its pilot measured: cpu_sec / (wall seconds × allocated cores),
 * rounded to 3 places (above 1 when the payload used more cores than it was
 * given). Null when it has not ended, never started, ran for less than a
 * second (its agent samples about once a second: a shorter run's ratio
 * says nothing), or no CPU time was reported.
 */
export function cpuEfficiency(row: Pick<PayloadRow, 'cpu_sec' | 'started_at' | 'ended_at' | 'allocated_cores'>): number | null {
  if (row.cpu_sec === null || row.cpu_sec === undefined || row.started_at === null || row.ended_at === null || !row.allocated_cores) return null;
  const wallSec = (row.ended_at - row.started_at) / 1000;
  if (!(wallSec >= 1)) return null;
  return Math.round((1000 * row.cpu_sec) / (wallSec * row.allocated_cores)) / 1000;
}

/** The cores a payload asked for. */
export function coresOf(row: Pick<PayloadRow, 'cores_min' | 'cores_max' | 'whole_node'>): CoreRequest {
  return { min: row.cores_min, max: row.cores_max, wholeNode: row.whole_node === 1 };
}

/** What a payload needs of its node, or null when nothing. */
export function payloadRequirements(row: Pick<PayloadRow, 'requirements'>): Requirements | null {
  return row.requirements ? (JSON.parse(row.requirements) as Requirements) : null;
}

/** What a pilot said it is and has, or null when it said nothing. */
export function pilotCapabilities(row: Pick<PilotRow, 'capabilities'>): Capabilities | null {
  return row.capabilities ? (JSON.parse(row.capabilities) as Capabilities) : null;
}

/** The matcher's view of a queued payload. */
export function candidate(row: PayloadRow): Candidate {
  return {
    id: row.id,
    group: row.grp,
    priority: row.priority,
    cores: coresOf(row),
    memoryMb: row.memory_mb,
    wallSec: row.wall_sec,
    submittedAt: row.submitted_at,
    requirements: payloadRequirements(row),
  };
}

/** The request `row` was submitted with, as a new submission of the same work would give it. */
export function requestOf(row: PayloadRow): SubmitRequest {
  const r: SubmitRequest = {
    command: JSON.parse(row.command) as string[],
    cores: coresOf(row),
    memoryMb: row.memory_mb,
    wallSec: row.wall_sec,
    group: row.grp,
    name: row.name,
    priority: row.priority,
    env: payloadEnv(row),
    requeue: row.requeue !== 0,
  };
  const requirements = payloadRequirements(row);
  if (requirements) r.requirements = requirements;
  return r;
}

/**
 * What resubmitting `row` queues: the same request, with the history reason
 * of the copy; or, for a payload that has not ended, the state that keeps it
 * from being copied. Pure.
 */
export function resubmission(row: PayloadRow): { kind: 'copy'; request: SubmitRequest; reason: string } | { kind: 'not-ended'; state: PayloadState } {
  if (!FINAL_PAYLOAD_STATES.includes(row.state)) return { kind: 'not-ended', state: row.state };
  return { kind: 'copy', request: requestOf(row), reason: `resubmitted from payload ${row.id}` };
}

/** The environment a payload asked for. */
export function payloadEnv(row: PayloadRow): Record<string, string> {
  return JSON.parse(row.env) as Record<string, string>;
}

/**
 * The admin's view of a pilot: cores used by the payloads the server
 * assigned to it (and the count its last heartbeat gave beside), and its last
 * contact, registration included.
 */
export function pilotView(row: PilotRow): PilotView {
  return {
    id: row.id,
    hostname: row.hostname,
    version: row.version,
    state: row.state,
    cores: row.cores,
    coresUsed: row.cores_busy ?? 0,
    coresReported: row.cores_used,
    memoryMb: row.memory_mb,
    externalId: row.external_id,
    labels: parseLabels(row.labels),
    registeredAt: row.registered_at,
    lastContactAt: row.last_contact_at ?? row.registered_at,
    lastHeartbeatAt: row.last_heartbeat_at,
    deadline: row.deadline,
    shutdownCode: row.shutdown_code,
    shutdownMessage: row.shutdown_message,
    isolation: (row.isolation as IsolationMode | null) ?? null,
    relay: row.relay_name ? { name: row.relay_name, site: row.relay_site ?? '' } : null,
    ...(row.capabilities ? { capabilities: pilotCapabilities(row) } : {}),
    // an instance's pilot says which instance and which groups; other pilots say nothing (any group)
    ...(row.instance_id != null ? { instanceId: row.instance_id, groups: pilotGroups(row) } : {}),
  };
}

/** The only groups a pilot may serve, or null: any group. */
export function pilotGroups(row: Pick<PilotRow, 'groups'>): string[] | null {
  return row.groups ? (JSON.parse(row.groups) as string[]) : null;
}

/** The labels column: a JSON object of strings ({} when it is not one). */
function parseLabels(text: string | null | undefined): Record<string, string> {
  try {
    const v: unknown = JSON.parse(text ?? '{}');
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, string>) : {};
  } catch {
    return {};
  }
}

/** An instruction as sent to a pilot: its stored body with its id. */
export function instruction(row: InstructionRow): Instruction {
  return { id: row.id, ...(JSON.parse(row.body) as object) } as Instruction;
}
