/**
 * The PostgreSQL store's pilots, as sqlite-pilots.ts: registration,
 * credentials, contact, state and the stall sweep. Reading and applying
 * only: what a heartbeat or a stall does is decided in pilot-rules.ts and
 * applied by pg-apply.ts, in one transaction with the reading. A change
 * that a rule decides from a pilot's row first locks that row (FOR NO KEY
 * UPDATE: no key changes, so rows whose foreign keys name the pilot are not
 * blocked), so two replicas deciding for one pilot take turns.
 */
import type { HeartbeatRequest, PilotState, PilotView, RegisterRequest, RelayRef } from '../../protocol/index.js';
import { VmpilotError } from '../../shared/errors.js';
import { pilotStateChange } from './apply-report.js';
import { applyChanges } from './pg-apply.js';
import { pgCountPilots, pgLastHeartbeat, pgListPilots, pgPendingOf } from './pg-reads.js';
import type { Pg, PgPool } from './pg-sql.js';
import { effectOfHeartbeat, effectOfStall, strangers } from './pilot-rules.js';
import { PILOT_COLUMNS, pilotView, type PayloadRow, type PilotRow } from './rows.js';
import type { PilotInstance } from './sqlite-pilots.js';
import type { CredentialOwner, PilotFilter, PilotStateChange, PilotStore, StorePolicy, SweepResult } from './store.js';

const PILOT_SELECT = `SELECT ${PILOT_COLUMNS}, (SELECT SUM(allocated_cores) FROM payloads
  WHERE pilot_id = p.id AND state IN ('assigned', 'running')) AS cores_busy FROM pilots p`;

/** Pilot states that expect contact: the ones the stall sweep looks at. */
const LIVE_STATES = "('submitted', 'booting', 'running', 'draining', 'halting', 'error')";

/** A pilot's own row, locked for the rest of the transaction, or VMP_NOT_FOUND. */
export async function lockedPilotRow(q: Pg, pilotId: number): Promise<PilotRow> {
  const pilot = await q.get<PilotRow>('SELECT * FROM pilots WHERE id = ? FOR NO KEY UPDATE', pilotId);
  if (!pilot) throw new VmpilotError('VMP_NOT_FOUND', `no pilot ${pilotId}`);
  return pilot;
}

/** Read one payload row; `lock`: locked for the rest of the transaction (a rule decides a change of it). */
export async function pgPayloadRow(q: Pg, id: number, lock = false): Promise<PayloadRow | undefined> {
  return q.get<PayloadRow>(`SELECT * FROM payloads WHERE id = ?${lock ? ' FOR NO KEY UPDATE' : ''}`, id);
}

/** The payloads `pilotId` holds (assigned or running), by id, locked for the rest of the transaction. */
export async function pgHeldBy(q: Pg, pilotId: number): Promise<PayloadRow[]> {
  return q.all<PayloadRow>("SELECT * FROM payloads WHERE pilot_id = ? AND state IN ('assigned', 'running') ORDER BY id FOR NO KEY UPDATE", pilotId);
}

