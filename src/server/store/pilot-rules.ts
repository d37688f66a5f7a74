/**
 * What a heartbeat, a stall and a drain do to a pilot's records. Pure: each
 * is a function of the rows the store read in its transaction and returns
 * the changes (changes.ts) it applies there.
 */
import type { HeartbeatRequest, Instruction, InstructionRequest, PilotState } from '../../protocol/index.js';
import { pilotStateChange } from './apply-report.js';
import type { Change } from './changes.js';
import { killOnce, losePayload } from './endings.js';
import type { PayloadRow, PilotRow } from './rows.js';
import { pilotStateFor, type StorePolicy } from './store.js';

/**
 * The payloads a heartbeat of `pilot` says it runs (not stopping) that are
 * not (or no longer) its own: each gets a kill-payload instruction. `rows`:
 * the payloads the beat lists, by id, as read. Pure.
 */
export function strangers(pilot: Pick<PilotRow, 'id'>, beat: HeartbeatRequest, rows: ReadonlyMap<number, PayloadRow | undefined>): number[] {
  return beat.payloads
    .filter((p) => p.state !== 'stopping')
    .filter((p) => {
      const row = rows.get(p.id);
      return !(row && row.pilot_id === pilot.id && (row.state === 'assigned' || row.state === 'running'));
    })
    .map((p) => p.id);
}

/**
 * A heartbeat of `pilot` at `at`: its contact, usage and the state it
 * implies (a halted pilot's heartbeat is recorded but cannot revive it), and
 * a kill-payload instruction for each of its `strangers`, unless one is
 * pending (`pending`: its instructions not yet acknowledged; a store needs
 * to read them only when there are strangers). Pure.
 */
export function effectOfHeartbeat(
  pilot: PilotRow,
  beat: HeartbeatRequest,
  strangerIds: readonly number[],
  pending: readonly Instruction[],
  at: number,
): Change[] {
  const changes: Change[] = [{ kind: 'pilot-heartbeat', pilotId: pilot.id, beat, at }];
  changes.push(...pilotStateChange(pilot, pilotStateFor(beat.state), 'heartbeat', at).changes);
  // a payload it runs that is no longer its own (e.g. requeued while it was stalled): tell it to kill it, once
  const told = [...pending];
  for (const id of strangerIds) {
    const reason = `payload ${id} is not assigned to pilot ${pilot.id}`;
    const kill = killOnce(told, pilot.id, id, reason, at);
    if ('existing' in kill) continue;
    changes.push(kill.add);
    // a beat that lists the payload twice still gets one instruction (the id is not read)
    told.push({ id: 0, type: 'kill-payload', payloadId: id, reason });
  }
  return changes;
}

/** Where the payloads of a stalled pilot went. */
export interface Stall {
  changes: Change[];
  requeued: number[];
  failed: number[];
  cancelled: number[];
}

/**
 * `pilot`, silent since before the sweep's cutoff, becomes stalled at `at`
 * (null when its state cannot: nothing changes), and each payload it held
 * (`held`, assigned or running) is lost with it: queued again, failed or
 * cancelled (endings.ts).
 */
export function effectOfStall(pilot: PilotRow, held: readonly PayloadRow[], at: number, policy: StorePolicy): Stall | null {
  const silentSec = Math.round((at - (pilot.last_contact_at ?? pilot.registered_at)) / 1000);
  const state = pilotStateChange(pilot, 'stalled', `no contact for ${silentSec} s`, at);
  if (state.result.kind === 'refused') return null;
  const stall: Stall = { changes: [...state.changes], requeued: [], failed: [], cancelled: [] };
  for (const row of held) {
    const ending = losePayload(row, `pilot ${pilot.id} stalled (no contact for ${silentSec} s)`, at, policy);
    stall.changes.push(...ending.changes);
    (ending.to === 'queued' ? stall.requeued : ending.to === 'cancelled' ? stall.cancelled : stall.failed).push(row.id);
  }
  return stall;
}

/** A drain instruction as the rule reads it: its id, body and acknowledgement. */
export interface DrainRecord {
  instruction: Instruction;
  doneAt: number | null;
  ok: boolean | null;
}

/** Pilot states in which a drain the pilot acknowledged still holds (a drain is kept until the halt). */
const DRAINED: readonly PilotState[] = ['draining', 'halting', 'halted'];

/**
 * A drain for a pilot in `state`, unless one of its drains (`drains`, newest
 * first) holds: one not yet acknowledged, or one it acknowledged and is
 * still draining after. Then that one is `existing` and nothing is added, as
 * a repeated kill of a payload is answered with its first instruction. A
 * pilot that serves again after an acknowledged drain (its agent restarted
 * without its state) gets a new one.
 */
export function drainOnce(
  drains: readonly DrainRecord[],
  state: PilotState,
  pilotId: number,
  request: Extract<InstructionRequest, { type: 'drain' }>,
  at: number,
): { existing: Instruction } | { add: Change } {
  const holding = drains.find((r) => r.doneAt === null || (r.ok === true && DRAINED.includes(state)));
  if (holding) return { existing: holding.instruction };
  return { add: { kind: 'add-instruction', pilotId, body: request, at } };
}
