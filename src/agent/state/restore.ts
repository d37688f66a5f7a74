/**
 * What a (re)started agent keeps from the state directory. Pure.
 *
 * - no state, or state for another server: start afresh and register;
 * - the previous pilot halted: register a new pilot, but keep the ids of
 *   payloads started and instructions carried out (never twice);
 * - otherwise (killed, e.g. SIGKILL, and restarted as systemd does): carry on
 *   as the same pilot — same id, credential, report sequence and outbox — so
 *   the server's records line up; the running payloads are looked for again.
 */
import type { AgentState } from '../ports.js';
import { emptyState } from './state-keeper.js';

/** How the agent gets its identity. */
export type Identity = { kind: 'resume'; pilotId: number; credential: string } | { kind: 'register'; why: string };

/** The state to start from and how to get an identity. */
export function planRestore(old: AgentState | null, server: string): { state: AgentState; identity: Identity } {
  const fresh = emptyState(server);
  if (!old) return { state: fresh, identity: { kind: 'register', why: 'first start' } };
  if (old.server !== server) return { state: fresh, identity: { kind: 'register', why: 'state of another server' } };
  fresh.started = [...old.started];
  fresh.instructionsDone = [...old.instructionsDone];
  if (old.haltedAt) return { state: fresh, identity: { kind: 'register', why: 'the previous pilot halted' } };
  if (old.pilotId === null || old.credential === null) return { state: fresh, identity: { kind: 'register', why: 'never registered' } };
  const state: AgentState = { ...structuredClone(old), running: structuredClone(old.running ?? {}), haltedAt: null };
  return { state, identity: { kind: 'resume', pilotId: old.pilotId, credential: old.credential } };
}

/** The state of a pilot whose old identity the server refused: a new identity, and nothing of the old pilot's reports. */
export function forgetIdentity(state: AgentState): void {
  state.pilotId = null;
  state.credential = null;
  state.seq = 0;
  state.outbox = [];
  state.running = {};
}
