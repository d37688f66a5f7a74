/**
 * The server's store: the only place that holds records, and the only
 * interface the rest of the server uses to read or change them. All SQL lives
 * in the implementation (sqlite.ts, with versioned migrations); a PostgreSQL
 * store can implement the same interface. Methods are async so that a
 * networked database fits; every method that changes several rows does so in
 * one transaction, so a crash leaves either all of it or none.
 */
import type {
  Assignment,
  CoreRequest,
  HeartbeatRequest,
  Instruction,
  InstructionRequest,
  LifecycleState,
  PayloadState,
  PayloadView,
  PilotState,
  PilotView,
  RegisterRequest,
  Report,
  SubmitRequest,
} from '../../protocol/index.js';

export interface PayloadFilter {
  state?: PayloadState;
  group?: string;
  pilotId?: number;
  limit?: number;
}

export interface PilotFilter {
  state?: PilotState;
}

/** What a pilot offers when it asks for work. */
export interface Offer {
  freeCores: number;
  totalCores: number;
  freeMemoryMb: number;
  remainingSec: number | null;
}

/** A queued payload as the matcher sees it. */
export interface Candidate {
  id: number;
  group: string;
  priority: number;
  cores: CoreRequest;
  memoryMb: number | null;
  wallSec: number | null;
  submittedAt: number;
}

/**
 * Pure choice of the next payload for an offer: the candidate to hand out and
 * the cores it gets, or null. Passed to `claimPayload`, which runs it inside
 * its transaction.
 */
export type Picker = (candidates: Candidate[], offer: Offer) => { id: number; cores: number } | null;

/** The outcome of applying one report. */
export type ReportOutcome =
  | { kind: 'applied' }
  | { kind: 'duplicate' }
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

export interface Store {
  /** Create tables or migrate them to the newest version. */
  migrate(): Promise<void>;
  close(): Promise<void>;

  // -- settings (e.g. hashed tokens generated on first start)
  getSetting(key: string): Promise<string | null>;
  setSetting(key: string, value: string): Promise<void>;

  // -- pilots
  createPilot(request: RegisterRequest, credentialHash: string, at: number): Promise<PilotView>;
  getPilot(id: number): Promise<PilotView | null>;
  /** The pilot id a credential hash belongs to, or null. */
  pilotIdForCredential(credentialHash: string): Promise<number | null>;
  listPilots(filter: PilotFilter): Promise<PilotView[]>;
  /** Record a heartbeat: last contact, usage, and the state it implies. */
  recordHeartbeat(pilotId: number, beat: HeartbeatRequest, at: number): Promise<void>;
  /** Record that the pilot asked for work now (also counts as contact). */
  touchPilot(pilotId: number, at: number): Promise<void>;

  // -- payloads
  submitPayload(request: SubmitRequest, at: number): Promise<PayloadView>;
  getPayload(id: number): Promise<PayloadView | null>;
  listPayloads(filter: PayloadFilter): Promise<PayloadView[]>;
  /**
   * In one transaction: hand this pilot one queued payload chosen by `pick`,
   * moving it queued → assigned. Returns it, or null when nothing fits.
   */
  claimPayload(pilotId: number, offer: Offer, pick: Picker, at: number): Promise<Assignment | null>;
  /**
   * A payload already assigned to this pilot that it has not said it started
   * and does not list in `holding`: the reply that carried it may have been
   * lost, so it is handed out again rather than a new one.
   */
  redeliverable(pilotId: number, holding: number[]): Promise<Assignment | null>;
  /** How many payloads are queued. */
  queuedCount(): Promise<number>;

  // -- reports: applied once each, by (pilot, seq), in one transaction each
  applyReport(pilotId: number, report: Report, at: number): Promise<ReportOutcome>;
  /** The highest seq applied for this pilot (0 when none). */
  appliedSeq(pilotId: number): Promise<number>;

  // -- instructions
  addInstruction(pilotId: number, request: InstructionRequest, at: number): Promise<Instruction>;
  /** Instructions sent to this pilot that it has not reported done. */
  pendingInstructions(pilotId: number): Promise<Instruction[]>;

  /** Pilot states for state changes the server itself makes (e.g. stalled). */
  setPilotState(pilotId: number, state: PilotState, reason: string, at: number): Promise<void>;
  /** A pilot's state changes, oldest first. */
  pilotHistory(pilotId: number): Promise<PilotStateChange[]>;
}

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
