import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pick } from '../../../../src/server/queue/pick.js';
import { openSqliteStore, type SqliteStore } from '../../../../src/server/store/sqlite.js';
import { registration, tempDir } from '../helpers.js';

const T = 1_700_000_000_000;

describe('store counts, totals and listings', () => {
  let tmp: ReturnType<typeof tempDir>;
  let file: string;
  let store: SqliteStore;
  beforeEach(() => {
    tmp = tempDir();
    file = path.join(tmp.dir, 'server.db');
    store = openSqliteStore(file);
  });
  afterEach(async () => {
    await store.close();
    tmp.remove();
  });

  it('keeps the counts /metrics reads equal to counting every record, through every kind of change', async () => {
    const pilots = [];
    for (let i = 0; i < 3; i++) pilots.push((await store.createPilot(registration({ hostname: `h${i}` }), `c${i}`, T)).id);
    await store.submitPayloads([{ command: ['a'], group: 'x' }, { command: ['b'], group: 'y' }, { command: ['c'], group: 'y' }], T);
    const offer = { freeCores: 4, totalCores: 4, freeMemoryMb: 1000, remainingSec: null };
    const a = (await store.claimPayload(pilots[0]!, offer, pick, T))!;
    await store.applyReport(pilots[0]!, { seq: 1, at: T, type: 'payload-started', payloadId: a.id }, T + 1000);
    await store.applyReport(pilots[0]!, { seq: 2, at: T + 5000, type: 'payload-ended', payloadId: a.id, exitCode: 0, signal: null }, T + 5000);
    const b = (await store.claimPayload(pilots[1]!, offer, pick, T))!;
    await store.applyReport(pilots[1]!, { seq: 1, at: T, type: 'payload-started', payloadId: b.id }, T + 1000);
    await store.sweepStalled(T + 10, T + 20_000);
    await store.applyReport(pilots[2]!, { seq: 1, at: T, type: 'shutdown', code: 300, message: 'idle' }, T);
    await store.killPayload(3, 'no', T);

    const db = new Database(file, { readonly: true });
    const by = (sql: string) => Object.fromEntries((db.prepare(sql).all() as { k: string; n: number }[]).map((r) => [r.k, r.n]));
    expect((await store.counts())).toEqual({
      pilotsByState: by('SELECT state AS k, COUNT(*) AS n FROM pilots GROUP BY state'),
      payloadsByState: by('SELECT state AS k, COUNT(*) AS n FROM payloads GROUP BY state'),
      queuedByGroup: by("SELECT grp AS k, COUNT(*) AS n FROM payloads WHERE state = 'queued' GROUP BY grp"),
    });
    const totals = db.prepare('SELECT grp AS "group", SUM(core_sec) AS coreSec, SUM(wall_sec) AS wallSec, SUM(done) AS done, SUM(failed) AS failed FROM accounting GROUP BY grp ORDER BY grp').all();
    expect(await store.accountingByGroup()).toEqual(totals);
    expect(totals.length).toBeGreaterThan(0);
    db.close();
  });

  it('lists newest first, page by page, by any of several states', async () => {
    const ids = [];
    for (let i = 0; i < 7; i++) ids.push((await store.createPilot(registration({ hostname: `h${i}` }), `c${i}`, T)).id);
    await store.setPilotState(ids[1]!, 'running', 'x', T);
    await store.setPilotState(ids[4]!, 'running', 'x', T);
    await store.setPilotState(ids[5]!, 'draining', 'x', T);
    expect((await store.listPilots({ limit: 3 })).map((p) => p.id)).toEqual([ids[6], ids[5], ids[4]]);
    expect((await store.listPilots({ limit: 3, before: ids[4] })).map((p) => p.id)).toEqual([ids[3], ids[2], ids[1]]);
    expect((await store.listPilots({ states: ['running', 'draining'], limit: 2 })).map((p) => p.id)).toEqual([ids[5], ids[4]]);
    expect((await store.listPilots({ states: ['running', 'draining'], before: ids[4] })).map((p) => p.id)).toEqual([ids[1]]);
  });
});
