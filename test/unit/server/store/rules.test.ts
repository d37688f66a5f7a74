/**
 * The store's rules as pure functions of rows and policy (apply-report.ts,
 * endings.ts, pilot-rules.ts): what a report, a lost attempt, a kill, a
 * heartbeat, a stall and a drain change, as the list of changes a store
 * applies. No database: these are what any store (SQLite today) must apply.
 */
import { describe, expect, it } from 'vitest';
import type { Instruction, Report } from '../../../../src/protocol/index.js';
import { isVmpilotError } from '../../../../src/shared/errors.js';
import { REFUSAL, effectOfReport, pilotStateChange, reportNeeds } from '../../../../src/server/store/apply-report.js';
import { movePayload, type Change } from '../../../../src/server/store/changes.js';
import { cancelPayload, killOnce, losePayload } from '../../../../src/server/store/endings.js';
import { drainOnce, effectOfHeartbeat, effectOfStall, strangers } from '../../../../src/server/store/pilot-rules.js';
import type { PayloadRow, PilotRow } from '../../../../src/server/store/rows.js';
import { heartbeat } from '../helpers.js';

const T0 = Date.UTC(2026, 0, 2, 10, 0, 0);
const POLICY = { maxAttempts: 3 };

const pilot = (p: Partial<PilotRow> = {}): PilotRow => ({
  id: 7, hostname: 'n1', version: '0.1.0', state: 'running', cores: 8, cores_used: 0, cores_busy: null, memory_mb: 8000,
  external_id: null, labels: '{}', registered_at: T0, last_contact_at: T0, last_heartbeat_at: null, deadline: null,
  applied_seq: 4, shutdown_code: null, shutdown_message: null, isolation: null, relay_name: null, relay_site: null, ...p,
});

const payload = (p: Partial<PayloadRow> = {}): PayloadRow => ({
  id: 42, name: 'job', grp: 'atlas', command: '["true"]', env: '{}', cores_min: 2, cores_max: 2, whole_node: 0, memory_mb: null,
  wall_sec: null, priority: 0, state: 'running', pilot_id: 7, allocated_cores: 2, exit_code: null, signal: null, output_tail: null, cpu_sec: null, peak_rss_mb: null,
  message: null, submitted_at: T0, assigned_at: T0 + 1000, started_at: T0 + 2000, ended_at: null, attempts: 1, requeue: 1,
  cancel_reason: null, ...p,
});

const ended = (r: Partial<Extract<Report, { type: 'payload-ended' }>> = {}): Report => ({
  type: 'payload-ended', seq: 5, at: T0 + 12_000, payloadId: 42, exitCode: 0, signal: null, ...r,
});

const kinds = (changes: Change[]) => changes.map((c) => c.kind);
const moves = (changes: Change[]) => changes.flatMap((c) => (c.kind === 'move-payload' ? [`${c.from}→${c.to}`] : []));

