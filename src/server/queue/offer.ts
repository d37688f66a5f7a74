/**
 * What the matcher sees: a pilot's offer, a queued payload as a candidate,
 * and the picker that chooses between them. Types only; the store reads the
 * candidates and runs the picker inside its claim, queue/ decides.
 */
import type { Capabilities, CoreRequest, FreeResources, Requirements } from '../../protocol/index.js';

/** What a pilot offers when it asks for work. */
export interface Offer {
  freeCores: number;
  totalCores: number;
  freeMemoryMb: number;
  remainingSec: number | null;
  /** Only a payload that gets at least this many cores (the pilot reserves cores for a large one). */
  minCores?: number;
  /**
   * Backfill (the pilot lends cores held for a large one): only a payload
   * with a wall time of at most `wallSec`, or one that fits in `spareCores`.
   */
  backfill?: { wallSec: number; spareCores: number };
  /**
   * The pilot isolates its payloads (its registration said an isolation
   * other than `none`). Payloads of groups that require isolation go only to
   * an offer where this is true.
   */
  isolated?: boolean;
  /** What the pilot said it is and has (register, heartbeats); absent or null: nothing, so no payload with requirements fits. */
  capabilities?: Capabilities | null;
  /** Its GPUs free now and scratch not promised (MatchRequest.freeGpus, freeScratchMb); absent: none free. */
  free?: FreeResources;
  /** Only payloads of these groups (a director instance's pilot serves its endpoint's groups); absent or null: any group. */
  groups?: readonly string[] | null;
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
  /** What it needs of the node (docs/requirements.md); absent or null: nothing. */
  requirements?: Requirements | null;
}

/**
 * Pure choice of the next payload for an offer: the candidate to hand out and
 * the cores it gets, or null. Passed to the store's `claimPayload`, which runs
 * it inside its transaction.
 */
export type Picker = (
  candidates: Candidate[],
  offer: Offer,
  /** Decayed recent core-seconds per group (see `queue/usage.ts`). */
  usage?: ReadonlyMap<string, number>,
) => { id: number; cores: number } | null;
