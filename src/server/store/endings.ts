/**
 * How a payload's attempt ends, as changes to the records (changes.ts):
 * accounting of what it used (split by how the attempt ended), the end a
 * pilot reports, an attempt the infrastructure ended (evicted by its pilot,
 * or lost with it: back to the queue while attempts are left and requeueing
 * is allowed), an administrator's cancel, and a kill instruction sent once.
 * Pure: functions of the rows and the policy; the store applies what they
 * return in its transaction. The decisions of outcomes.ts are made here. No
 * payload ever leaves the records: each step is a state change with a
 * history row.
 */
import type { Instruction, InstructionRequest, PayloadEndedReport } from '../../protocol/index.js';
import { dayOf, movePayload, type Change } from './changes.js';
import { afterInterruption, reportedOutcome, type AttemptOutcome, type Interruption } from './outcomes.js';
import type { PayloadRow } from './rows.js';
import type { StorePolicy } from './store.js';

/** Changes, and where the payload went. */
export interface Ending {
  changes: Change[];
  to: PayloadRow['state'];
}

/**
 * One attempt of `row` added to the accounting of its group and pilot, on
 * the day it ended: core-seconds and wall seconds from its start (none if it
 * never started), in the total and in the column of its outcome; and one
 * payload done, failed or cancelled, or one attempt evicted (evicted or
 * lost). None when the payload has no pilot.
 */
export function charge(row: PayloadRow, endedAt: number, outcome: AttemptOutcome): Change[] {
  if (row.pilot_id === null) return [];
  const wallSec = row.started_at === null ? 0 : Math.max(0, (endedAt - row.started_at) / 1000);
  const coreSec = wallSec * (row.allocated_cores ?? 0);
  return [{ kind: 'charge', day: dayOf(endedAt), group: row.grp, pilotId: row.pilot_id, coreSec, wallSec, outcome }];
}

/** One more payload failed or cancelled after an interrupted attempt, in the accounting row of that attempt. */
function countEnd(row: PayloadRow, at: number, end: 'failed' | 'cancelled'): Change[] {
  if (row.pilot_id === null) return [];
  return [{ kind: 'count-end', day: dayOf(at), group: row.grp, pilotId: row.pilot_id, end }];
}

/**
 * The pilot reported `row` (assigned or running, its own) ended at `at`:
 * done, failed, cancelled (an administrator asked for the kill), or evicted
 * (the pilot says the infrastructure stopped it: handled as an interrupted
 * attempt).
 */
export function endReported(row: PayloadRow, report: PayloadEndedReport, at: number, policy: StorePolicy): Ending {
  const outcome = reportedOutcome(report, row.cancel_reason !== null);
  const ran = { exit_code: report.exitCode, signal: report.signal, output_tail: report.outputTail ?? null, cpu_sec: report.cpuSec ?? null, peak_rss_mb: report.peakRssMb ?? null };
  if (outcome === 'evicted') {
    const reason = report.evicted?.reason ?? 'halt';
    const why = `evicted by pilot ${row.pilot_id} (${reason}): ${report.message ?? 'stopped by its pilot'}`;
    return interruptAttempt(row, 'evicted', why, at, policy, ran);
  }
  const message = outcome === 'cancelled' ? `cancelled: ${row.cancel_reason}` : (report.message ?? null);
  const reason = outcome === 'cancelled' ? 'killed' : report.timedOut ? 'timed out' : report.overMemory ? 'over memory' : 'ended';
  const moved = movePayload(row, outcome, { ...ran, message, ended_at: at }, reason, at);
  return { changes: [moved.change, ...charge(row, at, outcome)], to: outcome };
}

/**
 * The attempt of `row` (assigned or running) is lost: its pilot halted or
 * stalled while it held it. See `interruptAttempt`.
 */
export function losePayload(row: PayloadRow, why: string, at: number, policy: StorePolicy): Ending {
  return interruptAttempt(row, 'lost', why, at, policy);
}

/**
 * The infrastructure ended the attempt of `row` (assigned or running):
 * record `kind` (lost or evicted) in its history and in the accounting, keep
 * the run for fair-share usage, then put the payload back in the queue when
 * it has attempts left and may be requeued, else fail it (or cancel it, when
 * an administrator asked for the kill). `ran` is what the pilot said of the
 * run (exit, signal, output), when it did.
 */
