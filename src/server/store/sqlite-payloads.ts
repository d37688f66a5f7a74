/**
 * The SQLite store's payloads: submit, read, the claim, redelivery and an
 * administrator's kill. Reading and applying only: the claim's choice is the
 * queue's picker (queue/pick.ts), a kill's effect is endings.ts
 * `cancelPayload`, each applied by sqlite-apply.ts in the transaction that
 * read its rows.
 */
import path from 'node:path';
import type { Assignment, Instruction, PayloadHistoryEntry, PayloadView, SubmitRequest } from '../../protocol/index.js';
import { ONE_CORE, noRequirements } from '../../protocol/index.js';
import { VmpilotError } from '../../shared/errors.js';
import type { Candidate, Offer, Picker } from '../queue/offer.js';
import { CANDIDATE_WINDOW } from '../queue/pick.js';
import { groupUsage, usageHorizonMs } from '../queue/usage.js';
import { runIntervalsIn } from './aggregates.js';
import { movePayload } from './changes.js';
import { cancelPayload } from './endings.js';
import { countPayloadsIn, listPayloadsIn } from './listings.js';
import { assignment, payloadRow } from './payload-ops.js';
import { pendingOf } from './pilot-records.js';
import { PAYLOAD_SELECT, candidate, payloadView, resubmission, type PayloadRow } from './rows.js';
import { applyChanges } from './sqlite-apply.js';
import type { Sql } from './sql.js';
import type { PayloadFilter, PayloadStore, Resubmitted } from './store.js';

/** The default half-life of recent usage for fair shares, in seconds. */
export const DEFAULT_HALF_LIFE_SEC = 3600;

/**
 * The first CANDIDATE_WINDOW queued payloads of every group, most urgent and
 * oldest first, among those without requirements and again among those with
 * them: two index ranges per group (payloads_group_queue_plain, _required),
 * so a claim costs the same with 20 or 20,000 payloads queued, and a group's
 * head of GPU (or site) work that this pilot cannot run does not hide the
 * group's plain work behind it. `only`: of these groups alone (null: all).
 */
function queuedCandidates(sql: Sql, only: readonly string[] | null = null): PayloadRow[] {
  // the groups with work queued, from the counts the triggers keep (DISTINCT over the queue read every queued row)
  const queuedGroups = sql.all<{ grp: string }>(`SELECT grp FROM payload_counts WHERE state = 'queued' AND n > 0`);
  // a pilot restricted to some groups is never shown another group's work, whatever picker is configured
  const groups = only ? queuedGroups.filter(({ grp }) => only.includes(grp)) : queuedGroups;
  const rows = groups.flatMap(({ grp }) =>
    ['requirements IS NULL', 'requirements IS NOT NULL'].flatMap((which) =>
      sql.all<PayloadRow>(`SELECT * FROM payloads WHERE state = 'queued' AND grp = ? AND ${which} ORDER BY priority DESC, id LIMIT ?`, grp, CANDIDATE_WINDOW),
    ),
  );
  return rows.sort((a, b) => b.priority - a.priority || a.id - b.id);
}

/**
 * Each group's decayed usage at `at` (core-seconds, half-life
 * `halfLifeSec`): what the picker weighs shares against, for a claim and for
 * the director's demand alike.
 */
export function usageAt(sql: Sql, at: number, halfLifeSec: number): Map<string, number> {
  return groupUsage(runIntervalsIn(sql, at - usageHorizonMs(halfLifeSec)), at, halfLifeSec);
}

/** Insert one queued payload and its history row (inside the caller's transaction); its id. */
function insertPayload(sql: Sql, r: SubmitRequest, at: number, reason = 'submitted'): number {
  const cores = r.cores ?? ONE_CORE;
  const name = r.name ?? path.basename(r.command[0] ?? 'payload');
  const { id } = sql.run(
    `INSERT INTO payloads (name, grp, command, env, cores_min, cores_max, whole_node, memory_mb, wall_sec, priority,
       state, submitted_at, requeue, requirements) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)`,
    name, r.group ?? 'default', JSON.stringify(r.command), JSON.stringify(r.env ?? {}), cores.min, cores.max,
    cores.wholeNode ? 1 : 0, r.memoryMb ?? null, r.wallSec ?? null, r.priority ?? 0, at, r.requeue === false ? 0 : 1,
    noRequirements(r.requirements) ? null : JSON.stringify(r.requirements),
  );
  sql.run("INSERT INTO payload_states (payload_id, state, reason, at) VALUES (?, 'queued', ?, ?)", id, reason, at);
  return id;
}

