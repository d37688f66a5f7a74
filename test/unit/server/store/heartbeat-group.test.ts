/**
 * Group commit of heartbeats on the real SQLite store (store/heartbeat-group.ts):
 * heartbeats that arrive together share one transaction, yet each gets its
 * own answer; one that fails does not fail the others and leaves nothing
 * behind; none is answered before its transaction commits; and a heartbeat
 * reply read after its batch carries an instruction added before it.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HeartbeatReply, RegisterReply } from '../../../../src/protocol/index.js';
import { paths } from '../../../../src/protocol/paths.js';
import { buildApp } from '../../../../src/server/api/app.js';
import { sha256Hex } from '../../../../src/server/api/auth.js';
import { GroupCommit } from '../../../../src/server/store/heartbeat-group.js';
import { migrate } from '../../../../src/server/store/migrations.js';
import { Sql } from '../../../../src/server/store/sql.js';
import { applyHeartbeat, type Heartbeat } from '../../../../src/server/store/sqlite-pilots.js';
import { openSqliteStore, type SqliteStore } from '../../../../src/server/store/sqlite.js';
import type { Store } from '../../../../src/server/store/store.js';
import { FakeClock, systemClock } from '../../../../src/shared/clock.js';
import { isVmpilotError } from '../../../../src/shared/errors.js';
import { silentLogger } from '../../../../src/shared/log.js';
import { heartbeat, registration, tempDir } from '../helpers.js';

const T = 1_700_000_000_000;

/** Settle every promise; what each gave: 'ok' or its error. */
const outcomes = (all: Promise<void>[]) => Promise.all(all.map((p) => p.then(() => 'ok' as const, (err: unknown) => err)));

describe('heartbeats committed in groups (SQLite)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let file: string;
  let store: SqliteStore;
  /** A second connection to the same file, for what the test arranges and reads behind the store's back. */
  let side: Database.Database;

  beforeEach(() => {
    tmp = tempDir();
    file = path.join(tmp.dir, 'server.db');
    store = openSqliteStore(file, { maxAttempts: 3 }, { groupCommit: systemClock });
    side = new Database(file);
  });
  afterEach(async () => {
    side.close();
    await store.close();
    tmp.remove();
  });

  const pilots = async (n: number): Promise<number[]> => {
    const ids = [];
    for (let i = 0; i < n; i++) ids.push((await store.createPilot(registration({ hostname: `h${i}` }), `cred${i}`, T)).id);
    return ids;
  };

  it('gives each heartbeat of one batch its own answer and record: the one listing a payload not its own gets the kill', async () => {
    const [a, b, c] = (await pilots(3)) as [number, number, number];
    await store.submitPayloads([{ command: ['x'], group: 'g' }], T);
    const stranger = (await store.listPayloads({}))[0]!.id;
    const results = await outcomes([
      store.recordHeartbeat(a, heartbeat({ state: 'serving', uptimeSec: 11 }), T + 1),
      store.recordHeartbeat(b, heartbeat({ state: 'serving', uptimeSec: 22, payloads: [{ id: stranger, state: 'running', cores: 1, cpuSec: 1, rssMb: 1 }] }), T + 2),
      store.recordHeartbeat(c, heartbeat({ state: 'serving', uptimeSec: 33 }), T + 3),
    ]);
    expect(results).toEqual(['ok', 'ok', 'ok']);
    expect((await store.lastHeartbeat(a))?.uptimeSec).toBe(11);
    expect((await store.lastHeartbeat(b))?.uptimeSec).toBe(22);
    expect((await store.lastHeartbeat(c))?.uptimeSec).toBe(33);
    expect((await store.pendingInstructions(a)).length).toBe(0);
    expect((await store.pendingInstructions(b)).map((i) => i.type === 'kill-payload' && i.payloadId)).toEqual([stranger]);
    expect((await store.pendingInstructions(c)).length).toBe(0);
    expect((await store.getPilot(b))?.state).toBe('running');
  });

  it('fails only the heartbeat that fails, and keeps nothing of it; the others of its batch commit', async () => {
    const [a, b, c] = (await pilots(3)) as [number, number, number];
    // b's heartbeat updates its row, then its state change (booting → running) is refused: a half-applied heartbeat
    side.exec(`CREATE TRIGGER refuse_b BEFORE INSERT ON pilot_states WHEN NEW.pilot_id = ${b} AND NEW.state = 'running'
      BEGIN SELECT RAISE(ABORT, 'pilot b refused by the test'); END`);
    const results = await outcomes([
      store.recordHeartbeat(a, heartbeat({ state: 'serving', uptimeSec: 11 }), T + 1),
      store.recordHeartbeat(b, heartbeat({ state: 'serving', uptimeSec: 22 }), T + 2),
      store.recordHeartbeat(999, heartbeat({ state: 'serving' }), T + 2),
      store.recordHeartbeat(c, heartbeat({ state: 'serving', uptimeSec: 33 }), T + 3),
    ]);
    expect(results[0]).toBe('ok');
    expect(String(results[1])).toContain('pilot b refused by the test');
    expect(isVmpilotError(results[2]) && results[2].code).toBe('VMP_NOT_FOUND');
    expect(results[3]).toBe('ok');
    expect((await store.lastHeartbeat(a))?.uptimeSec).toBe(11);
    expect((await store.lastHeartbeat(c))?.uptimeSec).toBe(33);
    // nothing of b's heartbeat stayed: not its row's update before the refused insert either
    expect(await store.lastHeartbeat(b)).toBeNull();
    expect((await store.getPilot(b))?.state).toBe('booting');
    expect((await store.getPilot(b))?.lastContactAt).toBe(T);
  });

  it('answers none of a batch whose commit fails, and writes none of it', async () => {
    const [a, b, c] = (await pilots(3)) as [number, number, number];
    // a row that breaks a deferred foreign key when b's row is updated: checked only at COMMIT, so the whole batch fails there
    side.exec(`CREATE TABLE commit_breaker (pilot_id INTEGER REFERENCES pilots (id) DEFERRABLE INITIALLY DEFERRED);
      CREATE TRIGGER break_commit AFTER UPDATE OF last_heartbeat ON pilots WHEN NEW.id = ${b}
      BEGIN INSERT INTO commit_breaker VALUES (-1); END`);
    const results = await outcomes([
      store.recordHeartbeat(a, heartbeat({ state: 'serving', uptimeSec: 11 }), T + 1),
      store.recordHeartbeat(b, heartbeat({ state: 'serving', uptimeSec: 22 }), T + 2),
      store.recordHeartbeat(c, heartbeat({ state: 'serving', uptimeSec: 33 }), T + 3),
    ]);
    for (const r of results) expect(String(r)).toContain('FOREIGN KEY constraint failed');
    for (const id of [a, b, c]) expect(await store.lastHeartbeat(id)).toBeNull();
    // the store goes on: the next batch (without b) commits
    side.exec('DROP TRIGGER break_commit');
    expect(await outcomes([store.recordHeartbeat(a, heartbeat({ state: 'serving', uptimeSec: 44 }), T + 4)])).toEqual(['ok']);
    expect((await store.lastHeartbeat(a))?.uptimeSec).toBe(44);
  });

  it('writes the heartbeats still waiting when the store closes, and answers them', async () => {
    const [a] = (await pilots(1)) as [number];
    const pending = store.recordHeartbeat(a, heartbeat({ state: 'serving', uptimeSec: 55 }), T + 1);
    await store.close();
    await expect(pending).resolves.toBeUndefined();
    const reopened = openSqliteStore(file);
    try {
      expect((await reopened.lastHeartbeat(a))?.uptimeSec).toBe(55);
    } finally {
      await reopened.close();
    }
  });
});

