/**
 * What the PostgreSQL store reads beyond single rows, as aggregates.ts,
 * listings.ts, overview.ts and pilot-records.ts read it from SQLite: run
 * intervals (fair-share usage), accounting, counts, the listings newest
 * first in pages, the overview's figures and a pilot's instructions and
 * last heartbeat. Counts are GROUP BY over indexes here (pg-migrations.ts
 * says why there are no counter tables). Each runs on the pool or inside a
 * caller's transaction (`q`).
 */
import type { HeartbeatRequest, Instruction, InstructionView, PilotState } from '../../protocol/index.js';
import type { RunInterval } from '../queue/usage.js';
import type { Pg } from './pg-sql.js';
import type { DrainRecord } from './pilot-rules.js';
import { PAYLOAD_LIST_COLUMNS, instruction, payloadDerived, type InstructionRow, type PayloadListRow, type PilotRow } from './rows.js';
import type { AccountingFilter, AccountingRow, AccountingTotal, InstructionRecord, OverviewFigures, PayloadFilter, PilotFilter, StoreCounts } from './store.js';
import { payloadOrderBy, pilotOrderBy } from './list-order.js';

const DERIVED = payloadDerived('GREATEST');

/** Payload rows, every column, with the derived columns (rows.ts PAYLOAD_SELECT). */
export const PG_PAYLOAD_SELECT = `SELECT payloads.*, ${DERIVED} FROM payloads`;

/** Payload rows as a listing reads them (rows.ts PAYLOAD_LIST_SELECT). */
const PG_PAYLOAD_LIST_SELECT = `SELECT ${PAYLOAD_LIST_COLUMNS}, ${DERIVED} FROM payloads`;

/** Stretches of running that ended after `since`, or still run. */
export async function pgRunIntervals(q: Pg, since: number): Promise<RunInterval[]> {
  return q.all<RunInterval>(
    `SELECT grp AS "group", allocated_cores AS cores, started_at AS "startedAt", ended_at AS "endedAt" FROM payloads
       WHERE ended_at IS NULL AND started_at IS NOT NULL AND allocated_cores IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM lost_attempts l WHERE l.payload_id = payloads.id AND l.started_at = payloads.started_at)
     UNION ALL
     SELECT grp, allocated_cores, started_at, ended_at FROM payloads
       WHERE ended_at > ? AND started_at IS NOT NULL AND allocated_cores IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM lost_attempts l WHERE l.payload_id = payloads.id AND l.started_at = payloads.started_at)
     UNION ALL
     SELECT p.grp, s.cores, s.started_at, s.ended_at FROM lost_attempts s JOIN payloads p ON p.id = s.payload_id
       WHERE s.ended_at > ?`,
    since,
    since,
  );
}

const ACCOUNTING_COLUMNS = `core_sec AS "coreSec", wall_sec AS "wallSec", done, failed, cancelled, evicted,
  done_core_sec AS "doneCoreSec", failed_core_sec AS "failedCoreSec", cancelled_core_sec AS "cancelledCoreSec", evicted_core_sec AS "evictedCoreSec"`;

/** Accounting rows matching `f`, by day, group, pilot. */
export async function pgAccounting(q: Pg, f: AccountingFilter): Promise<AccountingRow[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (f.from) (where.push('day >= ?'), params.push(f.from));
  if (f.to) (where.push('day <= ?'), params.push(f.to));
  if (f.group) (where.push('grp = ?'), params.push(f.group));
  if (f.pilotId !== undefined) (where.push('pilot_id = ?'), params.push(f.pilotId));
  const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
  return q.all<AccountingRow>(
    `SELECT day, grp AS "group", pilot_id AS "pilotId", ${ACCOUNTING_COLUMNS} FROM accounting ${clause} ORDER BY day, grp, pilot_id`,
    ...params,
  );
}

/** Accounting totals by group since the start: every column summed over days and pilots. */
export async function pgAccountingByGroup(q: Pg): Promise<AccountingTotal[]> {
  return q.all<AccountingTotal>(
    `SELECT grp AS "group", SUM(core_sec) AS "coreSec", SUM(wall_sec) AS "wallSec", SUM(done) AS done, SUM(failed) AS failed,
       SUM(cancelled) AS cancelled, SUM(evicted) AS evicted, SUM(done_core_sec) AS "doneCoreSec", SUM(failed_core_sec) AS "failedCoreSec",
       SUM(cancelled_core_sec) AS "cancelledCoreSec", SUM(evicted_core_sec) AS "evictedCoreSec"
       FROM accounting GROUP BY grp ORDER BY grp`,
  );
}

