/**
 * The SQLite store's pilots: registration, credentials, contact, state and
 * the stall sweep. Reading and applying only: what a heartbeat or a stall
 * does is decided in pilot-rules.ts and applied by sqlite-apply.ts, in one
 * transaction with the reading.
 */
import type { HeartbeatRequest, PilotState, PilotView, RegisterRequest, RelayRef } from '../../protocol/index.js';
import { VmpilotError } from '../../shared/errors.js';
import { pilotStateChange } from './apply-report.js';
import { countPilotsIn, listPilotsIn } from './listings.js';
import { payloadRow } from './payload-ops.js';
import { lastHeartbeatOf, pendingOf } from './pilot-records.js';
import { effectOfHeartbeat, effectOfStall, strangers } from './pilot-rules.js';
import { PILOT_COLUMNS, pilotView, type PayloadRow, type PilotRow } from './rows.js';
import { applyChanges } from './sqlite-apply.js';
import type { Sql } from './sql.js';
import type { CredentialOwner, PilotFilter, PilotStateChange, PilotStore, StorePolicy, SweepResult } from './store.js';

const PILOT_SELECT = `SELECT ${PILOT_COLUMNS}, (SELECT SUM(allocated_cores) FROM payloads
  WHERE pilot_id = p.id AND state IN ('assigned', 'running')) AS cores_busy FROM pilots p`;

/** Pilot states that expect contact: the ones the stall sweep looks at. */
const LIVE_STATES = "('submitted', 'booting', 'running', 'draining', 'halting', 'error')";

/** A pilot's own row (no `cores_busy`), or VMP_NOT_FOUND. */
function mustPilotRow(sql: Sql, pilotId: number): PilotRow {
  const pilot = sql.get<PilotRow>('SELECT * FROM pilots WHERE id = ?', pilotId);
  if (!pilot) throw new VmpilotError('VMP_NOT_FOUND', `no pilot ${pilotId}`);
  return pilot;
}

/** The payloads `pilotId` holds (assigned or running), by id. */
export function heldBy(sql: Sql, pilotId: number): PayloadRow[] {
  return sql.all<PayloadRow>("SELECT * FROM payloads WHERE pilot_id = ? AND state IN ('assigned', 'running') ORDER BY id", pilotId);
}

/** The director's instance a new pilot registered as, and the only groups it may serve (null: any). */
export interface PilotInstance {
  instanceId: number;
  groups: readonly string[] | null;
}

/**
 * Insert a new `booting` pilot and its first history row (inside the
 * caller's transaction); its id. `instance`: it registered with that
 * instance's one-time credential.
 */
