/** An in-memory StateStore for tests: keeps deep copies, can be made to fail. */
import { VmpilotError } from '../../shared/errors.js';
import type { AgentState, StateStore } from '../ports.js';

/** StateStore in memory; `saved` is the last saved state, `saves` counts saves. */
export class MemoryStateStore implements StateStore {
  saved: AgentState | null = null;
  saves = 0;
  shutdownMessage: string | null = null;
  /** When true, save throws VMP_STATE. */
  failing = false;

  constructor(initial: AgentState | null = null) {
    this.saved = initial ? structuredClone(initial) : null;
  }

  async load(): Promise<AgentState | null> {
    return this.saved ? structuredClone(this.saved) : null;
  }

  async save(state: AgentState): Promise<void> {
    if (this.failing) throw new VmpilotError('VMP_STATE', 'memory store failing');
    this.saved = structuredClone(state);
    this.saves++;
  }

  async writeShutdownMessage(line: string): Promise<void> {
    this.shutdownMessage = line;
  }
}