/** The payloads part of the SQLite store on `sql`. */
export function sqlitePayloads(sql: Sql): PayloadStore {
  const getPayload = async (id: number): Promise<PayloadView | null> => {
    const row = sql.get<PayloadRow>(`${PAYLOAD_SELECT} WHERE id = ?`, id);
    return row ? payloadView(row, true) : null;
  };
  return {
    async submitPayload(r: SubmitRequest, at: number) {
      const id = sql.tx(() => insertPayload(sql, r, at));
      const view = await getPayload(id);
      if (!view) throw new VmpilotError('VMP_INTERNAL', `payload ${id} vanished after submit`);
      return view;
    },

    async submitPayloads(list: SubmitRequest[], at: number) {
      return sql.tx(() => list.map((r) => insertPayload(sql, r, at)));
    },

    getPayload,

    async resubmitPayload(id: number, at: number): Promise<Resubmitted | null> {
      return sql.tx(() => {
        const row = sql.get<PayloadRow>('SELECT * FROM payloads WHERE id = ?', id);
        if (!row) return null;
        const r = resubmission(row);
        return r.kind === 'copy' ? { kind: 'resubmitted', id: insertPayload(sql, r.request, at, r.reason) } : r;
      });
    },


    async payloadHistory(id: number): Promise<PayloadHistoryEntry[]> {
      return sql.all<PayloadHistoryEntry>('SELECT state, pilot_id AS pilotId, reason, at FROM payload_states WHERE payload_id = ? ORDER BY id', id);
    },

    async listPayloads(f: PayloadFilter) {
      return listPayloadsIn(sql, f).map((row) => payloadView(row));
    },

    async countPayloads(f: PayloadFilter) {
      return countPayloadsIn(sql, f);
    },

    async claimPayload(pilotId: number, offer: Offer, pick: Picker, at: number, halfLifeSec = DEFAULT_HALF_LIFE_SEC): Promise<Assignment | null> {
      return sql.tx(() => {
        const rows = queuedCandidates(sql, offer.groups ?? null);
        if (rows.length === 0) return null;
        const usage = usageAt(sql, at, halfLifeSec);
        const choice = pick(rows.map(candidate), offer, usage);
        if (!choice) return null;
        const row = rows.find((r) => r.id === choice.id);
        if (!row) throw new VmpilotError('VMP_INTERNAL', `picker chose payload ${choice.id}, which is not queued`);
        const set = { pilot_id: pilotId, allocated_cores: choice.cores, assigned_at: at, attempts: row.attempts + 1 };
        const moved = movePayload(row, 'assigned', set, `assigned to pilot ${pilotId}`, at);
        applyChanges(sql, [moved.change]);
        return assignment(moved.after);
      });
    },

    async waitingCandidates(): Promise<Candidate[]> {
      return queuedCandidates(sql).map(candidate);
    },

    async redeliverable(pilotId: number, holding: number[]) {
      const rows = sql.all<PayloadRow>(
        // a payload an administrator killed meanwhile is not handed out again
        "SELECT * FROM payloads WHERE pilot_id = ? AND state = 'assigned' AND cancel_reason IS NULL ORDER BY assigned_at, id",
        pilotId,
      );
      const row = rows.find((r) => !holding.includes(r.id));
      return row ? assignment(row) : null;
    },

    async queuedCount() {
      return sql.get<{ n: number }>("SELECT COUNT(*) AS n FROM payloads WHERE state = 'queued'")?.n ?? 0;
    },

    async killPayload(payloadId: number, reason: string, at: number): Promise<Instruction | null> {
      return sql.tx(() => {
        const row = payloadRow(sql, payloadId);
        if (!row) throw new VmpilotError('VMP_NOT_FOUND', `no payload ${payloadId}`);
        const held = (row.state === 'assigned' || row.state === 'running') && row.pilot_id !== null;
        if (row.state !== 'queued' && !held) throw new VmpilotError('VMP_CONFLICT', `payload ${payloadId} has already ended (${row.state})`);
        const { changes, existing } = cancelPayload(row, row.pilot_id === null ? [] : pendingOf(sql, row.pilot_id), reason, at);
        const added = applyChanges(sql, changes);
        return row.state === 'queued' ? null : (existing ?? added[0] ?? null);
      });
    },
  };
}
