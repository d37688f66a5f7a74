/**
 * The SQLite store (better-sqlite3): the server's records in one file, in WAL
 * mode. Every change is committed before the method returns, so whatever the
 * server has acknowledged survives a restart. All SQL of the server lives in
 * this folder.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import type {
  Assignment,
  HeartbeatRequest,
  Instruction,
  InstructionRequest,
  InstructionView,
  PayloadHistoryEntry,
  PayloadView,
  PilotState,
  PilotView,
  RegisterRequest,
  RelayRef,
  Report,
  SubmitRequest,
} from '../../protocol/index.js';
import { ONE_CORE, noRequirements } from '../../protocol/index.js';
import { VmpilotError, describeError } from '../../shared/errors.js';
import { CANDIDATE_WINDOW } from '../queue/pick.js';
import { groupUsage, usageHorizonMs } from '../queue/usage.js';
import { accountingByGroupIn, accountingIn, countsIn, runIntervalsIn } from './aggregates.js';
import { applyReportIn, setState } from './apply-report.js';
import { cancelPayload, killInstruction, losePayload } from './endings.js';
import { migrate } from './migrations.js';
import { assignment, movePayload, payloadRow } from './payload-ops.js';
import { countPayloadsIn, countPilotsIn, listPayloadsIn, listPilotsIn } from './listings.js';
import { overviewFiguresIn, pilotDetailIn } from './overview.js';
import { drainOnceIn, instructionsOf, lastHeartbeatOf } from './pilot-records.js';
import {
  PAYLOAD_SELECT,
  PILOT_COLUMNS,
  candidate,
  instruction,
  payloadView,
  pilotView,
  type InstructionRow,
  type PayloadRow,
  type PilotRow,
} from './rows.js';
import { Sql } from './sql.js';
import { pilotStateFor } from './store.js';
import type {
  AccountingFilter,
  AccountingRow,
  AccountingTotal,
  CredentialOwner,
  PayloadFilter,
  PilotFilter,
  PilotStateChange,
  ReportOutcome,
  Store,
  StoreCounts,
  StorePolicy,
  SweepResult,
  OverviewFigures,
  InstructionRecord,
} from './store.js';
import type { Candidate, Offer, Picker } from '../queue/offer.js';
import type { RunInterval } from '../queue/usage.js';

const PILOT_SELECT = `SELECT ${PILOT_COLUMNS}, (SELECT SUM(allocated_cores) FROM payloads
  WHERE pilot_id = p.id AND state IN ('assigned', 'running')) AS cores_busy FROM pilots p`;

/**
 * The first CANDIDATE_WINDOW queued payloads of every group, most urgent and
 * oldest first, among those without requirements and again among those with
 * them: two index ranges per group (payloads_group_queue_plain, _required),
 * so a claim costs the same with 20 or 20,000 payloads queued, and a group's
 * head of GPU (or site) work that this pilot cannot run does not hide the
 * group's plain work behind it.
 */
function queuedCandidates(sql: Sql): PayloadRow[] {
  // the groups with work queued, from the counts the triggers keep (DISTINCT over the queue read every queued row)
  const groups = sql.all<{ grp: string }>(`SELECT grp FROM payload_counts WHERE state = 'queued' AND n > 0`);
  const rows = groups.flatMap(({ grp }) =>
    ['requirements IS NULL', 'requirements IS NOT NULL'].flatMap((which) =>
      sql.all<PayloadRow>(`SELECT * FROM payloads WHERE state = 'queued' AND grp = ? AND ${which} ORDER BY priority DESC, id LIMIT ?`, grp, CANDIDATE_WINDOW),
    ),
  );
  return rows.sort((a, b) => b.priority - a.priority || a.id - b.id);
}

/** Pilot states that expect contact: the ones the stall sweep looks at. */
const LIVE_STATES = "('submitted', 'booting', 'running', 'draining', 'halting', 'error')";

/** The default policy: three attempts per payload. */
export const DEFAULT_POLICY: StorePolicy = { maxAttempts: 3 };

