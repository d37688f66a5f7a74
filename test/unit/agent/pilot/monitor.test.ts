import { describe, expect, it } from 'vitest';
import { fakeAssignment } from '../../../../src/agent/control/fake-control-plane.js';
import { harness } from '../pilot-harness.js';

describe('Pilot monitoring', () => {
  it('never halts for idleness before the minimum lifetime', async () => {
    const h = harness({ idleTimeout: '10', minLifetime: '100' });
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    await h.clock.advance(99_999);
    await h.settle();
    expect(h.halter.call).toBeNull();
    await h.clock.advance(1);
    await h.halter.called;
    expect(h.applied('shutdown')[0]).toMatchObject({ code: 300 });
  });

  it('drains while a drain file exists and serves again once it is removed', async () => {
    const h = harness({ idleTimeout: '0' });
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    h.control.offer(fakeAssignment(1));
    await h.until(() => expect(h.applied('payload-started')).toHaveLength(1));
    h.drain.file = '/site/drain';
    await h.clock.advance(500);
    await h.until(() => expect(h.pilot.lifecycle).toBe('draining'));
    h.drain.file = null;
    await h.clock.advance(500);
    await h.until(() => expect(h.pilot.lifecycle).toBe('serving'));
    await h.until(() => expect(h.control.openMatches).toBe(1));
    expect(h.applied('state').map((r) => [r.state, r.reason])).toEqual([
      ['serving', 'registered'],
      ['draining', 'drain file /site/drain'],
      ['serving', 'drain lifted'],
    ]);
  });

  it('halts with 700 when the server is unreachable for the orphan timeout and nothing runs', async () => {
    const h = harness({ idleTimeout: '0', orphanTimeout: '120' });
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    h.control.failNext('heartbeat', 1000);
    h.control.failNext('report', 1000);
    h.control.failNext('match', 1000);
    // the open match goes away with the network
    (h.pilot as unknown as { abortMatch(): void }).abortMatch();
    for (let i = 0; i < 200 && !h.halter.call; i++) {
      await h.clock.advance(1000);
      await h.settle();
    }
    const call = await h.halter.called;
    expect(call.exitStatus).toBe(17);
    expect(h.store.shutdownMessage).toBe('700 Transient or internal error: server unreachable for 120 s');
    expect(h.outputs.files.get('shutdown_message')).toBe('700 Transient or internal error: server unreachable for 120 s\n');
  });

  it('writes the heartbeat file on every beat, also while the server is away; backs off after failures; beats at once when the server is back', async () => {
    const h = harness({ idleTimeout: '0' });
    h.control.heartbeatIntervalSec = 10;
    h.start();
    await h.until(() => expect(h.control.heartbeats.length).toBeGreaterThan(0));
    expect(h.outputs.files.get('heartbeat')).toMatch(/^\d+ serving load 0\.10 0\.20 0\.30 cores 0\/4 payloads 0\n$/);
    const beats = h.control.heartbeats.length;
    // the server goes away: every call fails
    for (const m of ['heartbeat', 'report', 'match'] as const) h.control.failNext(m, 100_000);
    h.pilot.abortMatch();
    h.outputs.files.delete('heartbeat');
    await h.clock.advance(10_000); // fails; next in 20 s
    await h.settle();
    expect(h.outputs.files.has('heartbeat')).toBe(true);
    await h.clock.advance(19_999); // not yet
    await h.settle();
    await h.clock.advance(1); // fails again; next in 40 s
    await h.settle();
    await h.clock.advance(40_000); // fails a third time; next in 80 s
    await h.settle();
    expect(h.control.heartbeats.length).toBe(beats);
    // back 10 s later: the match loop's next try (within 5 s) finds it, and the overdue beat goes then, not 70 s later
    await h.clock.advance(10_000);
    h.control.heal();
    await h.clock.advance(5000);
    await h.until(() => expect(h.control.heartbeats.length).toBe(beats + 1));
  });

  it('a set instruction changes the heartbeat interval, and the server reply does not undo it', async () => {
    const h = harness({ idleTimeout: '0' });
    h.start();
    await h.until(() => expect(h.control.heartbeats.length).toBe(1));
    h.control.instruct({ id: 4, type: 'set', heartbeatIntervalSec: 5 });
    await h.until(() => expect(h.applied('instruction-done')).toHaveLength(1));
    const n = h.control.heartbeats.length;
    for (let i = 0; i < 4; i++) {
      await h.clock.advance(5_000);
      await h.settle();
    }
    expect(h.control.heartbeats.length).toBeGreaterThanOrEqual(n + 4);
  });

  it('repeating a ping or drain changes nothing, and each is acknowledged once', async () => {
    const h = harness({ idleTimeout: '0' });
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    h.control.instruct({ id: 1, type: 'ping' });
    await h.until(() => expect(h.applied('instruction-done')).toHaveLength(1));
    expect(h.applied('instruction-done')[0]).toMatchObject({ instructionId: 1, ok: true, message: 'pong' });
    h.control.instruct({ id: 1, type: 'ping' });
    await h.clock.advance(60_000);
    await h.settle();
    expect(h.applied('instruction-done')).toHaveLength(1);
  });
});