describe('GroupCommit on a real SQLite connection', () => {
  it('puts the heartbeats that arrive together into one transaction, and a backlog into batches of at most its size', async () => {
    const tmp = tempDir();
    const db = new Database(path.join(tmp.dir, 'server.db'));
    try {
      migrate(db);
      const sql = new Sql(db);
      const store = openSqliteStore(path.join(tmp.dir, 'server.db'));
      const ids: number[] = [];
      for (let i = 0; i < 10; i++) ids.push((await store.createPilot(registration({ hostname: `h${i}` }), `c${i}`, T)).id);
      await store.close();
      let transactions = 0;
      const tx = <R>(fn: () => R): R => {
        if (!db.inTransaction) transactions++;
        return sql.tx(fn);
      };
      const group = new GroupCommit<Heartbeat>(tx, (h) => applyHeartbeat(sql, h), systemClock, 4);
      const all = ids.map((pilotId, i) => group.submit({ pilotId, beat: heartbeat({ state: 'serving', uptimeSec: i }), at: T + 1 }));
      expect(group.pending).toBe(10);
      await Promise.all(all);
      // 10 heartbeats, at most 4 a transaction: 3 transactions, not 10
      expect(transactions).toBe(3);
      expect(db.prepare('SELECT COUNT(*) AS n FROM pilots WHERE last_heartbeat IS NOT NULL').get()).toEqual({ n: 10 });
    } finally {
      db.close();
      tmp.remove();
    }
  });
});

describe('heartbeat replies with group commit (the API)', () => {
  const ADMIN = 'admin-token-for-group-commit';
  const PILOT = 'pilot-token-for-group-commit';
  let tmp: ReturnType<typeof tempDir>;
  let store: Store;
  let app: FastifyInstance;

  beforeEach(async () => {
    tmp = tempDir();
    store = openSqliteStore(path.join(tmp.dir, 'server.db'), { maxAttempts: 3 }, { groupCommit: systemClock });
    app = buildApp({ store, clock: new FakeClock(T), log: silentLogger(), tokens: { adminHash: sha256Hex(ADMIN), pilotHash: sha256Hex(PILOT) }, heartbeatIntervalSec: 60, matchWaitMaxSec: 0 });
    await app.ready();
  });
  afterEach(async () => {
    await app.close();
    await store.close();
    tmp.remove();
  });

  const register = async (hostname: string) => {
    const r = await app.inject({ method: 'POST', url: paths.register, headers: { authorization: `Bearer ${PILOT}` }, payload: registration({ hostname }) });
    expect(r.statusCode).toBe(201);
    return r.json<RegisterReply>();
  };
  const beat = (p: RegisterReply) =>
    app.inject({ method: 'POST', url: paths.heartbeat(p.pilotId), headers: { authorization: `Bearer ${p.credential}` }, payload: heartbeat({ state: 'serving' }) });

  it('delivers an instruction added between two batches with the next heartbeat of its pilot only', async () => {
    const [a, b] = [await register('a'), await register('b')];
    const first = await Promise.all([beat(a), beat(b)]);
    expect(first.map((r) => [r.statusCode, r.json<HeartbeatReply>().instructions])).toEqual([[200, []], [200, []]]);
    const added = await app.inject({ method: 'POST', url: paths.instructions(a.pilotId), headers: { authorization: `Bearer ${ADMIN}` }, payload: { type: 'drain' } });
    expect(added.statusCode).toBe(201);
    const second = await Promise.all([beat(a), beat(b)]);
    expect(second.map((r) => r.statusCode)).toEqual([200, 200]);
    expect(second[0]!.json<HeartbeatReply>().instructions.map((i) => i.type)).toEqual(['drain']);
    expect(second[1]!.json<HeartbeatReply>().instructions).toEqual([]);
  });
});
