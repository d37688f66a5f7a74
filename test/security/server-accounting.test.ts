/**
 * Attack (issue 11, point 3): a pilot's own word for when a payload started
 * and ended went into accounting and fair share unchecked. Anyone with the
 * registration token (it is in every batch script and user-data) can be a
 * pilot: one forged report wrote 3.5e16 core-seconds on the day +275760-09
 * and starved the group in fair share for good. Now the server keeps those
 * times within what it saw itself: from the assignment to its receipt, for
 * every outcome an attempt is charged as (done, failed, cancelled, and the
 * evicted or lost runs fair share keeps).
 */
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { AccountingEntry, PayloadView, UsageTimeline } from '../../src/protocol/index.js';
import { PILOT_TOKEN, admin, killAll, startAgent, startServer, tempDir, waitFor } from '../integration/harness.js';

async function post<T>(url: string, route: string, token: string, body: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(url + route, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as T };
}

describe('security: pilot-supplied times do not enter accounting or fair share unchecked', () => {
  const tmp = tempDir('vmpilot-sec-acct-');
  afterEach(() => killAll());
  afterAll(() => tmp.cleanup());

  it('charges a forged run at most its cores × the time the server saw, on the day it ended, and fair share still serves the group', async () => {
    const server = await startServer(path.join(tmp.dir, 's.db'), ['--match-wait-max', '2']);
    const api = admin(server.url);
    // an honest 1-core pilot gives group "busy" two core-seconds of real usage
    const agent = startAgent(server.url, { cores: 1, idleTimeoutSec: 4, stateDir: path.join(tmp.dir, 'agent') });
    const warm = await api.submit({ command: ['/bin/sleep', '2'], group: 'busy' });
    await waitFor('the busy group to have run', async () => (await api.job(warm)).state === 'done');

    // a rogue pilot (the registration token is all it takes) claims a 4-core payload of group "victim"
    const victim = await api.submit({ command: ['/bin/true'], group: 'victim', cores: { min: 4, max: 4, wholeNode: false } });
    const reg = await post<{ pilotId: number; credential: string }>(server.url, '/v1/register', PILOT_TOKEN, { hostname: 'rogue', version: '0.1.0', cores: 8, memoryMb: 1000 });
    const { pilotId, credential } = reg.body;
    const claim = await post<{ payload: { id: number } | null }>(server.url, `/v1/pilots/${pilotId}/match`, credential, {
      freeCores: 8, totalCores: 8, freeMemoryMb: 1000, remainingSec: null, holding: [], waitSec: 0,
    });
    expect(claim.body.payload?.id).toBe(victim);
    const sentAt = Date.now();
    // and says it ran from 1970 to the year 275760
    const forged = await post<{ appliedSeq: number }>(server.url, `/v1/pilots/${pilotId}/reports`, credential, {
      reports: [
        { seq: 1, at: 0, type: 'payload-started', payloadId: victim },
        { seq: 2, at: 8.64e15, type: 'payload-ended', payloadId: victim, exitCode: 0, signal: null },
      ],
    });
    const repliedAt = Date.now();
    expect(forged.status).toBe(200);

    const job: PayloadView = await api.job(victim);
    expect(job.startedAt).toBeGreaterThanOrEqual(job.assignedAt!);
    expect(job.endedAt).toBeLessThanOrEqual(repliedAt);
    const rows = (await api.call<AccountingEntry[]>('GET', '/v1/accounting?group=victim')).body;
    expect(rows).toHaveLength(1);
    expect(rows[0]!.day).toBe(new Date(sentAt).toISOString().slice(0, 10));
    // at most 4 cores × the seconds between its assignment and the report's arrival
    expect(rows[0]!.coreSec).toBeLessThanOrEqual((4 * (repliedAt - job.assignedAt!)) / 1000);
    expect(rows[0]!.wallSec).toBeLessThanOrEqual((repliedAt - job.assignedAt!) / 1000);
    // the usage the chart and fair share read: no more cores than the rogue pilot has, at any time
    const usage = (await api.call<UsageTimeline>('GET', '/v1/usage?minutes=30&stepSec=60')).body;
    for (const value of usage.groups.victim ?? []) expect(value).toBeLessThanOrEqual(8);

    // fair share: queued together, the victim group's payload (its usage: a few real milliseconds) goes
    // before the busy group's (two core-seconds); with the forged usage it would wait behind every other group
    const queued = (await api.call<{ ids: number[] }>('POST', '/v1/payloads/batch', {
      payloads: [{ command: ['/bin/true'], group: 'busy' }, { command: ['/bin/true'], group: 'victim' }],
    })).body.ids;
    await waitFor('both to be done', async () => (await api.job(queued[0]!)).state === 'done' && (await api.job(queued[1]!)).state === 'done');
    const [busyJob, victimJob] = [await api.job(queued[0]!), await api.job(queued[1]!)];
    expect(victimJob.assignedAt!).toBeLessThanOrEqual(busyJob.assignedAt!);
    expect((await agent.exited).code, agent.stderr().slice(-2000)).toBe(0);
    await server.stop();
  });

  it('charges a forged evicted run, and a run lost with its pilot, at most the time the server saw, in evicted core-seconds and in fair share', async () => {
    const server = await startServer(path.join(tmp.dir, 'evicted.db'), ['--match-wait-max', '0']);
    const api = admin(server.url);
    const reg = await post<{ pilotId: number; credential: string }>(server.url, '/v1/register', PILOT_TOKEN, { hostname: 'rogue', version: '0.1.0', cores: 8, memoryMb: 1000 });
    const { pilotId, credential } = reg.body;
    const claim = async () =>
      (await post<{ payload: { id: number } | null }>(server.url, `/v1/pilots/${pilotId}/match`, credential, {
        freeCores: 8, totalCores: 8, freeMemoryMb: 1000, remainingSec: null, holding: [], waitSec: 0,
      })).body.payload?.id;
    const report = (reports: unknown[]) => post<{ appliedSeq: number }>(server.url, `/v1/pilots/${pilotId}/reports`, credential, { reports });

    // evicted: "the infrastructure stopped it", after running from 1970 to the year 275760
    const evicted = await api.submit({ command: ['/bin/true'], group: 'victim', cores: { min: 4, max: 4, wholeNode: false } });
    expect(await claim()).toBe(evicted);
    const first = await report([
      { seq: 1, at: 0, type: 'payload-started', payloadId: evicted },
      { seq: 2, at: 8.64e15, type: 'payload-ended', payloadId: evicted, exitCode: null, signal: 'SIGTERM', evicted: { reason: 'halt' } },
    ]);
    const firstAt = Date.now();
    expect(first.status).toBe(200);

    // lost: started "in 1970", then the pilot halts while it runs (the server ends the attempt at its own time)
    // (before the evicted one, queued again)
    const lost = await api.submit({ command: ['/bin/true'], group: 'victim', cores: { min: 4, max: 4, wholeNode: false }, priority: 10 });
    expect(await claim()).toBe(lost);
    const second = await report([
      { seq: 3, at: 0, type: 'payload-started', payloadId: lost },
      { seq: 4, at: 8.64e15, type: 'shutdown', code: 100, message: 'halted' },
    ]);
    const secondAt = Date.now();
    expect(second.status).toBe(200);

    const history = async (id: number) => (await api.history(id)).filter((h) => h.state === 'assigned' || h.state === 'evicted' || h.state === 'lost');
    const [evictedSteps, lostSteps] = [await history(evicted), await history(lost)];
    expect(evictedSteps.map((h) => h.state)).toEqual(['assigned', 'evicted']);
    expect(lostSteps.map((h) => h.state)).toEqual(['assigned', 'lost']);
    const window = (steps: typeof evictedSteps, until: number) => (until - steps[0]!.at) / 1000;
    // each ended no later than the server received it, and is charged at most 4 cores × its window
    expect(evictedSteps[1]!.at).toBeLessThanOrEqual(firstAt);
    expect(lostSteps[1]!.at).toBeLessThanOrEqual(secondAt);
    const limit = 4 * (window(evictedSteps, firstAt) + window(lostSteps, secondAt));
    for (const id of [evicted, lost]) {
      const job = await api.job(id);
      expect(job.state).toBe('queued');
      expect(job.evictedCoreSec).toBeLessThanOrEqual(4 * window(id === evicted ? evictedSteps : lostSteps, id === evicted ? firstAt : secondAt));
    }
    const rows = (await api.call<AccountingEntry[]>('GET', '/v1/accounting?group=victim')).body;
    expect(rows).toHaveLength(1);
    expect(rows[0]!.day).toBe(new Date(firstAt).toISOString().slice(0, 10));
    expect(rows[0]!.evicted).toBe(2);
    expect(rows[0]!.evictedCoreSec).toBeLessThanOrEqual(limit);
    expect(rows[0]!.coreSec).toBeLessThanOrEqual(limit);
    expect(rows[0]!.wallSec).toBeLessThanOrEqual(limit / 4);
    const totals = (await api.call<AccountingEntry[]>('GET', '/v1/accounting?by=group')).body;
    expect(totals.find((t) => t.group === 'victim')?.evictedCoreSec).toBe(rows[0]!.evictedCoreSec);
    // the runs fair share keeps for the group (lost_attempts) are the clamped ones
    const usage = (await api.call<UsageTimeline>('GET', '/v1/usage?minutes=30&stepSec=60')).body;
    for (const value of usage.groups.victim ?? []) expect(value).toBeLessThanOrEqual(8);
    await server.stop();
  });
});