function interruptAttempt(
  row: PayloadRow,
  kind: Interruption,
  why: string,
  at: number,
  policy: StorePolicy,
  ran: Partial<Pick<PayloadRow, 'exit_code' | 'signal' | 'output_tail' | 'cpu_sec' | 'peak_rss_mb'>> = {},
): Ending {
  const first = movePayload(row, kind, { ...ran, message: why, ended_at: at }, why, at);
  const changes: Change[] = [first.change, ...charge(row, at, kind)];
  // the attempt's run still counts towards its group's recent usage (the cores were used)
  if (row.started_at !== null && row.pilot_id !== null && row.allocated_cores !== null) {
    changes.push({ kind: 'lost-attempt', payloadId: row.id, pilotId: row.pilot_id, cores: row.allocated_cores, startedAt: row.started_at, endedAt: at, cause: kind });
  }
  const interrupted = first.after;
  const next = afterInterruption({
    attempts: row.attempts,
    maxAttempts: policy.maxAttempts,
    requeue: row.requeue !== 0,
    cancelRequested: row.cancel_reason !== null,
  });
  switch (next) {
    case 'queued': {
      const set = { pilot_id: null, allocated_cores: null, assigned_at: null, started_at: null, ended_at: null, exit_code: null, signal: null, cpu_sec: null, peak_rss_mb: null };
      const why2 = `requeued after attempt ${row.attempts} of ${policy.maxAttempts} was ${kind}`;
      changes.push(movePayload(interrupted, 'queued', set, why2, at).change);
      return { changes, to: 'queued' };
    }
    case 'cancelled':
      changes.push(movePayload(interrupted, 'cancelled', { message: `cancelled: ${row.cancel_reason} (${why})` }, 'killed', at).change);
      return { changes: [...changes, ...countEnd(row, at, 'cancelled')], to: 'cancelled' };
    case 'failed: no requeue':
      changes.push(movePayload(interrupted, 'failed', { message: `${kind}, not requeued (submitted with requeue: false): ${why}` }, 'requeue: false', at).change);
      return { changes: [...changes, ...countEnd(row, at, 'failed')], to: 'failed' };
    case 'failed: last attempt': {
      const message = `${kind} on its last attempt (${row.attempts} of ${policy.maxAttempts}): ${why}`;
      changes.push(movePayload(interrupted, 'failed', { message }, 'no attempts left', at).change);
      return { changes: [...changes, ...countEnd(row, at, 'failed')], to: 'failed' };
    }
  }
}

/**
 * A payload its pilot will not run after all (released, or its pilot halted
 * before it started it): back to the queue with the claim's attempt given
 * back when `giveBackAttempt`, or cancelled when an administrator asked for
 * the kill meanwhile.
 */
export function unassign(row: PayloadRow, why: string, at: number, giveBackAttempt: boolean): Ending {
  if (row.cancel_reason !== null) {
    const moved = movePayload(row, 'cancelled', { message: `cancelled: ${row.cancel_reason}`, ended_at: at }, `killed (${why})`, at);
    return { changes: [moved.change], to: 'cancelled' };
  }
  const attempts = giveBackAttempt ? { attempts: Math.max(0, row.attempts - 1) } : {};
  const moved = movePayload(row, 'queued', { pilot_id: null, allocated_cores: null, assigned_at: null, ...attempts }, why, at);
  return { changes: [moved.change], to: 'queued' };
}

/**
 * A kill-payload instruction for `pilotId`, unless one for that payload is
 * among `pending` (its instructions not yet acknowledged; a pilot that keeps
 * reporting a payload is told once): that one (`existing`), or the change
 * that adds a new one.
 */
export function killOnce(
  pending: readonly Instruction[],
  pilotId: number,
  payloadId: number,
  reason: string,
  at: number,
): { existing: Instruction } | { add: Change } {
  const existing = pending.find((i) => i.type === 'kill-payload' && i.payloadId === payloadId);
  if (existing) return { existing };
  const body: InstructionRequest = { type: 'kill-payload', payloadId, reason };
  return { add: { kind: 'add-instruction', pilotId, body, at } };
}

/**
 * An administrator's kill of `row`, with `pending` its pilot's instructions
 * not yet acknowledged: a queued payload is cancelled at once (no
 * instruction); an assigned or running one is marked so that however its
 * attempt ends (but exit 0) it ends cancelled (the first reason given
 * stays), and its pilot gets a kill-payload instruction, or keeps the one it
 * has (`existing`; a second kill changes nothing but is answered with the
 * same instruction). Anything else is not the caller's to pass here.
 */
export function cancelPayload(
  row: PayloadRow,
  pending: readonly Instruction[],
  reason: string,
  at: number,
): { changes: Change[]; existing: Instruction | null } {
  if (row.state === 'queued') {
    const moved = movePayload(row, 'cancelled', { message: `cancelled: ${reason}`, ended_at: at, cancel_reason: reason }, `cancelled: ${reason}`, at);
    return { changes: [moved.change], existing: null };
  }
  if (row.pilot_id === null) throw new RangeError(`payload ${row.id} is ${row.state} without a pilot`);
  const changes: Change[] = row.cancel_reason === null ? [{ kind: 'cancel-reason', payloadId: row.id, reason }] : [];
  const kill = killOnce(pending, row.pilot_id, row.id, reason, at);
  if ('existing' in kill) return { changes, existing: kill.existing };
  return { changes: [...changes, kill.add], existing: null };
}