/** The default half-life of recent usage for fair shares, in seconds. */
export const DEFAULT_HALF_LIFE_SEC = 3600;

/**
 * Open (creating if needed) the store in `file` and migrate it. Throws
 * VMP_DATABASE with the file name when it cannot be opened or migrated.
 */
export function openSqliteStore(file: string, policy: StorePolicy = DEFAULT_POLICY): SqliteStore {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { fileMustExist: false });
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    // heartbeats rewrite pilot rows in place: after each checkpoint the WAL is cut back to this size
    db.pragma('journal_size_limit = 67108864');
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = ON');
    migrate(db);
    return new SqliteStore(db, policy);
  } catch (err) {
    db?.close();
    throw new VmpilotError('VMP_DATABASE', `cannot open database ${path.resolve(file)}: ${describeError(err)}`, {
      cause: err,
    });
  }
}

/** The Store on one better-sqlite3 connection. */
export class SqliteStore implements Store {
  private readonly sql: Sql;

  constructor(
    db: Database.Database,
    private readonly policy: StorePolicy = DEFAULT_POLICY,
  ) {
    this.sql = new Sql(db);
  }

  async migrate(): Promise<void> {
    migrate(this.sql.db);
  }

  async close(): Promise<void> {
    if (this.sql.db.open) this.sql.db.close();
  }

  async getSetting(key: string): Promise<string | null> {
    return this.sql.get<{ value: string }>('SELECT value FROM settings WHERE key = ?', key)?.value ?? null;
  }

  async setSetting(key: string, value: string): Promise<void> {
    this.sql.run(
      'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      key,
      value,
    );
  }

  // -- pilots

