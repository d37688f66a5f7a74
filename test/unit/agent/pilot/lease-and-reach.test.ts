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

  it('once the server is back, asks at once and halts 300 when the answered time adds up to the idle timeout: the outage counts for nothing', async () => {
    const h = harness({ idleTimeout: '10', orphanTimeout: '0' });
    // heartbeats every second: the server answers through the first 4 s
    h.control.heartbeatIntervalSec = 1;
    const asked: { at: number; waitSec: number }[] = [];
    const match = h.control.match.bind(h.control);
    h.control.match = (request, signal) => {
      asked.push({ at: h.clock.now(), waitSec: request.waitSec });
      return match(request, signal);
    };
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    await tick(h, 4, () => false);
    cut(h);
    await tick(h, 100, () => false);
    expect(h.halter.call).toBeNull();
    const tried = asked.length;
    h.control.heal();
    await tick(h, 10, () => asked.length > tried);
    // the first try after the outage (within the retry cap) is a quick poll: answered at once
    const probe = asked[tried]!;
    expect(probe.waitSec).toBe(0);
    await tick(h, 60, () => h.halter.call !== null);
    expect(h.halter.call, 'halted').not.toBeNull();
    await h.halter.called;
    expect(h.applied('shutdown')[0]).toMatchObject({ code: 300, message: expect.stringMatching(/idle for 10 s/) });
    // 4 s answered before the outage, 6 s after the return: between 6 and 7 s after it (ticks of a second)
    expect(h.clock.now() - probe.at).toBeGreaterThanOrEqual(6000);
    expect(h.clock.now() - probe.at).toBeLessThanOrEqual(7000);
  });
});
