/**
 * The agent's state in memory, saved through the StateStore after every
 * change. Saves are serialised and coalesced: `persist()` resolves once a
 * save that includes every change made before the call has completed.
 */
import type { AgentState, StateStore } from '../ports.js';

/** A fresh, empty agent state for `server`. */
export function emptyState(server: string): AgentState {
  return { server, pilotId: null, credential: null, seq: 0, outbox: [], running: {}, started: [], instructionsDone: [] };
}

/** Holds the live AgentState and saves it. */
export class StateKeeper {
  private changes = 0;
  private savedChanges = 0;
  private inflight: Promise<void> | null = null;

  constructor(
    private readonly store: StateStore,
    readonly state: AgentState,
  ) {}

  /** Save the state as it is now (and wait until it is on disk). */
  async persist(): Promise<void> {
    const want = ++this.changes;
    while (this.savedChanges < want) {
      if (!this.inflight) {
        const upTo = this.changes;
        const snapshot = structuredClone(this.state);
        this.inflight = this.store
          .save(snapshot)
          .then(() => {
            this.savedChanges = Math.max(this.savedChanges, upTo);
          })
          .finally(() => {
            this.inflight = null;
          });
      }
      await this.inflight;
    }
  }
}
