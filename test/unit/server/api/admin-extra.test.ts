import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AccountingEntry, KillReply, UsageTimeline } from '../../../../src/protocol/index.js';
import { paths } from '../../../../src/protocol/paths.js';
import { heartbeat, matchRequest } from '../helpers.js';
import { ADMIN, bearer, harness, type Harness } from './harness.js';

describe('admin routes: batch, kill, accounting, usage, history, metrics, dashboard', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness(0);
  });
  afterEach(async () => {
    await h.close();
  });
  const admin = (method: 'GET' | 'POST', url: string, payload?: object) =>
    h.app.inject({ method, url, headers: bearer(ADMIN), ...(payload ? { payload } : {}) });

  it('queues a batch all together, or none of it when one payload is bad (naming it)', async () => {
    const ok = await admin('POST', paths.payloadsBatch, { payloads: [{ command: ['a'] }, { command: ['b'], group: 'cms' }] });
    expect(ok.statusCode).toBe(201);
    expect(ok.json().ids).toHaveLength(2);
    const bad = await admin('POST', paths.payloadsBatch, { payloads: [{ command: ['c'] }, { command: ['d'], cores: { min: 0, max: 1, wholeNode: false } }] });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toMatch(/payloads\[1\]\.cores\.min/);
    expect(await h.store.listPayloads({})).toHaveLength(2);
  });

  it('cancels a queued payload, sends a kill for a running one (cancelled once it ends), and refuses an ended one', async () => {
    const queued = await h.submit({ command: ['q'] });
    const cancel = await admin('POST', paths.payloadKill(queued));
    expect(cancel.statusCode).toBe(200);
    expect(cancel.json<KillReply>()).toMatchObject({ payloadId: queued, state: 'cancelled', instruction: null });
    expect(await h.store.getPayload(queued)).toMatchObject({ state: 'cancelled', message: 'cancelled: killed by an administrator' });

    const reg = await h.register();
    const running = await h.submit({ command: ['r'] });
    await h.app.inject({ method: 'POST', url: paths.match(reg.pilotId), headers: bearer(reg.credential), payload: matchRequest() });
    const kill = await admin('POST', paths.payloadKill(running), { reason: 'wrong input' });
    expect(kill.json<KillReply>().instruction).toMatchObject({ type: 'kill-payload', payloadId: running, reason: 'wrong input' });
    // the pilot gets it with its next heartbeat (once, even if the admin clicks twice)
    await admin('POST', paths.payloadKill(running));
    const beat = await h.app.inject({ method: 'POST', url: paths.heartbeat(reg.pilotId), headers: bearer(reg.credential), payload: heartbeat() });
    expect(beat.json().instructions).toMatchObject([{ type: 'kill-payload', payloadId: running }]);
    // the pilot stops it and reports it ended by the signal: cancelled, with the reason first given, not failed
    const t = h.clock.now();
    const report = (r: object) => h.app.inject({ method: 'POST', url: paths.reports(reg.pilotId), headers: bearer(reg.credential), payload: { reports: [r] } });
    await report({ seq: 1, at: t, type: 'payload-started', payloadId: running });
    // (the server keeps a reported end no later than it receives it)
    await h.clock.advance(10_000);
    await report({ seq: 2, at: t + 10_000, type: 'payload-ended', payloadId: running, exitCode: null, signal: 'SIGTERM', message: 'stopped: wrong input' });
    expect(await h.store.getPayload(running)).toMatchObject({ state: 'cancelled', signal: 'SIGTERM', message: 'cancelled: wrong input', coreSec: 10 });
    const [row] = (await admin('GET', paths.accounting)).json<AccountingEntry[]>();
    expect(row).toMatchObject({ done: 0, failed: 0, cancelled: 1, coreSec: 10, cancelledCoreSec: 10, failedCoreSec: 0 });
    expect((await admin('GET', paths.payloadHistory(running))).json().map((e: { state: string }) => e.state)).toEqual(['queued', 'assigned', 'running', 'cancelled']);
    expect((await admin('POST', paths.payloadKill(running))).statusCode).toBe(409);
    expect((await admin('POST', paths.payloadKill(queued))).statusCode).toBe(409);
    expect((await admin('POST', paths.payloadKill(9999))).statusCode).toBe(404);
  });

  it('accounts core-seconds, wall seconds, done and failed by day, group and pilot', async () => {
    const reg = await h.register();
    const me = bearer(reg.credential);
    const a = await h.submit({ command: ['a'], group: 'atlas', cores: { min: 2, max: 2, wholeNode: false } });
    const b = await h.submit({ command: ['b'], group: 'atlas' });
    await h.app.inject({ method: 'POST', url: paths.match(reg.pilotId), headers: me, payload: matchRequest() });
    await h.app.inject({ method: 'POST', url: paths.match(reg.pilotId), headers: me, payload: matchRequest({ holding: [a], freeCores: 2 }) });
    const t = h.clock.now();
    // the reports arrive once it is all over: the server keeps no time later than it has seen
    await h.clock.advance(100_000);
    await h.app.inject({
      method: 'POST',
      url: paths.reports(reg.pilotId),
      headers: me,
      payload: {
        reports: [
          { seq: 1, at: t, type: 'payload-started', payloadId: a },
          { seq: 2, at: t, type: 'payload-started', payloadId: b },
          { seq: 3, at: t + 100_000, type: 'payload-ended', payloadId: a, exitCode: 0, signal: null },
          { seq: 4, at: t + 50_000, type: 'payload-ended', payloadId: b, exitCode: 3, signal: null },
        ],
      },
    });
    const rows = (await admin('GET', paths.accounting)).json<AccountingEntry[]>();
    expect(rows).toEqual([
      {
        day: new Date(t).toISOString().slice(0, 10),
        group: 'atlas',
        pilotId: reg.pilotId,
        coreSec: 250,
        wallSec: 150,
        done: 1,
        failed: 1,
        cancelled: 0,
        evicted: 0,
        doneCoreSec: 200,
        failedCoreSec: 50,
        cancelledCoreSec: 0,
        evictedCoreSec: 0,
      },
    ]);
    expect((await admin('GET', `${paths.accounting}?group=cms`)).json()).toEqual([]);
    // the dashboard's totals: one row per group, however many days and pilots
    expect((await admin('GET', `${paths.accounting}?by=group`)).json()).toEqual([
      {
        group: 'atlas', coreSec: 250, wallSec: 150, done: 1, failed: 1, cancelled: 0, evicted: 0,
        doneCoreSec: 200, failedCoreSec: 50, cancelledCoreSec: 0, evictedCoreSec: 0,
      },
    ]);
    expect((await admin('GET', `${paths.accounting}?by=group&from=2025-01-01`)).json().error.message).toMatch(/takes no query\.from/);
    expect((await admin('GET', `${paths.accounting}?from=tomorrow`)).statusCode).toBe(400);

    // the usage timeline: 2 + 1 cores for the first 50 s, 2 for the next 50
    const u = (await admin('GET', `${paths.usage}?minutes=2&stepSec=60`)).json<UsageTimeline>();
    expect(u.stepSec).toBe(60);
    expect(u.groups.atlas?.[0]).toBeCloseTo((20 * 0 + 40 * 3) / 60, 5);
  });

  it("keeps each pilot's state history", async () => {
    const reg = await h.register();
    const me = bearer(reg.credential);
    await h.app.inject({ method: 'POST', url: paths.heartbeat(reg.pilotId), headers: me, payload: heartbeat() });
    await h.app.inject({ method: 'POST', url: paths.heartbeat(reg.pilotId), headers: me, payload: heartbeat({ state: 'draining' }) });
    // draining → booting is not a legal move: the heartbeat is recorded, the state is not changed
    await h.app.inject({ method: 'POST', url: paths.heartbeat(reg.pilotId), headers: me, payload: heartbeat({ state: 'booting' }) });
    const refused = await h.app.inject({
      method: 'POST',
      url: paths.reports(reg.pilotId),
      headers: me,
      payload: { reports: [{ seq: 1, at: 1, type: 'state', state: 'booting', reason: 'x' }] },
    });
    expect(refused.json().refused).toMatchObject([{ code: 'VMP_PILOT_STATE' }]);
    const hist = (await admin('GET', paths.pilotHistory(reg.pilotId))).json();
    expect(hist.map((x: { state: string }) => x.state)).toEqual(['booting', 'running', 'draining']);
  });

  it('serves Prometheus metrics to the admin only', async () => {
    const reg = await h.register();
    await h.submit({ command: ['a'], group: 'atlas' });
    await h.submit({ command: ['b'], group: 'cms' });
    await h.app.inject({ method: 'POST', url: paths.heartbeat(reg.pilotId), headers: bearer(reg.credential), payload: heartbeat() });
    await h.app.inject({ method: 'POST', url: paths.match(reg.pilotId), headers: bearer(reg.credential), payload: matchRequest() });
    expect((await h.app.inject({ method: 'GET', url: paths.metrics })).statusCode).toBe(401);
    const m = await admin('GET', paths.metrics);
    expect(m.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = m.body;
    expect(text).toContain('vmpilot_pilots{state="running"} 1');
    expect(text).toContain('vmpilot_payloads{state="queued"} 1');
    expect(text).toContain('vmpilot_payloads{state="assigned"} 1');
    expect(text).toContain('vmpilot_payloads{state="cancelled"} 0');
    // core-seconds by how attempts ended, a counter kept by the store
    expect(text).toContain('# TYPE vmpilot_payload_core_seconds_total counter');
    for (const outcome of ['done', 'failed', 'cancelled', 'evicted']) expect(text).toContain(`vmpilot_payload_core_seconds_total{outcome="${outcome}"} 0`);
    expect(text).toMatch(/vmpilot_queue_depth\{group="(atlas|cms)"\} 1/);
    expect(text).toContain('vmpilot_heartbeat_duration_seconds_count 1');
    expect(text).toContain('vmpilot_match_duration_seconds_count{outcome="payload"} 1');
    expect(text).toMatch(/vmpilot_http_requests_total\{[^}]*route="\/v1\/pilots\/:pilotId\/heartbeat"[^}]*status="200"[^}]*\} 1/);
    expect(text).toMatch(/vmpilot_http_requests_total\{[^}]*route="\/metrics"[^}]*status="401"[^}]*\} 1/);
  });

  it('serves the dashboard without a token, with a strict content security policy', async () => {
    const page = await h.app.inject({ method: 'GET', url: '/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.body).toContain('<script type="module" src="/dashboard.js"');
    expect(page.headers['content-security-policy']).toMatch(/default-src 'none'/);
    expect((await h.app.inject({ method: 'GET', url: '/lib.js' })).body).toContain('sessionStorage');
    // every module the page imports is served, as JavaScript, under the same policy
    const entry = (await h.app.inject({ method: 'GET', url: '/dashboard.js' })).body;
    const imported = new Set<string>();
    for (const url of ['/dashboard.js', '/views.js', '/detail.js', '/actions.js', '/instances.js']) {
      const body = (await h.app.inject({ method: 'GET', url })).body;
      for (const m of body.matchAll(/from '\.\/([a-z]+\.js)'/g)) imported.add('/' + m[1]);
    }
    expect(entry).toContain("from './views.js'");
    for (const url of imported) {
      const r = await h.app.inject({ method: 'GET', url });
      expect(r.statusCode, url).toBe(200);
      expect(r.headers['content-type'], url).toMatch(/text\/javascript/);
      expect(r.headers['content-security-policy'], url).toMatch(/script-src 'self'/);
    }
    expect([...imported].sort()).toEqual(['/actions.js', '/chart.js', '/detail.js', '/instances.js', '/lib.js', '/views.js']);
    expect((await h.app.inject({ method: 'GET', url: '/dashboard.css' })).headers['content-type']).toMatch(/text\/css/);
  });
});
