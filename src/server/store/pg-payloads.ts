/**
 * The PostgreSQL store's payloads, as sqlite-payloads.ts: submit, read, the
 * claim, redelivery and an administrator's kill. The claim is the one place
 * where several replicas race for the same rows: in one transaction it
 * locks the fair-share candidate window (each group's first
 * CANDIDATE_WINDOW queued payloads, plain and with requirements) with
 * `FOR UPDATE SKIP LOCKED`, so rows another claim holds are passed over
 * rather than waited for, lets the same picker choose among the rows it
 * holds, and moves the chosen one queued → assigned. A row another replica
 * assigned and committed meanwhile no longer matches `state = 'queued'`
 * when PostgreSQL re-checks it for the lock, so no payload is handed out
 * twice; the others stay queued for the next claim.
 */
import path from 'node:path';
import type { Assignment, Instruction, PayloadHistoryEntry, PayloadView, SubmitRequest } from '../../protocol/index.js';
import { ONE_CORE, noRequirements } from '../../protocol/index.js';
import { VmpilotError } from '../../shared/errors.js';
import type { Candidate, Offer, Picker } from '../queue/offer.js';
import { CANDIDATE_WINDOW } from '../queue/pick.js';
import { groupUsage, usageHorizonMs } from '../queue/usage.js';
import { movePayload } from './changes.js';
import { cancelPayload } from './endings.js';
import { assignment } from './payload-ops.js';
import { applyChanges } from './pg-apply.js';
import { pgPayloadRow } from './pg-pilots.js';
import { PG_PAYLOAD_SELECT, pgCountPayloads, pgListPayloads, pgPendingOf, pgRunIntervals } from './pg-reads.js';
import type { Pg, PgPool } from './pg-sql.js';
import { candidate, payloadView, resubmission, type PayloadRow } from './rows.js';
import { DEFAULT_HALF_LIFE_SEC } from './sqlite-payloads.js';
import type { PayloadFilter, PayloadStore, Resubmitted } from './store.js';

/**
 * The groups with payloads queued, by walking the (state, grp) index one
 * group at a time (a loose index scan): as many index steps as groups, not
 * a pass over every queued payload.
 */
async function queuedGroups(q: Pg): Promise<string[]> {
  const rows = await q.all<{ grp: string }>(
    `WITH RECURSIVE g AS (
       SELECT MIN(grp) AS grp FROM payloads WHERE state = 'queued'
       UNION ALL
       SELECT (SELECT MIN(grp) FROM payloads WHERE state = 'queued' AND grp > g.grp) FROM g WHERE g.grp IS NOT NULL
     ) SELECT grp FROM g WHERE grp IS NOT NULL`,
  );
  return rows.map((r) => r.grp);
}

/**
 * The first CANDIDATE_WINDOW queued payloads of every group (of `only`, when
 * given), most urgent and oldest first, among those without requirements and
 * again among those with them (as sqlite-payloads.ts reads them). `lock`:
 * each window is locked FOR UPDATE SKIP LOCKED for the rest of the
 * transaction (the claim); otherwise read as it is.
 */
async function queuedCandidates(q: Pg, only: readonly string[] | null, lock: boolean): Promise<PayloadRow[]> {
  const groups = (await queuedGroups(q)).filter((grp) => !only || only.includes(grp));
  const rows: PayloadRow[] = [];
  for (const grp of groups) {
    for (const which of ['requirements IS NULL', 'requirements IS NOT NULL']) {
      rows.push(
        ...(await q.all<PayloadRow>(
          `SELECT * FROM payloads WHERE state = 'queued' AND grp = ? AND ${which} ORDER BY priority DESC, id LIMIT ?${lock ? ' FOR UPDATE SKIP LOCKED' : ''}`,
          grp,
          CANDIDATE_WINDOW,
        )),
      );
    }
  }
  return rows.sort((a, b) => b.priority - a.priority || a.id - b.id);
}

/** Each group's decayed usage at `at`: what the picker weighs shares against. */
export async function pgUsageAt(q: Pg, at: number, halfLifeSec: number): Promise<Map<string, number>> {
  return groupUsage(await pgRunIntervals(q, at - usageHorizonMs(halfLifeSec)), at, halfLifeSec);
}

/** Insert one queued payload and its history row (inside the caller's transaction); its id. */
async function insertPayload(q: Pg, r: SubmitRequest, at: number, reason = 'submitted'): Promise<number> {
  const cores = r.cores ?? ONE_CORE;
  const name = r.name ?? path.basename(r.command[0] ?? 'payload');
  const { rows } = await q.run(
    `INSERT INTO payloads (name, grp, command, env, cores_min, cores_max, whole_node, memory_mb, wall_sec, priority,
       state, submitted_at, requeue, requirements) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?) RETURNING id`,
    name, r.group ?? 'default', JSON.stringify(r.command), JSON.stringify(r.env ?? {}), cores.min, cores.max,
    cores.wholeNode ? 1 : 0, r.memoryMb ?? null, r.wallSec ?? null, r.priority ?? 0, at, r.requeue === false ? 0 : 1,
    noRequirements(r.requirements) ? null : JSON.stringify(r.requirements),
  );
  const id = Number(rows[0]?.id);
  await q.run("INSERT INTO payload_states (payload_id, state, reason, at) VALUES (?, 'queued', ?, ?)", id, reason, at);
  return id;
}

