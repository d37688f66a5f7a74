import { describe, expect, it } from 'vitest';
import { fakeAssignment } from '../../../../src/agent/control/fake-control-plane.js';
import { RETRY_CAP_MS } from '../../../../src/agent/control/retry.js';
import type { MatchReply } from '../../../../src/protocol/index.js';
import { harness } from '../pilot-harness.js';

type H = ReturnType<typeof harness>;

/** The server goes away: every call fails as if nothing answered, and the open match goes with the connection. */
function cut(h: H): void {
  for (const m of ['heartbeat', 'report', 'match', 'register'] as const) h.control.failNext(m, 100_000);
  h.pilot.abortMatch();
}

/** Advance the fake clock in steps of `stepMs` until `done`, at most `maxMs`. */
async function run(h: H, maxMs: number, done: () => boolean, stepMs = 100): Promise<void> {
  for (let t = 0; t < maxMs && !done(); t += stepMs) {
    await h.clock.advance(stepMs);
    await h.settle();
  }
}

/** Record the calls that reached the fake server (those it answered), in order. */
function calls(h: H): string[] {
  const seen: string[] = [];
  const match = h.control.match.bind(h.control);
  const report = h.control.report.bind(h.control);
  h.control.match = async (request, signal) => {
    const n = h.control.matches.length;
    const reply = match(request, signal);
    if (h.control.matches.length > n) seen.push('match');
    return reply;
  };
  h.control.report = async (reports) => {
    const reply = await report(reports);
    seen.push(`report ${reports.map((r) => r.seq).join(',')}`);
    return reply;
  };
  return seen;
}

describe('Pilot: a server restart never makes it halt for lack of work while work is queued', () => {
  it('idle for longer than its timeout counting the outage, it takes the work queued meanwhile once the server is back', async () => {
    const h = harness({ idleTimeout: '8', orphanTimeout: '0' });
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    h.control.offer(fakeAssignment(1));
    await h.until(() => expect(h.runner.started).toHaveLength(1));
    h.runner.started[0]!.finish({ exitCode: 0, signal: null });
    await h.until(() => expect(h.applied('payload-ended')).toHaveLength(1));
    // 3 s later the server is killed; it comes back 5 s later with work queued meanwhile
    await run(h, 3000, () => false);
    cut(h);
    await run(h, 5000, () => false);
    expect(h.halter.call).toBeNull();
    h.control.offer(fakeAssignment(2), fakeAssignment(3));
    const asked = h.control.matches.length;
    h.control.heal();
    await run(h, RETRY_CAP_MS, () => h.control.matches.length > asked);
    await h.until(() => expect(h.runner.started).toHaveLength(3));
    expect(h.runner.started.map((p) => p.spec.env.VMPILOT_PAYLOAD_ID).sort()).toEqual(['1', '2', '3']);
    expect(h.halter.call).toBeNull();
    // and once the work is done and the server has said "nothing" for the idle timeout, it halts 300
    for (const p of h.runner.started.slice(1)) p.finish({ exitCode: 0, signal: null });
    await h.until(() => expect(h.applied('payload-ended')).toHaveLength(3));
    await run(h, 20_000, () => h.halter.call !== null);
    expect(h.halter.call, 'halted').not.toBeNull();
    await h.halter.called;
    expect(h.applied('shutdown')[0]).toMatchObject({ code: 300 });
  });

  it('notices the server\'s return within the retry cap however long it was away, and sends the reports that waited first, in order', async () => {
    const h = harness({ idleTimeout: '0', orphanTimeout: '0' });
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    h.control.offer(fakeAssignment(1), fakeAssignment(2));
    await h.until(() => expect(h.applied('payload-started')).toHaveLength(2));
    // every try to reach the server, answered or not
    const tries: number[] = [];
    const match = h.control.match.bind(h.control);
    const report = h.control.report.bind(h.control);
    h.control.match = (request, signal) => (tries.push(h.clock.now()), match(request, signal));
    h.control.report = (reports) => (tries.push(h.clock.now()), report(reports));
    cut(h);
    // both payloads end while the server is away: their reports wait on disk
    for (const p of h.runner.started) p.finish({ exitCode: 0, signal: null });
    await h.until(() => expect(h.store.saved!.outbox.filter((r) => r.type === 'payload-ended')).toHaveLength(2));
    await run(h, 600_000, () => false, 1000);
    // away for ten minutes, it still tries at least every RETRY_CAP_MS: it will notice the return that soon
    const gaps = tries.slice(1).map((t, i) => t - tries[i]!);
    expect(gaps.length).toBeGreaterThan(100);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(RETRY_CAP_MS);
    const waiting = h.store.saved!.outbox.map((r) => r.seq);
    expect(waiting.length).toBeGreaterThanOrEqual(2);
    const seen = calls(h);
    h.control.heal();
    const healedAt = h.clock.now();
    await run(h, RETRY_CAP_MS, () => seen.includes('match'));
    expect(seen, 'calls the server answered within the retry cap after its return').toContain('match');
    expect(h.clock.now() - healedAt).toBeLessThanOrEqual(RETRY_CAP_MS);
    // first the reports, all of them, in seq order; then the request for work
    expect(seen[0]).toBe(`report ${[...waiting].sort((a, b) => a - b).join(',')}`);
    expect(seen.indexOf('match')).toBeGreaterThan(0);
    expect(h.applied('payload-ended').map((r) => r.payloadId).sort()).toEqual([1, 2]);
  });

  it('a slow server (its answers hang): no idle halt while they hang, however long', async () => {
    const h = harness({ idleTimeout: '5', orphanTimeout: '0' });
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    h.control.offer(fakeAssignment(1));
    await h.until(() => expect(h.runner.started).toHaveLength(1));
    // from now on the server takes requests and never answers (until it is let go)
    const hanging: (() => void)[] = [];
    const answer = h.control.match.bind(h.control);
    h.control.match = (request, signal) =>
      new Promise<MatchReply>((resolve, reject) => {
        hanging.push(() => void answer(request, signal).then(resolve, reject));
        signal?.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
      });
    h.control.heartbeat = () => new Promise(() => undefined);
    h.runner.started[0]!.finish({ exitCode: 0, signal: null });
    await h.until(() => expect(h.applied('payload-ended')).toHaveLength(1));
    await run(h, 120_000, () => h.halter.call !== null, 1000);
    expect(h.halter.call).toBeNull();
    // answered again: "nothing" for the idle timeout, then the halt
    for (const go of hanging.splice(0)) go();
    h.control.match = answer;
    await run(h, 30_000, () => h.halter.call !== null, 1000);
    expect(h.halter.call, 'halted').not.toBeNull();
    await h.halter.called;
    expect(h.applied('shutdown')[0]).toMatchObject({ code: 300 });
  });
});