/** Insert a new `booting` pilot and its first history row (inside the caller's transaction); its id. */
export async function pgInsertPilot(
  q: Pg,
  r: RegisterRequest,
  credentialHash: string,
  at: number,
  credentialExpiresAt: number | null,
  relay: RelayRef | null,
  instance: PilotInstance | null,
): Promise<number> {
  const { rows } = await q.run(
    `INSERT INTO pilots (hostname, version, state, cores, memory_mb, disk_mb, external_id, deadline, labels,
       credential_hash, credential_expires_at, registered_at, last_contact_at, isolation, relay_name, relay_site, capabilities,
       instance_id, groups)
       VALUES (?, ?, 'booting', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
    r.hostname, r.version, r.cores, r.memoryMb, r.diskMb ?? null, r.externalId ?? null, r.deadline ?? null,
    JSON.stringify(r.labels ?? {}), credentialHash, credentialExpiresAt, at, at, r.isolation ?? null, relay?.name ?? null, relay?.site ?? null,
    r.capabilities ? JSON.stringify(r.capabilities) : null,
    instance?.instanceId ?? null, instance?.groups ? JSON.stringify(instance.groups) : null,
  );
  const id = Number(rows[0]?.id);
  await q.run(
    "INSERT INTO pilot_states (pilot_id, state, reason, at) VALUES (?, 'booting', ?, ?)",
    id, instance ? `registered as instance ${instance.instanceId}` : 'registered', at,
  );
  return id;
}

/** A pilot's view by id (with the cores its payloads use), or null. */
export async function pgPilotView(q: Pg, id: number): Promise<PilotView | null> {
  const row = await q.get<PilotRow>(`${PILOT_SELECT} WHERE p.id = ?`, id);
  return row ? pilotView(row) : null;
}

/** The pilots part of the PostgreSQL store on `pool`. */
export function pgPilots(pool: PgPool, policy: StorePolicy): PilotStore {
  const getPilot = (id: number): Promise<PilotView | null> => pgPilotView(pool, id);
  return {
    async createPilot(r: RegisterRequest, credentialHash: string, at: number, credentialExpiresAt: number | null = null, relay: RelayRef | null = null) {
      const id = await pool.tx((q) => pgInsertPilot(q, r, credentialHash, at, credentialExpiresAt, relay, null));
      const p = await getPilot(id);
      if (!p) throw new VmpilotError('VMP_NOT_FOUND', `no pilot ${id}`);
      return p;
    },

    getPilot,

    async credentialOwner(hash: string): Promise<CredentialOwner | null> {
      const current = await pool.get<{ id: number; e: number | null }>('SELECT id, credential_expires_at AS e FROM pilots WHERE credential_hash = ?', hash);
      if (current) return { pilotId: current.id, expiresAt: current.e };
      const previous = await pool.get<{ id: number; e: number | null }>('SELECT id, prev_credential_expires_at AS e FROM pilots WHERE prev_credential_hash = ?', hash);
      return previous ? { pilotId: previous.id, expiresAt: previous.e } : null;
    },

    async credentialExpiresAt(pilotId: number) {
      return (await pool.get<{ e: number | null }>('SELECT credential_expires_at AS e FROM pilots WHERE id = ?', pilotId))?.e ?? null;
    },

    async renewCredential(pilotId: number, hash: string, expiresAt: number) {
      await pool.run(
        `UPDATE pilots SET prev_credential_hash = credential_hash, prev_credential_expires_at = credential_expires_at,
           credential_hash = ?, credential_expires_at = ? WHERE id = ?`,
        hash, expiresAt, pilotId,
      );
    },

    async listPilots(filter: PilotFilter) {
      return (await pgListPilots(pool, PILOT_SELECT, filter)).map(pilotView);
    },

    async countPilots(filter: PilotFilter) {
      return pgCountPilots(pool, filter);
    },

    async recordHeartbeat(pilotId: number, beat: HeartbeatRequest, at: number) {
      await pool.tx(async (q) => {
        const pilot = await lockedPilotRow(q, pilotId);
        const listed = beat.payloads.filter((p) => p.state !== 'stopping');
        const rows = await Promise.all(listed.map(async (p) => [p.id, await pgPayloadRow(q, p.id)] as const));
        const ids = strangers(pilot, beat, new Map(rows));
        // its pending instructions matter only to a kill (read on every heartbeat, they would cost every heartbeat)
        await applyChanges(q, effectOfHeartbeat(pilot, beat, ids, ids.length > 0 ? await pgPendingOf(q, pilotId) : [], at));
      });
    },

    async touchPilot(pilotId: number, at: number) {
      await pool.run('UPDATE pilots SET last_contact_at = ? WHERE id = ?', at, pilotId);
    },

    async lastHeartbeat(pilotId: number) {
      return pgLastHeartbeat(pool, pilotId);
    },

    async setPilotState(pilotId: number, state: PilotState, reason: string, at: number) {
      await pool.tx(async (q) => {
        const { result, changes } = pilotStateChange(await lockedPilotRow(q, pilotId), state, reason, at);
        if (result.kind === 'refused') throw new VmpilotError('VMP_CONFLICT', result.message);
        await applyChanges(q, changes);
      });
    },

    async pilotHistory(pilotId: number): Promise<PilotStateChange[]> {
      return pool.all<PilotStateChange>('SELECT state, reason, at FROM pilot_states WHERE pilot_id = ? ORDER BY id', pilotId);
    },

    async sweepStalled(cutoff: number, at: number): Promise<SweepResult> {
      return pool.tx(async (q) => {
        const result: SweepResult = { stalled: [], requeued: [], failed: [], cancelled: [] };
        // locked, and skipped when another transaction holds one (a report or heartbeat of that pilot: it is not silent)
        const pilots = await q.all<PilotRow>(
          `SELECT * FROM pilots WHERE state IN ${LIVE_STATES} AND COALESCE(last_contact_at, registered_at) < ? ORDER BY id FOR NO KEY UPDATE SKIP LOCKED`,
          cutoff,
        );
        for (const pilot of pilots) {
          const stall = effectOfStall(pilot, await pgHeldBy(q, pilot.id), at, policy);
          if (!stall) continue;
          await applyChanges(q, stall.changes);
          result.stalled.push(pilot.id);
          result.requeued.push(...stall.requeued);
          result.failed.push(...stall.failed);
          result.cancelled.push(...stall.cancelled);
        }
        return result;
      });
    },
  };
}
