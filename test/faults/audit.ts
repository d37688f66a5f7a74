/**
 * The audit every fault test ends with: nothing a user submitted is lost or
 * run twice, and every attempt is counted. It compares four sources: the ids
 * the test submitted, the server's records (admin API), each payload's
 * history (GET /v1/payloads/:id/history, when given), and the run log the
 * payloads themselves wrote (test/fixtures/faults/run.sh: a "start" line when
 * a run begins, an "end" line with its status when it ends, an "overlap" line
 * when it began while an earlier run of the same payload was still alive).
 * Payloads with another command are checked against the server's records only.
 *
 * Definitions (what `audit` counts as a violation):
 * - lost: a submitted id the server does not list, lists more than once, or
 *   lists in a state other than done, failed, cancelled or queued
 *   (assigned/running at the end of a test means nobody will ever finish
 *   it); or a run that ended with status 0 whose payload the server does not
 *   record as done.
 * - not exactly once: a payload in a final state (done, failed, cancelled)
 *   whose history does not end with that state, or holds a final state more
 *   than once; a queued payload whose history does not end queued.
 * - attempts not counted: more attempts than `maxAttempts`; fewer attempts
 *   than the attempts its history says the infrastructure ended (evicted,
 *   lost); more than the times it was handed out (assigned); or a run that
 *   was stopped (a start and no end line) that is neither an interrupted
 *   attempt (evicted, lost) nor the failed or cancelled end of the payload.
 * - invented: a payload the server lists that was never submitted, or a run
 *   of an id that was never submitted; a payload recorded done with no run
 *   that ended with status 0; more runs than the server handed it out
 *   (`attempts`).
 * - run twice: two runs of one payload that overlap in time (an "overlap"
 *   line, or a run starting before an earlier one's end line), or any run
 *   starting after a run of the same payload ended with status 0. A run that
 *   started and never ended (its pilot vanished, its attempt was lost) may be
 *   followed by another run: that is the retry the protocol promises.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { PayloadHistoryEntry, PayloadView } from '../../src/protocol/index.js';
import { FIXTURES, type admin } from '../integration/harness.js';

const RUN_SH = path.join(FIXTURES, 'faults/run.sh');

/**
 * The command of a payload that logs its runs to `log`, sleeps `seconds` and
 * exits `status`; `runSh`: a copy of run.sh to run instead (one that payload
 * accounts can reach when the checkout is closed to them).
 */
export function logged(log: string, seconds: number | `${number}/${number}`, status = 0, runSh = RUN_SH): string[] {
  return [runSh, log, String(seconds), String(status)];
}

/** One run of a payload, as its run log tells it. */
export interface Run {
  id: number;
  pid: number;
  startNs: bigint;
  endNs: bigint | null;
  status: number | null;
}

/** The runs in a run log, by payload id, in order of start; plus the overlap lines. */
export function readRuns(log: string): { runs: Map<number, Run[]>; overlaps: string[] } {
  const runs = new Map<number, Run[]>();
  const overlaps: string[] = [];
  const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
  for (const line of text.split('\n').filter(Boolean)) {
    const [kind, id, pid, ns, status] = line.split(' ');
    if (kind === 'overlap') overlaps.push(line);
    else if (kind === 'start') {
      const list = runs.get(Number(id)) ?? [];
      list.push({ id: Number(id), pid: Number(pid), startNs: BigInt(ns!), endNs: null, status: null });
      runs.set(Number(id), list);
    } else if (kind === 'end') {
      const run = runs.get(Number(id))?.find((r) => r.pid === Number(pid) && r.endNs === null);
      if (run) Object.assign(run, { endNs: BigInt(ns!), status: Number(status) });
      else overlaps.push(`end without start: ${line}`);
    }
  }
  return { runs, overlaps };
}

/** What the audit found; `violations` is empty when nothing was lost, invented or run twice. */
export interface AuditResult {
  violations: string[];
  byState: Record<string, number>;
  runs: Map<number, Run[]>;
}

/** What the audit may also check: each payload's history, and the server's maxAttempts (default 3). */
export interface AuditOptions {
  histories?: ReadonlyMap<number, readonly PayloadHistoryEntry[]>;
  maxAttempts?: number;
}

const FINAL = ['done', 'failed', 'cancelled'];

/**
 * Audit the server's records (`payloads`, all of them) against the submitted
 * ids and the run log, and against each payload's history when given.
 */
