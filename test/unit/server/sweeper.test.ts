import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ReportsReply } from '../../../src/protocol/index.js';
import { paths } from '../../../src/protocol/paths.js';
import { buildApp } from '../../../src/server/api/app.js';
import { sha256Hex } from '../../../src/server/api/auth.js';
import { Waiters } from '../../../src/server/api/waiters.js';
import { ServerMetrics } from '../../../src/server/metrics/server-metrics.js';
import { pick } from '../../../src/server/queue/pick.js';
import { openSqliteStore, type SqliteStore } from '../../../src/server/store/sqlite.js';
import { Sweeper } from '../../../src/server/sweeper.js';
import { FakeClock } from '../../../src/shared/clock.js';
import { silentLogger } from '../../../src/shared/log.js';
import { heartbeat, matchRequest, registration, tempDir } from './helpers.js';

/** How long to wait for an event (the code under test has no reason to take long). */
const WAIT = { timeout: 10_000, interval: 5 };

const offer = { freeCores: 4, totalCores: 4, freeMemoryMb: 8000, remainingSec: null };

describe('stall sweep', () => {
  let tmp: ReturnType<typeof tempDir>;
  let store: SqliteStore;
  let clock: FakeClock;
  let metrics: ServerMetrics;
  let sweeper: Sweeper;
  let woken = 0;

  beforeEach(() => {
    tmp = tempDir();
    store = openSqliteStore(path.join(tmp.dir, 'server.db'), { maxAttempts: 2 });
    clock = new FakeClock();
    metrics = new ServerMetrics();
    woken = 0;
    sweeper = new Sweeper({ store, clock, log: silentLogger(), stallAfterSec: 300, everyMs: 10_000, metrics, onRequeued: () => woken++ });
  });
  afterEach(async () => {
    await sweeper.close();
    await store.close();
    tmp.remove();
  });

  const running = async (pilotId: number, seq: number) => {
    const a = await store.claimPayload(pilotId, offer, pick, clock.now());
    await store.applyReport(pilotId, { seq, at: clock.now(), type: 'payload-started', payloadId: a!.id }, clock.now());
    return a!.id;
  };

  it('marks a silent pilot stalled after the configured time, on the clock, and requeues its payload', async () => {
    // silent 20 s longer than `quiet`: the sweep that stalls it is one at which `quiet` has been silent 290 s
    const older = (await store.createPilot(registration(), 'h0', clock.now())).id;
    await clock.advance(20_000);
    const quiet = (await store.createPilot(registration(), 'h1', clock.now())).id;
    const chatty = (await store.createPilot(registration(), 'h2', clock.now())).id;
    await store.recordHeartbeat(quiet, heartbeat(), clock.now());
    const { id } = await store.submitPayload({ command: ['sim'] }, clock.now());
    expect(await running(quiet, 1)).toBe(id);
    sweeper.start();
    for (let t = 0; t < 29; t++) {
      await clock.advance(10_000);
      await store.recordHeartbeat(chatty, heartbeat({ cores: { total: 4, used: 0, free: 4 } }), clock.now());
    }
    // the sweep at 290 s of `quiet`'s silence ran (it stalled `older`, silent 310 s): not yet for `quiet`
    await vi.waitFor(async () => expect((await store.getPilot(older))?.state).toBe('stalled'), WAIT);
    expect((await store.getPilot(quiet))?.state).toBe('running');
    expect(woken).toBe(0);
    await clock.advance(20_000);
    await vi.waitFor(async () => expect((await store.getPilot(quiet))?.state).toBe('stalled'), WAIT);
    expect((await store.getPilot(chatty))?.state).toBe('running');
    expect(await store.getPayload(id)).toMatchObject({ state: 'queued', pilotId: null, attempts: 1 });
    expect((await store.getPayload(id))?.message).toMatch(/stalled/);
    expect((await store.pilotHistory(quiet)).map((h) => h.state)).toEqual(['booting', 'running', 'stalled']);
    await vi.waitFor(() => expect(woken).toBe(1), WAIT);
    expect(metrics.stalled.get()).toBe(2);
    expect(metrics.requeued.get()).toBe(1);
    // what it used before it was lost is accounted, as neither done nor failed
    const acct = await store.accounting({ pilotId: quiet });
    expect(acct).toMatchObject([{ group: 'default', done: 0, failed: 0 }]);
    expect(acct[0]!.wallSec).toBeGreaterThan(290);
  });

  it('fails a payload whose last attempt is lost, and never drops it from the records', async () => {
    const { id } = await store.submitPayload({ command: ['sim'] }, clock.now());
    for (let attempt = 1; attempt <= 2; attempt++) {
      const p = (await store.createPilot(registration(), `h${attempt}`, clock.now())).id;
      expect(await running(p, 1)).toBe(id);
      await clock.advance(301_000);
      const r = await sweeper.sweep();
      expect(r.stalled).toEqual([p]);
      expect(attempt === 1 ? r.requeued : r.failed).toEqual([id]);
    }
    const p = await store.getPayload(id);
    expect(p).toMatchObject({ state: 'failed', attempts: 2 });
    expect(p?.message).toMatch(/lost on its last attempt \(2 of 2\)/);
    expect(await store.listPayloads({})).toHaveLength(1);
  });

  it('refuses the late report of a pilot that lost its claim, and tells it to kill the payload', async () => {
    const tmpClock = clock;
    const app = buildApp({
      store,
      clock: tmpClock,
      log: silentLogger(),
      tokens: { adminHash: sha256Hex('a'), pilotHash: sha256Hex('p') },
      heartbeatIntervalSec: 60,
      matchWaitMaxSec: 0,
      notifier: new Waiters(tmpClock),
    });
    const reg = (await app.inject({ method: 'POST', url: paths.register, headers: { authorization: 'Bearer p' }, payload: registration() })).json();
    const me = { authorization: `Bearer ${reg.credential}` };
    const { id } = await store.submitPayload({ command: ['sim'] }, clock.now());
    expect((await app.inject({ method: 'POST', url: paths.match(reg.pilotId), headers: me, payload: matchRequest() })).json().payload.id).toBe(id);
    await app.inject({ method: 'POST', url: paths.reports(reg.pilotId), headers: me, payload: { reports: [{ seq: 1, at: 1, type: 'payload-started', payloadId: id }] } });
    await clock.advance(400_000);
    await sweeper.sweep();
    // another pilot takes it
    const other = (await store.createPilot(registration(), 'h-other', clock.now())).id;
    expect((await store.claimPayload(other, offer, pick, clock.now()))?.id).toBe(id);

    // the stalled pilot comes back: its heartbeat still lists the payload → kill; its report is refused
    const beat = await app.inject({ method: 'POST', url: paths.heartbeat(reg.pilotId), headers: me, payload: heartbeat({ payloads: [{ id, state: 'running', cores: 1 }] }) });
    expect(beat.json().instructions).toMatchObject([{ type: 'kill-payload', payloadId: id }]);
    expect((await store.getPilot(reg.pilotId))?.state).toBe('running');
    const late = await app.inject({
      method: 'POST',
      url: paths.reports(reg.pilotId),
      headers: me,
      payload: { reports: [{ seq: 2, at: 2, type: 'payload-ended', payloadId: id, exitCode: 0, signal: null }] },
    });
    const reply = late.json<ReportsReply>();
    expect(reply.refused).toMatchObject([{ seq: 2, code: 'VMP_PAYLOAD_NOT_YOURS' }]);
    expect(reply.instructions).toMatchObject([{ type: 'kill-payload', payloadId: id }]);
    expect(await store.getPayload(id)).toMatchObject({ state: 'assigned', pilotId: other, attempts: 2 });
    await app.close();
  });
});