  async createPilot(r: RegisterRequest, credentialHash: string, at: number, credentialExpiresAt: number | null = null, relay: RelayRef | null = null): Promise<PilotView> {
    const id = this.sql.tx(() => {
      const { id } = this.sql.run(
        `INSERT INTO pilots (hostname, version, state, cores, memory_mb, disk_mb, external_id, deadline, labels,
           credential_hash, credential_expires_at, registered_at, last_contact_at, isolation, relay_name, relay_site, capabilities)
           VALUES (?, ?, 'booting', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        r.hostname, r.version, r.cores, r.memoryMb, r.diskMb ?? null, r.externalId ?? null, r.deadline ?? null,
        JSON.stringify(r.labels ?? {}), credentialHash, credentialExpiresAt, at, at, r.isolation ?? null, relay?.name ?? null, relay?.site ?? null,
        r.capabilities ? JSON.stringify(r.capabilities) : null,
      );
      this.sql.run("INSERT INTO pilot_states (pilot_id, state, reason, at) VALUES (?, 'booting', 'registered', ?)", id, at);
      return id;
    });
    return this.mustPilot(id);
  }

  async getPilot(id: number): Promise<PilotView | null> {
    const row = this.sql.get<PilotRow>(`${PILOT_SELECT} WHERE p.id = ?`, id);
    return row ? pilotView(row) : null;
  }

  private async mustPilot(id: number): Promise<PilotView> {
    const p = await this.getPilot(id);
    if (!p) throw new VmpilotError('VMP_NOT_FOUND', `no pilot ${id}`);
    return p;
  }

  async credentialOwner(hash: string): Promise<CredentialOwner | null> {
    const current = this.sql.get<{ id: number; e: number | null }>(
      'SELECT id, credential_expires_at AS e FROM pilots WHERE credential_hash = ?',
      hash,
    );
    if (current) return { pilotId: current.id, expiresAt: current.e };
    const previous = this.sql.get<{ id: number; e: number | null }>(
      'SELECT id, prev_credential_expires_at AS e FROM pilots WHERE prev_credential_hash = ?',
      hash,
    );
    return previous ? { pilotId: previous.id, expiresAt: previous.e } : null;
  }

  async credentialExpiresAt(pilotId: number): Promise<number | null> {
    return this.sql.get<{ e: number | null }>('SELECT credential_expires_at AS e FROM pilots WHERE id = ?', pilotId)?.e ?? null;
  }

  async renewCredential(pilotId: number, hash: string, expiresAt: number): Promise<void> {
    this.sql.run(
      `UPDATE pilots SET prev_credential_hash = credential_hash, prev_credential_expires_at = credential_expires_at,
         credential_hash = ?, credential_expires_at = ? WHERE id = ?`,
      hash,
      expiresAt,
      pilotId,
    );
  }

  async listPilots(filter: PilotFilter): Promise<PilotView[]> {
    return listPilotsIn(this.sql, PILOT_SELECT, filter).map(pilotView);
  }

  async recordHeartbeat(pilotId: number, beat: HeartbeatRequest, at: number): Promise<void> {
    this.sql.tx(() => {
      const pilot = this.sql.get<PilotRow>('SELECT * FROM pilots WHERE id = ?', pilotId);
      if (!pilot) throw new VmpilotError('VMP_NOT_FOUND', `no pilot ${pilotId}`);
      this.sql.run(
        `UPDATE pilots SET last_contact_at = ?, last_heartbeat_at = ?, last_heartbeat = ?, version = ?,
           cores_used = ?, deadline = COALESCE(?, deadline), capabilities = COALESCE(?, capabilities) WHERE id = ?`,
        at, at, JSON.stringify(beat), beat.version, beat.cores.used, beat.deadline ?? null,
        beat.capabilities ? JSON.stringify(beat.capabilities) : null, pilotId,
      );
      // a heartbeat from a halted pilot is recorded but cannot revive it
      setState(this.sql, pilot, pilotStateFor(beat.state), 'heartbeat', at);
      // a payload it runs that is no longer its own (e.g. requeued while it was stalled): tell it to kill it
      for (const p of beat.payloads) {
        if (p.state === 'stopping') continue;
        const row = payloadRow(this.sql, p.id);
        const mine = row && row.pilot_id === pilotId && (row.state === 'assigned' || row.state === 'running');
        if (!mine) killInstruction(this.sql, pilotId, p.id, `payload ${p.id} is not assigned to pilot ${pilotId}`, at);
      }
    });
  }

  async touchPilot(pilotId: number, at: number): Promise<void> {
    this.sql.run('UPDATE pilots SET last_contact_at = ? WHERE id = ?', at, pilotId);
  }

  async setPilotState(pilotId: number, state: PilotState, reason: string, at: number): Promise<void> {
    this.sql.tx(() => {
      const pilot = this.sql.get<PilotRow>('SELECT * FROM pilots WHERE id = ?', pilotId);
      if (!pilot) throw new VmpilotError('VMP_NOT_FOUND', `no pilot ${pilotId}`);
      const r = setState(this.sql, pilot, state, reason, at);
      if (r.kind === 'refused') throw new VmpilotError('VMP_CONFLICT', r.message);
    });
  }

  async pilotHistory(pilotId: number): Promise<PilotStateChange[]> {
    return this.sql.all<PilotStateChange>(
      'SELECT state, reason, at FROM pilot_states WHERE pilot_id = ? ORDER BY id',
      pilotId,
    );
  }

  // -- payloads

  async submitPayload(r: SubmitRequest, at: number): Promise<PayloadView> {
    const id = this.sql.tx(() => this.insertPayload(r, at));
    const view = await this.getPayload(id);
    if (!view) throw new VmpilotError('VMP_INTERNAL', `payload ${id} vanished after submit`);
    return view;
  }

  async submitPayloads(list: SubmitRequest[], at: number): Promise<number[]> {
    return this.sql.tx(() => list.map((r) => this.insertPayload(r, at)));
  }

  private insertPayload(r: SubmitRequest, at: number): number {
    const cores = r.cores ?? ONE_CORE;
    const name = r.name ?? path.basename(r.command[0] ?? 'payload');
    {
      const { id } = this.sql.run(
        `INSERT INTO payloads (name, grp, command, env, cores_min, cores_max, whole_node, memory_mb, wall_sec, priority,
           state, submitted_at, requeue, requirements) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)`,
        name, r.group ?? 'default', JSON.stringify(r.command), JSON.stringify(r.env ?? {}), cores.min, cores.max,
        cores.wholeNode ? 1 : 0, r.memoryMb ?? null, r.wallSec ?? null, r.priority ?? 0, at, r.requeue === false ? 0 : 1,
        noRequirements(r.requirements) ? null : JSON.stringify(r.requirements),
      );
      this.sql.run("INSERT INTO payload_states (payload_id, state, reason, at) VALUES (?, 'queued', 'submitted', ?)", id, at);
      return id;
    }
  }

  async getPayload(id: number): Promise<PayloadView | null> {
    const row = this.sql.get<PayloadRow>(`${PAYLOAD_SELECT} WHERE id = ?`, id);
    return row ? payloadView(row, true) : null;
  }

  async payloadHistory(id: number): Promise<PayloadHistoryEntry[]> {
    return this.sql.all<PayloadHistoryEntry>(
      'SELECT state, pilot_id AS pilotId, reason, at FROM payload_states WHERE payload_id = ? ORDER BY id',
      id,
    );
  }

  async listPayloads(f: PayloadFilter): Promise<PayloadView[]> {
    return listPayloadsIn(this.sql, f).map((row) => payloadView(row));
  }

  async countPayloads(f: PayloadFilter): Promise<number> {
    return countPayloadsIn(this.sql, f);
  }

  async countPilots(f: PilotFilter): Promise<number> {
    return countPilotsIn(this.sql, f);
  }

  async overviewFigures(): Promise<OverviewFigures> {
    return overviewFiguresIn(this.sql);
  }

  async pilotDetail(pilotId: number, limit: number): Promise<{ instructions: InstructionRecord[]; lastHeartbeat: { at: number; beat: HeartbeatRequest } | null }> {
    return pilotDetailIn(this.sql, pilotId, limit);
  }

  async claimPayload(
    pilotId: number,
    offer: Offer,
    pick: Picker,
    at: number,
    halfLifeSec = DEFAULT_HALF_LIFE_SEC,
  ): Promise<Assignment | null> {
    return this.sql.tx(() => {
      const rows = queuedCandidates(this.sql);
      if (rows.length === 0) return null;
      const usage = groupUsage(runIntervalsIn(this.sql, at - usageHorizonMs(halfLifeSec)), at, halfLifeSec);
      const choice = pick(rows.map(candidate), offer, usage);
      if (!choice) return null;
      const row = rows.find((r) => r.id === choice.id);
      if (!row) throw new VmpilotError('VMP_INTERNAL', `picker chose payload ${choice.id}, which is not queued`);
      movePayload(
        this.sql,
        row,
        'assigned',
        { pilot_id: pilotId, allocated_cores: choice.cores, assigned_at: at, attempts: row.attempts + 1 },
        `assigned to pilot ${pilotId}`,
        at,
      );
      const claimed = payloadRow(this.sql, row.id);
      if (!claimed) throw new VmpilotError('VMP_INTERNAL', `payload ${row.id} vanished`);
      return assignment(claimed);
    });
  }

  async redeliverable(pilotId: number, holding: number[]): Promise<Assignment | null> {
    const rows = this.sql.all<PayloadRow>(
      // a payload an administrator killed meanwhile is not handed out again
      "SELECT * FROM payloads WHERE pilot_id = ? AND state = 'assigned' AND cancel_reason IS NULL ORDER BY assigned_at, id",
      pilotId,
    );
    const row = rows.find((r) => !holding.includes(r.id));
    return row ? assignment(row) : null;
  }

  async waitingCandidates(): Promise<Candidate[]> {
    return queuedCandidates(this.sql).map(candidate);
  }

  async killPayload(payloadId: number, reason: string, at: number): Promise<Instruction | null> {
    return this.sql.tx(() => {
      const row = payloadRow(this.sql, payloadId);
      if (!row) throw new VmpilotError('VMP_NOT_FOUND', `no payload ${payloadId}`);
      if (row.state === 'queued' || ((row.state === 'assigned' || row.state === 'running') && row.pilot_id !== null)) {
        return cancelPayload(this.sql, row, reason, at);
      }
      throw new VmpilotError('VMP_CONFLICT', `payload ${payloadId} has already ended (${row.state})`);
    });
  }

  async sweepStalled(cutoff: number, at: number): Promise<SweepResult> {
    return this.sql.tx(() => {
      const result: SweepResult = { stalled: [], requeued: [], failed: [], cancelled: [] };
      const pilots = this.sql.all<PilotRow>(
        `SELECT * FROM pilots WHERE state IN ${LIVE_STATES} AND COALESCE(last_contact_at, registered_at) < ? ORDER BY id`,
        cutoff,
      );
      for (const pilot of pilots) {
        const silentSec = Math.round((at - (pilot.last_contact_at ?? pilot.registered_at)) / 1000);
        const r = setState(this.sql, pilot, 'stalled', `no contact for ${silentSec} s`, at);
        if (r.kind === 'refused') continue;
        result.stalled.push(pilot.id);
        const held = this.sql.all<PayloadRow>(
          "SELECT * FROM payloads WHERE pilot_id = ? AND state IN ('assigned', 'running') ORDER BY id",
          pilot.id,
        );
        for (const row of held) {
          const to = losePayload(this.sql, row, `pilot ${pilot.id} stalled (no contact for ${silentSec} s)`, at, this.policy);
          (to === 'queued' ? result.requeued : to === 'cancelled' ? result.cancelled : result.failed).push(row.id);
        }
      }
      return result;
    });
  }

  async runIntervals(since: number): Promise<RunInterval[]> {
    return runIntervalsIn(this.sql, since);
  }

  async accounting(filter: AccountingFilter): Promise<AccountingRow[]> {
    return accountingIn(this.sql, filter);
  }

  async accountingByGroup(): Promise<AccountingTotal[]> {
    return accountingByGroupIn(this.sql);
  }

  async counts(): Promise<StoreCounts> {
    return countsIn(this.sql);
  }

  async queuedCount(): Promise<number> {
    return this.sql.get<{ n: number }>("SELECT COUNT(*) AS n FROM payloads WHERE state = 'queued'")?.n ?? 0;
  }

  // -- reports

  async applyReport(pilotId: number, report: Report, at: number): Promise<ReportOutcome> {
    return this.sql.tx(() => applyReportIn(this.sql, pilotId, report, at, this.policy));
  }

  async appliedSeq(pilotId: number): Promise<number> {
    return this.sql.get<{ s: number }>('SELECT applied_seq AS s FROM pilots WHERE id = ?', pilotId)?.s ?? 0;
  }

  // -- instructions

  async addInstruction(pilotId: number, request: InstructionRequest, at: number): Promise<Instruction> {
    const { id } = this.sql.run(
      'INSERT INTO instructions (pilot_id, body, created_at) VALUES (?, ?, ?)',
      pilotId,
      JSON.stringify(request),
      at,
    );
    return { id, ...request } as Instruction;
  }

  async drainOnce(pilotId: number, request: Extract<InstructionRequest, { type: 'drain' }>, at: number): Promise<{ instruction: Instruction; existing: boolean }> {
    return this.sql.tx(() => {
      const pilot = this.sql.get<{ state: PilotState }>('SELECT state FROM pilots WHERE id = ?', pilotId);
      if (!pilot) throw new VmpilotError('VMP_NOT_FOUND', `no pilot ${pilotId}`);
      return drainOnceIn(this.sql, pilotId, request, pilot.state, at);
    });
  }

  async instructionsOf(pilotId: number): Promise<InstructionView[]> {
    return instructionsOf(this.sql, pilotId);
  }

  async lastHeartbeat(pilotId: number): Promise<HeartbeatRequest | null> {
    return lastHeartbeatOf(this.sql, pilotId);
  }

  async pendingInstructions(pilotId: number): Promise<Instruction[]> {
    return this.sql
      .all<InstructionRow>('SELECT * FROM instructions WHERE pilot_id = ? AND done_at IS NULL ORDER BY id', pilotId)
      .map(instruction);
  }
}
