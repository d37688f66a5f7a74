import { describe, expect, it } from 'vitest';
import { fakeAssignment } from '../../../../src/agent/control/fake-control-plane.js';
import { harness } from '../pilot-harness.js';

/** Cut the fake server off: every call fails as if nothing answered, and the open match goes with the network. */
function cut(h: ReturnType<typeof harness>): void {
  for (const m of ['heartbeat', 'report', 'match', 'register'] as const) h.control.failNext(m, 100_000);
  h.pilot.abortMatch();
}

/** Advance the fake clock second by second until `done` or `maxSec`. */
async function tick(h: ReturnType<typeof harness>, maxSec: number, done: () => boolean): Promise<number> {
  for (let s = 0; s < maxSec; s++) {
    if (done()) return s;
    await h.clock.advance(1000);
    await h.settle();
  }
  return maxSec;
}

describe('Pilot: the lease fence', () => {
  it('stops its payloads before the server stalls it (lease 100 s, grace 5 s), says why, and carries on', async () => {
    const h = harness({ idleTimeout: '0', orphanTimeout: '0' });
    h.control.registerReply = { ...h.control.registerReply, leaseSec: 100, acceptsEvicted: true };
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    h.control.offer(fakeAssignment(1), fakeAssignment(2));
    await h.until(() => expect(h.runner.live).toHaveLength(2));
    await h.until(() => expect(h.applied('payload-started')).toHaveLength(2));
    const cutAt = h.clock.now();
    cut(h);
    // usable lease 90 s (margin 10 s); SIGTERM 5 s before: at 85 s after the last accepted call
    await tick(h, 200, () => h.runner.started.every((p) => p.signals.length > 0));
    const stoppedAfter = h.clock.now() - cutAt;
    expect(stoppedAfter).toBeGreaterThan(80_000);
    expect(stoppedAfter).toBeLessThanOrEqual(86_000);
    for (const p of h.runner.started) expect(p.signals[0]).toBe('SIGTERM');
    await h.until(() => expect(h.runner.live).toHaveLength(0));
    expect(h.pilot.lifecycle).toBe('serving');
    expect(h.halter.call).toBeNull();
    // the network comes back: the end reports arrive, with the reason
    h.control.heal();
    await tick(h, 60, () => h.applied('payload-ended').length === 2);
    for (const r of h.applied('payload-ended')) {
      // stopped by the lease, not by their own doing: evicted, so the server queues them again
      expect(r).toMatchObject({ signal: 'SIGTERM', evicted: { reason: 'lease' } });
      expect(r.message).toMatch(/^stopped: no contact with the server for 8\d s; the server gives its payloads to other pilots after 100 s$/);
    }
    // and it asks for work again
    await tick(h, 60, () => h.control.openMatches === 1);
    expect(h.control.openMatches).toBe(1);
  });

  it('a stubborn payload is SIGKILLed before the lease is over, however long the grace', async () => {
    const h = harness({ idleTimeout: '0', orphanTimeout: '0', grace: '600' });
    h.control.registerReply = { ...h.control.registerReply, leaseSec: 100 };
    h.runner.onStart = (p) => (p.obeysSigterm = false);
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    h.control.offer(fakeAssignment(1));
    await h.until(() => expect(h.runner.live).toHaveLength(1));
    const cutAt = h.clock.now();
    cut(h);
    await tick(h, 200, () => h.runner.live.length === 0);
    expect(h.runner.started[0]!.signals).toEqual(['SIGTERM', 'SIGKILL']);
    expect(h.clock.now() - cutAt).toBeLessThanOrEqual(91_000);
  });

  it('does not fence while the server answers, nor when it tells no lease', async () => {
    const h = harness({ idleTimeout: '0', orphanTimeout: '0' });
    h.control.registerReply = { ...h.control.registerReply, leaseSec: 100 };
    h.control.heartbeatIntervalSec = 10;
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    h.control.offer(fakeAssignment(1));
    await h.until(() => expect(h.runner.live).toHaveLength(1));
    await tick(h, 300, () => false);
    expect(h.runner.started[0]!.signals).toEqual([]);

    const g = harness({ idleTimeout: '0', orphanTimeout: '0' });
    g.start();
    await g.until(() => expect(g.control.openMatches).toBe(1));
    g.control.offer(fakeAssignment(1));
    await g.until(() => expect(g.runner.live).toHaveLength(1));
    cut(g);
    await tick(g, 300, () => false);
    expect(g.runner.started[0]!.signals).toEqual([]);
  });
});

describe('Pilot: unreachable is not idle', () => {
  it('never halts 300 while it cannot reach the server; leaves that to the orphan timeout (700)', async () => {
    const h = harness({ idleTimeout: '10', orphanTimeout: '120' });
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    cut(h);
    await tick(h, 200, () => h.halter.call !== null);
    await h.halter.called;
    expect(h.store.shutdownMessage).toBe('700 Transient or internal error: server unreachable for 120 s');
  });

  it('once the server is back, halts 300 an idle timeout after its return', async () => {
    const h = harness({ idleTimeout: '10', orphanTimeout: '0' });
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    cut(h);
    await tick(h, 100, () => false);
    expect(h.halter.call).toBeNull();
    h.control.heal();
    // the fake holds a match open until there is work: the server's return is the first heartbeat it answers
    const beats = h.control.heartbeats.length;
    await tick(h, 400, () => h.control.heartbeats.length > beats);
    const backAt = h.clock.now();
    await tick(h, 200, () => h.halter.call !== null);
    await h.halter.called;
    expect(h.applied('shutdown')[0]).toMatchObject({ code: 300, message: expect.stringMatching(/idle for 10 s/) });
    // the exact idle rule, counted from the return: between T and T + 1 s
    expect(h.clock.now() - backAt).toBeGreaterThanOrEqual(10_000);
    expect(h.clock.now() - backAt).toBeLessThanOrEqual(11_000);
  });
});
