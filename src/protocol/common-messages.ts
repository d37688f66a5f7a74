/**
 * What both audiences of the protocol share, version 1: the states of pilots
 * and payloads, a core request, the instructions an administrator sends and
 * a pilot carries out, and the bodies of health and error replies. The pilot's
 * calls are in pilot-messages.ts, the administrator's in admin-messages.ts;
 * index.ts re-exports all three.
 *
 * This folder is the only code the agent and the server share. Every request
 * body has a JSON schema (pilot-schemas.ts, admin-schemas.ts); the server
 * validates against it, the agent builds its bodies from these types.
 * `docs/protocol.md` shows an example of each message.
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