/** Pilots and payloads by state, queued payloads by group, core-seconds by how attempts ended. */
export async function pgCounts(q: Pg): Promise<StoreCounts> {
  const by = (rows: { k: string; n: number }[]) => Object.fromEntries(rows.map((r) => [r.k, r.n]));
  const sums = await q.get<{ done: number | null; failed: number | null; cancelled: number | null; evicted: number | null }>(
    `SELECT SUM(done_core_sec) AS done, SUM(failed_core_sec) AS failed, SUM(cancelled_core_sec) AS cancelled,
       SUM(evicted_core_sec) AS evicted FROM accounting`,
  );
  return {
    pilotsByState: by(await q.all('SELECT state AS k, COUNT(*) AS n FROM pilots GROUP BY state')),
    payloadsByState: by(await q.all('SELECT state AS k, COUNT(*) AS n FROM payloads GROUP BY state')),
    queuedByGroup: by(await q.all("SELECT grp AS k, COUNT(*) AS n FROM payloads WHERE state = 'queued' GROUP BY grp")),
    coreSecByOutcome: { done: sums?.done ?? 0, failed: sums?.failed ?? 0, cancelled: sums?.cancelled ?? 0, evicted: sums?.evicted ?? 0 },
  };
}

/** Pilots matching `f`, newest first, read with `select` (the pilot columns over `pilots p`). */
export async function pgListPilots(q: Pg, select: string, f: PilotFilter): Promise<PilotRow[]> {
  const states = f.states ? [...new Set<PilotState>(f.states)] : null;
  const where = ['p.id < ?'];
  const params: unknown[] = [f.before ?? Number.MAX_SAFE_INTEGER];
  if (states) (where.push('p.state = ANY(?)'), params.push(states));
  return q.all<PilotRow>(`${select} WHERE ${where.join(' AND ')} ORDER BY ${pilotOrderBy(f.sort)} LIMIT ? OFFSET ?`, ...params, f.limit ?? null, f.offset ?? 0);
}

/** How many pilots match `f`'s states. */
export async function pgCountPilots(q: Pg, f: PilotFilter): Promise<number> {
  const states = f.states ? [...new Set<PilotState>(f.states)] : null;
  if (!states) return (await q.get<{ n: number }>('SELECT COUNT(*) AS n FROM pilots'))?.n ?? 0;
  return (await q.get<{ n: number }>('SELECT COUNT(*) AS n FROM pilots WHERE state = ANY(?)', states))?.n ?? 0;
}

/** The WHERE clause and its parameters of a payload filter, paging left out. */
function payloadWhere(f: PayloadFilter): { where: string[]; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  if (f.state) (where.push('state = ?'), params.push(f.state));
  if (f.group) (where.push('grp = ?'), params.push(f.group));
  if (f.pilotId !== undefined) (where.push('pilot_id = ?'), params.push(f.pilotId));
  // strpos(), not LIKE: no wildcard in the text can widen the search
  if (f.nameContains) (where.push('strpos(name, ?) > 0'), params.push(f.nameContains));
  return { where, params };
}

/** Payloads matching `f`, newest first (or oldest first), without `env` and `output_tail`. */
export async function pgListPayloads(q: Pg, f: PayloadFilter): Promise<PayloadListRow[]> {
  const { where, params } = payloadWhere(f);
  if (f.before !== undefined) (where.push(f.oldestFirst ? 'id > ?' : 'id < ?'), params.push(f.before));
  const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
  return q.all<PayloadListRow>(
    `${PG_PAYLOAD_LIST_SELECT} ${clause} ORDER BY ${payloadOrderBy(f.sort ?? (f.oldestFirst ? { key: 'id', descending: false } : undefined))} LIMIT ? OFFSET ?`,
    ...params,
    f.limit ?? null,
    f.offset ?? 0,
  );
}

/** How many payloads match `f` (paging ignored). */
export async function pgCountPayloads(q: Pg, f: PayloadFilter): Promise<number> {
  const { where, params } = payloadWhere(f);
  const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
  return (await q.get<{ n: number }>(`SELECT COUNT(*) AS n FROM payloads ${clause}`, ...params))?.n ?? 0;
}