export function insertPilot(
  sql: Sql,
  r: RegisterRequest,
  credentialHash: string,
  at: number,
  credentialExpiresAt: number | null,
  relay: RelayRef | null,
  instance: PilotInstance | null,
): number {
  const { id } = sql.run(
    `INSERT INTO pilots (hostname, version, state, cores, memory_mb, disk_mb, external_id, deadline, labels,
       credential_hash, credential_expires_at, registered_at, last_contact_at, isolation, relay_name, relay_site, capabilities,
       instance_id, groups)
       VALUES (?, ?, 'booting', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    r.hostname, r.version, r.cores, r.memoryMb, r.diskMb ?? null, r.externalId ?? null, r.deadline ?? null,
    JSON.stringify(r.labels ?? {}), credentialHash, credentialExpiresAt, at, at, r.isolation ?? null, relay?.name ?? null, relay?.site ?? null,
    r.capabilities ? JSON.stringify(r.capabilities) : null,
    instance?.instanceId ?? null, instance?.groups ? JSON.stringify(instance.groups) : null,
  );
  sql.run(
    "INSERT INTO pilot_states (pilot_id, state, reason, at) VALUES (?, 'booting', ?, ?)",
    id, instance ? `registered as instance ${instance.instanceId}` : 'registered', at,
  );
  return id;
}

/** A pilot's view by id (with the cores its payloads use), or null. */
export function pilotViewOf(sql: Sql, id: number): PilotView | null {
  const row = sql.get<PilotRow>(`${PILOT_SELECT} WHERE p.id = ?`, id);
  return row ? pilotView(row) : null;
}

/** One heartbeat as the store records it. */
export interface Heartbeat {
  pilotId: number;
  beat: HeartbeatRequest;
  at: number;
}

/**
 * Record one heartbeat (inside the caller's transaction): last contact,
 * usage, the state it implies, and a kill-payload instruction for each
 * payload it lists that is not its pilot's.
 */
export function applyHeartbeat(sql: Sql, { pilotId, beat, at }: Heartbeat): void {
  const pilot = mustPilotRow(sql, pilotId);
  const listed = beat.payloads.filter((p) => p.state !== 'stopping');
  const ids = strangers(pilot, beat, new Map(listed.map((p) => [p.id, payloadRow(sql, p.id)])));
  // its pending instructions matter only to a kill (read on every heartbeat, they would cost every heartbeat)
  applyChanges(sql, effectOfHeartbeat(pilot, beat, ids, ids.length > 0 ? pendingOf(sql, pilotId) : [], at));
}

/** The pilots part of the SQLite store on `sql`. */
export function sqlitePilots(sql: Sql, policy: StorePolicy): PilotStore {
  const getPilot = async (id: number): Promise<PilotView | null> => pilotViewOf(sql, id);
  return {
    async createPilot(r: RegisterRequest, credentialHash: string, at: number, credentialExpiresAt: number | null = null, relay: RelayRef | null = null) {
      const id = sql.tx(() => insertPilot(sql, r, credentialHash, at, credentialExpiresAt, relay, null));
      const p = await getPilot(id);
      if (!p) throw new VmpilotError('VMP_NOT_FOUND', `no pilot ${id}`);
      return p;
    },

    getPilot,

    async credentialOwner(hash: string): Promise<CredentialOwner | null> {
      const current = sql.get<{ id: number; e: number | null }>('SELECT id, credential_expires_at AS e FROM pilots WHERE credential_hash = ?', hash);
      if (current) return { pilotId: current.id, expiresAt: current.e };
      const previous = sql.get<{ id: number; e: number | null }>('SELECT id, prev_credential_expires_at AS e FROM pilots WHERE prev_credential_hash = ?', hash);
      return previous ? { pilotId: previous.id, expiresAt: previous.e } : null;
    },

    async credentialExpiresAt(pilotId: number) {
      return sql.get<{ e: number | null }>('SELECT credential_expires_at AS e FROM pilots WHERE id = ?', pilotId)?.e ?? null;
    },

    async renewCredential(pilotId: number, hash: string, expiresAt: number) {
      sql.run(
        `UPDATE pilots SET prev_credential_hash = credential_hash, prev_credential_expires_at = credential_expires_at,
           credential_hash = ?, credential_expires_at = ? WHERE id = ?`,
        hash, expiresAt, pilotId,
      );
    },

    async listPilots(filter: PilotFilter) {
      return listPilotsIn(sql, PILOT_SELECT, filter).map(pilotView);
    },

    async countPilots(filter: PilotFilter) {
      return countPilotsIn(sql, filter);
    },

    async recordHeartbeat(pilotId: number, beat: HeartbeatRequest, at: number) {
      sql.tx(() => applyHeartbeat(sql, { pilotId, beat, at }));
    },

    async touchPilot(pilotId: number, at: number) {
      sql.run('UPDATE pilots SET last_contact_at = ? WHERE id = ?', at, pilotId);
    },

    async lastHeartbeat(pilotId: number) {
      return lastHeartbeatOf(sql, pilotId);
    },

    async setPilotState(pilotId: number, state: PilotState, reason: string, at: number) {
      sql.tx(() => {
        const { result, changes } = pilotStateChange(mustPilotRow(sql, pilotId), state, reason, at);
        if (result.kind === 'refused') throw new VmpilotError('VMP_CONFLICT', result.message);
        applyChanges(sql, changes);
      });
    },

    async pilotHistory(pilotId: number): Promise<PilotStateChange[]> {
      return sql.all<PilotStateChange>('SELECT state, reason, at FROM pilot_states WHERE pilot_id = ? ORDER BY id', pilotId);
    },

    async sweepStalled(cutoff: number, at: number): Promise<SweepResult> {
      return sql.tx(() => {
        const result: SweepResult = { stalled: [], requeued: [], failed: [], cancelled: [] };
        const pilots = sql.all<PilotRow>(
          `SELECT * FROM pilots WHERE state IN ${LIVE_STATES} AND COALESCE(last_contact_at, registered_at) < ? ORDER BY id`,
          cutoff,
        );
        for (const pilot of pilots) {
          const stall = effectOfStall(pilot, heldBy(sql, pilot.id), at, policy);
          if (!stall) continue;
          applyChanges(sql, stall.changes);
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