describe('effectOfReport: what a report changes', () => {
  it('asks only for the rows the report names', () => {
    expect(reportNeeds(pilot(), ended())).toEqual({ storedReport: false, payloadId: 42, held: false, instructionId: null });
    expect(reportNeeds(pilot(), { type: 'shutdown', seq: 5, at: T0, code: 300, message: 'no more work' })).toMatchObject({ held: true, payloadId: null });
    expect(reportNeeds(pilot(), ended({ seq: 3 }))).toMatchObject({ storedReport: true, payloadId: null });
    expect(reportNeeds(pilot(), ended({ seq: 9 }))).toEqual({ storedReport: false, payloadId: null, held: false, instructionId: null });
  });

  it('ends a payload done, charges its core-seconds and records the report under its seq', () => {
    const { outcome, changes } = effectOfReport(pilot(), ended(), { payload: payload() }, T0 + 20_000, POLICY);
    expect(outcome).toEqual({ kind: 'applied' });
    expect(kinds(changes)).toEqual(['move-payload', 'charge', 'report-applied']);
    expect(moves(changes)).toEqual(['running→done']);
    // 10 s on 2 cores, on the day it ended
    expect(changes[1]).toEqual({ kind: 'charge', day: '2026-01-02', group: 'atlas', pilotId: 7, coreSec: 20, wallSec: 10, outcome: 'done' });
  });

  it('keeps a reported end within what the server saw: never before the start, never after receipt', () => {
    const { changes } = effectOfReport(pilot(), ended({ at: T0 + 99_000_000 }), { payload: payload() }, T0 + 12_000, POLICY);
    expect(changes[1]).toMatchObject({ kind: 'charge', wallSec: 10, coreSec: 20 });
  });

  it('requeues an evicted payload with attempts left, keeps its run for usage, and fails it on its last attempt', () => {
    const evicted = ended({ exitCode: null, signal: 'SIGTERM', evicted: { reason: 'halt' } });
    const first = effectOfReport(pilot(), evicted, { payload: payload() }, T0 + 12_000, POLICY);
    expect(moves(first.changes)).toEqual(['running→evicted', 'evicted→queued']);
    expect(first.changes.find((c) => c.kind === 'lost-attempt')).toEqual({
      kind: 'lost-attempt', payloadId: 42, pilotId: 7, cores: 2, startedAt: T0 + 2000, endedAt: T0 + 12_000, cause: 'evicted',
    });
    const requeue = first.changes.find((c) => c.kind === 'move-payload' && c.to === 'queued');
    expect(requeue).toMatchObject({ historyPilotId: null, set: { pilot_id: null, allocated_cores: null, started_at: null } });

    const last = effectOfReport(pilot(), evicted, { payload: payload({ attempts: 3 }) }, T0 + 12_000, POLICY);
    expect(moves(last.changes)).toEqual(['running→evicted', 'evicted→failed']);
    expect(last.changes.find((c) => c.kind === 'count-end')).toMatchObject({ end: 'failed', group: 'atlas', pilotId: 7 });
  });

  it('ends a payload an administrator asked to kill cancelled, unless it exited 0', () => {
    const killed = payload({ cancel_reason: 'wrong input' });
    expect(moves(effectOfReport(pilot(), ended({ exitCode: 1 }), { payload: killed }, T0 + 12_000, POLICY).changes)).toEqual(['running→cancelled']);
    expect(moves(effectOfReport(pilot(), ended({ exitCode: 0 }), { payload: killed }, T0 + 12_000, POLICY).changes)).toEqual(['running→done']);
  });

  it('refuses a start of a payload not the pilot\'s, and tells it to kill it', () => {
    const report: Report = { type: 'payload-started', seq: 5, at: T0, payloadId: 42 };
    const { outcome, changes } = effectOfReport(pilot(), report, { payload: payload({ pilot_id: 8 }) }, T0 + 5000, POLICY);
    expect(outcome).toMatchObject({ kind: 'refused', code: REFUSAL.notYours });
    expect(changes).toEqual([
      { kind: 'report-applied', pilotId: 7, report, receivedAt: T0 + 5000, outcome: `refused ${REFUSAL.notYours}` },
      { kind: 'add-instruction', pilotId: 7, body: { type: 'kill-payload', payloadId: 42, reason: 'the server did not assign this payload to this pilot' }, at: T0 + 5000 },
    ]);
  });

  it('changes nothing for a resend, refuses a different report under an applied seq, and one out of order', () => {
    const report = ended({ seq: 4 });
    expect(effectOfReport(pilot(), report, { storedBody: JSON.stringify(report) }, T0, POLICY)).toEqual({ outcome: { kind: 'duplicate' }, changes: [] });
    const other = effectOfReport(pilot(), report, { storedBody: JSON.stringify({ ...report, exitCode: 3 }) }, T0, POLICY);
    expect(other).toMatchObject({ outcome: { kind: 'refused', code: REFUSAL.seqConflict }, changes: [] });
    expect(effectOfReport(pilot(), ended({ seq: 6 }), {}, T0, POLICY)).toMatchObject({ outcome: { kind: 'out-of-order', appliedSeq: 4 }, changes: [] });
  });

  it('on shutdown, puts the unstarted payloads back with their attempt kept and loses the running ones', () => {
    const report: Report = { type: 'shutdown', seq: 5, at: T0, code: 100, message: 'halt' };
    const held = [payload({ id: 1, state: 'assigned', started_at: null }), payload({ id: 2 })];
    const { changes } = effectOfReport(pilot(), report, { held }, T0 + 30_000, POLICY);
    expect(kinds(changes).slice(0, 2)).toEqual(['pilot-shutdown', 'pilot-state']);
    expect(moves(changes)).toEqual(['assigned→queued', 'running→lost', 'lost→queued']);
    expect(changes.find((c) => c.kind === 'move-payload' && c.payloadId === 1)).toMatchObject({ set: { pilot_id: null } });
  });

  it('acknowledges an instruction no earlier than it was sent, once', () => {
    const report: Report = { type: 'instruction-done', seq: 5, at: T0 - 60_000, instructionId: 3, ok: true };
    const first = effectOfReport(pilot(), report, { instruction: { id: 3, created_at: T0, done_at: null } }, T0 + 1000, POLICY);
    expect(first.changes[0]).toEqual({ kind: 'instruction-done', pilotId: 7, instructionId: 3, doneAt: T0, ok: true, message: null });
    const again = effectOfReport(pilot(), report, { instruction: { id: 3, created_at: T0, done_at: T0 } }, T0 + 1000, POLICY);
    expect(again).toMatchObject({ outcome: { kind: 'applied' } });
    expect(kinds(again.changes)).toEqual(['report-applied']);
    expect(effectOfReport(pilot(), report, { instruction: null }, T0, POLICY).outcome).toMatchObject({ code: REFUSAL.noInstruction });
  });

  it('never revives a halted pilot', () => {
    expect(pilotStateChange(pilot({ state: 'halted' }), 'running', 'heartbeat', T0)).toMatchObject({ result: { code: REFUSAL.halted }, changes: [] });
    expect(pilotStateChange(pilot({ state: 'halted' }), 'halted', 'again', T0)).toEqual({ result: { kind: 'applied' }, changes: [] });
  });
});