/** The payloads part of the PostgreSQL store on `pool`. */
export function pgPayloads(pool: PgPool): PayloadStore {
  const getPayload = async (id: number): Promise<PayloadView | null> => {
    const row = await pool.get<PayloadRow>(`${PG_PAYLOAD_SELECT} WHERE id = ?`, id);
    return row ? payloadView(row, true) : null;
  };
  return {
    async submitPayload(r: SubmitRequest, at: number) {
      const id = await pool.tx((q) => insertPayload(q, r, at));
      const view = await getPayload(id);
      if (!view) throw new VmpilotError('VMP_INTERNAL', `payload ${id} vanished after submit`);
      return view;
    },

    async submitPayloads(list: SubmitRequest[], at: number) {
      return pool.tx(async (q) => {
        const ids: number[] = [];
        for (const r of list) ids.push(await insertPayload(q, r, at));
        return ids;
      });
    },

    getPayload,

    async resubmitPayload(id: number, at: number): Promise<Resubmitted | null> {
      return pool.tx(async (q) => {
        const row = await q.get<PayloadRow>('SELECT * FROM payloads WHERE id = ?', id);
        if (!row) return null;
        const r = resubmission(row);
        return r.kind === 'copy' ? { kind: 'resubmitted', id: await insertPayload(q, r.request, at, r.reason) } : r;
      });
    },

    async payloadHistory(id: number): Promise<PayloadHistoryEntry[]> {
      return pool.all<PayloadHistoryEntry>('SELECT state, pilot_id AS "pilotId", reason, at FROM payload_states WHERE payload_id = ? ORDER BY id', id);
    },

    async listPayloads(f: PayloadFilter) {
      return (await pgListPayloads(pool, f)).map((row) => payloadView(row));
    },

    async countPayloads(f: PayloadFilter) {
      return pgCountPayloads(pool, f);
    },

    async claimPayload(pilotId: number, offer: Offer, pick: Picker, at: number, halfLifeSec = DEFAULT_HALF_LIFE_SEC): Promise<Assignment | null> {
      return pool.tx(async (q) => {
        const rows = await queuedCandidates(q, offer.groups ?? null, true);
        if (rows.length === 0) return null;
        const usage = await pgUsageAt(q, at, halfLifeSec);
        const choice = pick(rows.map(candidate), offer, usage);
        if (!choice) return null;
        const row = rows.find((r) => r.id === choice.id);
        if (!row) throw new VmpilotError('VMP_INTERNAL', `picker chose payload ${choice.id}, which is not queued`);
        const set = { pilot_id: pilotId, allocated_cores: choice.cores, assigned_at: at, attempts: row.attempts + 1 };
        const moved = movePayload(row, 'assigned', set, `assigned to pilot ${pilotId}`, at);
        await applyChanges(q, [moved.change]);
        return assignment(moved.after);
      });
    },

    async waitingCandidates(): Promise<Candidate[]> {
      return (await queuedCandidates(pool, null, false)).map(candidate);
    },

    async redeliverable(pilotId: number, holding: number[]) {
      const rows = await pool.all<PayloadRow>(
        // a payload an administrator killed meanwhile is not handed out again
        "SELECT * FROM payloads WHERE pilot_id = ? AND state = 'assigned' AND cancel_reason IS NULL ORDER BY assigned_at, id",
        pilotId,
      );
      const row = rows.find((r) => !holding.includes(r.id));
      return row ? assignment(row) : null;
    },

    async queuedCount() {
      return (await pool.get<{ n: number }>("SELECT COUNT(*) AS n FROM payloads WHERE state = 'queued'"))?.n ?? 0;
    },

    async killPayload(payloadId: number, reason: string, at: number): Promise<Instruction | null> {
      return pool.tx(async (q) => {
        const row = await pgPayloadRow(q, payloadId, true);
        if (!row) throw new VmpilotError('VMP_NOT_FOUND', `no payload ${payloadId}`);
        const held = (row.state === 'assigned' || row.state === 'running') && row.pilot_id !== null;
        if (row.state !== 'queued' && !held) throw new VmpilotError('VMP_CONFLICT', `payload ${payloadId} has already ended (${row.state})`);
        const { changes, existing } = cancelPayload(row, row.pilot_id === null ? [] : await pgPendingOf(q, row.pilot_id), reason, at);
        const added = await applyChanges(q, changes);
        return row.state === 'queued' ? null : (existing ?? added[0] ?? null);
      });
    },
  };
}