export function audit(submitted: number[], payloads: PayloadView[], log: string, options: AuditOptions = {}): AuditResult {
  const maxAttempts = options.maxAttempts ?? 3;
  const v: string[] = [];
  const { runs, overlaps } = readRuns(log);
  const sub = new Set(submitted);
  if (sub.size !== submitted.length) v.push(`the server gave one id to two submissions: ${submitted.join(',')}`);
  const byId = new Map<number, PayloadView>();
  const byState: Record<string, number> = {};
  for (const p of payloads) {
    if (byId.has(p.id)) v.push(`payload ${p.id} listed twice`);
    byId.set(p.id, p);
    if (!sub.has(p.id)) v.push(`payload ${p.id} was never submitted`);
    byState[p.state] = (byState[p.state] ?? 0) + 1;
  }
  for (const line of overlaps) v.push(`run twice (overlapping): ${line}`);
  for (const id of runs.keys()) if (!sub.has(id)) v.push(`a run of payload ${id}, which was never submitted`);
  for (const id of submitted) {
    const p = byId.get(id);
    const mine = runs.get(id) ?? [];
    if (!p) {
      v.push(`payload ${id} lost: the server does not list it`);
      continue;
    }
    if (![...FINAL, 'queued'].includes(p.state)) v.push(`payload ${id} left ${p.state}`);
    if (mine.length > p.attempts) v.push(`payload ${id} ran ${mine.length} times but was handed out ${p.attempts} times`);
    if (p.attempts > maxAttempts) v.push(`payload ${id} had ${p.attempts} attempts, more than maxAttempts ${maxAttempts}`);
    const history = options.histories?.get(id);
    if (history) v.push(...historyViolations(p, history, mine));
    const ok = mine.filter((r) => r.status === 0);
    if (p.state === 'done' && ok.length === 0 && p.command[0] !== undefined && path.basename(p.command[0]) === 'run.sh') v.push(`payload ${id} is done but no run of it ended with status 0`);
    if (ok.length > 0 && p.state !== 'done') v.push(`payload ${id} ran to status 0 but the server says ${p.state}`);
    for (let i = 1; i < mine.length; i++) {
      const prev = mine[i - 1]!;
      const run = mine[i]!;
      if (prev.endNs !== null && prev.endNs > run.startNs) v.push(`payload ${id} run twice: run ${i + 1} started before run ${i} ended`);
      if (mine.slice(0, i).some((r) => r.status === 0)) v.push(`payload ${id} run twice: run ${i + 1} after a run that succeeded`);
    }
  }
  return { violations: v, byState, runs };
}

/** What a payload's history says against its record and its runs (see the definitions above). */
function historyViolations(p: PayloadView, history: readonly PayloadHistoryEntry[], runs: Run[]): string[] {
  const v: string[] = [];
  const id = p.id;
  const last = history.at(-1);
  if (last?.state !== p.state) v.push(`payload ${id} is ${p.state} but its history ends ${last?.state ?? 'empty'}`);
  const finals = history.filter((h) => FINAL.includes(h.state));
  if (finals.length > (FINAL.includes(p.state) ? 1 : 0)) v.push(`payload ${id} ended ${finals.length} times: ${finals.map((h) => h.state).join(', ')}`);
  const interrupted = history.filter((h) => h.state === 'evicted' || h.state === 'lost').length;
  const handedOut = history.filter((h) => h.state === 'assigned').length;
  if (p.attempts < interrupted) v.push(`payload ${id} has ${p.attempts} attempts but ${interrupted} were evicted or lost`);
  if (p.attempts > handedOut) v.push(`payload ${id} has ${p.attempts} attempts but was assigned ${handedOut} times`);
  const stopped = runs.filter((r) => r.endNs === null).length;
  const endedByStop = p.state === 'failed' || p.state === 'cancelled' ? 1 : 0;
  if (stopped > interrupted + endedByStop) v.push(`payload ${id} had ${stopped} runs stopped but its history counts ${interrupted} evicted or lost`);
  return v;
}

/** The server's records for an audit: every payload and each one's history. */
export async function serverRecords(api: ReturnType<typeof admin>): Promise<{ payloads: PayloadView[]; histories: Map<number, PayloadHistoryEntry[]> }> {
  const payloads = await api.jobs();
  const histories = new Map<number, PayloadHistoryEntry[]>();
  for (const p of payloads) histories.set(p.id, await api.history(p.id));
  return { payloads, histories };
}

/** Audit everything the server has against the submitted ids and the run log, histories included. */
export async function auditServer(api: ReturnType<typeof admin>, submitted: number[], log: string, maxAttempts?: number): Promise<AuditResult> {
  const { payloads, histories } = await serverRecords(api);
  return audit(submitted, payloads, log, { histories, ...(maxAttempts === undefined ? {} : { maxAttempts }) });
}

/** The histories of every payload the server has, as `audit`'s options. */
export async function historiesOf(api: ReturnType<typeof admin>): Promise<AuditOptions> {
  return { histories: (await serverRecords(api)).histories };
}