describe('lost attempts and kills', () => {
  it('refuses an illegal move before anything is changed', () => {
    let err: unknown;
    try {
      movePayload(payload({ state: 'done' }), 'queued', {}, 'again', T0);
    } catch (e) {
      err = e;
    }
    expect(isVmpilotError(err, 'VMP_CONFLICT')).toBe(true);
  });

  it('requeues a lost payload while attempts are left, cancels it when a kill was asked, and fails it with requeue: false', () => {
    expect(losePayload(payload(), 'stalled', T0 + 5000, POLICY).to).toBe('queued');
    expect(losePayload(payload({ cancel_reason: 'stop' }), 'stalled', T0 + 5000, POLICY).to).toBe('cancelled');
    const noRequeue = losePayload(payload({ requeue: 0 }), 'stalled', T0 + 5000, POLICY);
    expect(noRequeue.to).toBe('failed');
    expect(noRequeue.changes.find((c) => c.kind === 'charge')).toMatchObject({ outcome: 'lost', coreSec: 6 });
  });

  it('sends one kill per payload: a second kill is answered with the pending one', () => {
    const pending: Instruction[] = [{ id: 9, type: 'kill-payload', payloadId: 42, reason: 'first' }];
    expect(killOnce(pending, 7, 42, 'second', T0)).toEqual({ existing: pending[0] });
    expect(killOnce(pending, 7, 43, 'other', T0)).toEqual({ add: { kind: 'add-instruction', pilotId: 7, body: { type: 'kill-payload', payloadId: 43, reason: 'other' }, at: T0 } });
    const again = cancelPayload(payload({ cancel_reason: 'first' }), pending, 'second', T0);
    // the first reason stays, and no second instruction
    expect(again).toEqual({ changes: [], existing: pending[0] });
  });

  it('cancels a queued payload at once, and marks a held one with a kill to its pilot', () => {
    expect(moves(cancelPayload(payload({ state: 'queued', pilot_id: null }), [], 'x', T0).changes)).toEqual(['queued→cancelled']);
    expect(kinds(cancelPayload(payload(), [], 'x', T0).changes)).toEqual(['cancel-reason', 'add-instruction']);
  });
});

describe('heartbeats, stalls and drains', () => {
  it('tells a pilot once to kill a payload it runs that is not its own, even when listed twice', () => {
    const beat = heartbeat({ payloads: [{ id: 42, state: 'running', cores: 1 }, { id: 42, state: 'running', cores: 1 }, { id: 43, state: 'running', cores: 1 }] });
    const rows = new Map([[42, payload({ pilot_id: 8 })], [43, payload({ id: 43 })]]);
    const ids = strangers(pilot(), beat, rows);
    expect(ids).toEqual([42, 42]);
    const changes = effectOfHeartbeat(pilot(), beat, ids, [], T0);
    expect(changes.filter((c) => c.kind === 'add-instruction')).toHaveLength(1);
    expect(effectOfHeartbeat(pilot(), beat, ids, [{ id: 1, type: 'kill-payload', payloadId: 42 }], T0).filter((c) => c.kind === 'add-instruction')).toHaveLength(0);
    // a payload it is stopping is not a stranger
    expect(strangers(pilot(), heartbeat({ payloads: [{ id: 42, state: 'stopping', cores: 1 }] }), rows)).toEqual([]);
  });

  it('stalls a silent pilot and loses what it held, and leaves a halted one alone', () => {
    const stall = effectOfStall(pilot(), [payload({ id: 1 }), payload({ id: 2, attempts: 3 })], T0 + 600_000, POLICY);
    expect(stall).toMatchObject({ requeued: [1], failed: [2], cancelled: [] });
    expect(stall!.changes[0]).toMatchObject({ kind: 'pilot-state', to: 'stalled', reason: 'no contact for 600 s' });
    expect(effectOfStall(pilot({ state: 'halted' }), [], T0, POLICY)).toBeNull();
  });

  it('keeps one drain while it holds, and drains again a pilot that serves after an acknowledged one', () => {
    const drain = { id: 5, type: 'drain' } as const;
    expect(drainOnce([{ instruction: drain, doneAt: null, ok: null }], 'running', 7, { type: 'drain' }, T0)).toEqual({ existing: drain });
    expect(drainOnce([{ instruction: drain, doneAt: T0, ok: true }], 'draining', 7, { type: 'drain' }, T0)).toEqual({ existing: drain });
    expect(drainOnce([{ instruction: drain, doneAt: T0, ok: true }], 'running', 7, { type: 'drain' }, T0)).toHaveProperty('add');
  });
});