/** Cores of the pilots that can run payloads, cores allocated now, and each group's queue with its oldest submission. */
export async function pgOverviewFigures(q: Pg): Promise<OverviewFigures> {
  const cores = await q.get<{ n: number | null }>("SELECT SUM(cores) AS n FROM pilots WHERE state IN ('booting', 'running', 'draining')");
  const used = await q.get<{ n: number | null }>("SELECT SUM(allocated_cores) AS n FROM payloads WHERE state IN ('assigned', 'running')");
  const queues = await q.all<{ group: string; queued: number; oldestSubmittedAt: number }>(
    `SELECT grp AS "group", COUNT(*) AS queued, MIN(submitted_at) AS "oldestSubmittedAt" FROM payloads WHERE state = 'queued' GROUP BY grp ORDER BY grp`,
  );
  return { coresTotal: cores?.n ?? 0, coresUsed: used?.n ?? 0, queues };
}

interface InstructionRecordRow extends InstructionRow {
  created_at: number;
  done_at: number | null;
  ok: number | null;
  message: string | null;
}

const record = (r: InstructionRecordRow): InstructionRecord => ({
  instruction: instruction(r),
  createdAt: r.created_at,
  doneAt: r.done_at,
  ok: r.ok === null ? null : r.ok === 1,
  message: r.message,
});

/** A pilot's newest `limit` instructions and its last heartbeat's body. */
export async function pgPilotDetail(
  q: Pg,
  pilotId: number,
  limit: number,
): Promise<{ instructions: InstructionRecord[]; lastHeartbeat: { at: number; beat: HeartbeatRequest } | null }> {
  const rows = await q.all<InstructionRecordRow>(
    'SELECT id, pilot_id, body, created_at, done_at, ok, message FROM instructions WHERE pilot_id = ? ORDER BY id DESC LIMIT ?',
    pilotId,
    limit,
  );
  const beat = await q.get<{ at: number | null; body: string | null }>('SELECT last_heartbeat_at AS at, last_heartbeat AS body FROM pilots WHERE id = ?', pilotId);
  const lastHeartbeat = beat?.at != null && beat.body ? { at: beat.at, beat: JSON.parse(beat.body) as HeartbeatRequest } : null;
  return { instructions: rows.map(record), lastHeartbeat };
}

/** Every instruction sent to `pilotId`, oldest first, with its acknowledgement. */
export async function pgInstructionsOf(q: Pg, pilotId: number): Promise<InstructionView[]> {
  const rows = await q.all<InstructionRecordRow>('SELECT id, pilot_id, body, created_at, done_at, ok, message FROM instructions WHERE pilot_id = ? ORDER BY id', pilotId);
  return rows.map(record);
}

/** The last heartbeat `pilotId` sent, as it sent it, or null. */
export async function pgLastHeartbeat(q: Pg, pilotId: number): Promise<HeartbeatRequest | null> {
  const row = await q.get<{ b: string | null }>('SELECT last_heartbeat AS b FROM pilots WHERE id = ?', pilotId);
  return row?.b ? (JSON.parse(row.b) as HeartbeatRequest) : null;
}

/** The instructions sent to `pilotId` that it has not acknowledged, oldest first. */
export async function pgPendingOf(q: Pg, pilotId: number): Promise<Instruction[]> {
  const rows = await q.all<{ id: number; body: string }>('SELECT id, body FROM instructions WHERE pilot_id = ? AND done_at IS NULL ORDER BY id', pilotId);
  return rows.map((r) => ({ id: r.id, ...(JSON.parse(r.body) as object) }) as Instruction);
}

/** The drain instructions sent to `pilotId`, newest first, with their acknowledgements. */
export async function pgDrainsOf(q: Pg, pilotId: number): Promise<DrainRecord[]> {
  const rows = await q.all<InstructionRecordRow>('SELECT id, pilot_id, body, created_at, done_at, ok, message FROM instructions WHERE pilot_id = ? ORDER BY id DESC', pilotId);
  return rows
    .filter((r) => (JSON.parse(r.body) as { type?: string }).type === 'drain')
    .map((r) => ({ instruction: instruction(r), doneAt: r.done_at, ok: r.ok === null ? null : r.ok === 1 }));
}
