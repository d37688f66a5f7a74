import { describe, expect, it } from 'vitest';
import { fakeAssignment } from '../../../src/agent/control/fake-control-plane.js';
import { MemoryStateStore } from '../../../src/agent/state/memory-store.js';
import { harness } from './pilot-harness.js';

describe('Pilot', () => {
  it('halts with 300 exactly when the idle timeout expires, counted from boot', async () => {
    const h = harness({ idleTimeout: '300' });
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    await h.clock.advance(299_999);
    await h.settle();
    expect(h.halter.call).toBeNull();
    await h.clock.advance(1);
    const call = await h.halter.called;
    expect(call).toEqual({ action: { kind: 'exit' }, exitStatus: 0 });
    expect(h.clock.now() - 1_700_000_000_000).toBe(300_000);
    expect(h.applied('shutdown')).toEqual([expect.objectContaining({ code: 300 })]);
    expect(h.applied('state').map((r) => r.state)).toEqual(['serving', 'halting', 'halted']);
    // the code, its text and the reason, as the server shows it
    expect(h.store.shutdownMessage).toBe('300 No more work: idle for 300 s');
    expect(h.applied('shutdown')[0]?.message).toBe('No more work: idle for 300 s');
  });

  it('counts idleness from the end of the last payload', async () => {
    const h = harness({ idleTimeout: '100' });
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    h.control.offer(fakeAssignment(1));
    await h.until(() => expect(h.runner.started).toHaveLength(1));
    await h.clock.advance(500_000);
    h.runner.started[0]!.finish({ exitCode: 0, signal: null });
    await h.until(() => expect(h.applied('payload-ended')).toHaveLength(1));
    await h.clock.advance(99_999);
    await h.settle();
    expect(h.halter.call).toBeNull();
    await h.clock.advance(1);
    await h.halter.called;
    expect(h.applied('shutdown')[0]?.code).toBe(300);
  });

  it('carries out a halt instruction at once: payloads signalled and reported evicted, ack before shutdown', async () => {
    const h = harness();
    h.control.registerReply = { ...h.control.registerReply, acceptsEvicted: true };
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    h.control.offer(fakeAssignment(1, { cores: 2 }));
    await h.until(() => expect(h.applied('payload-started')).toHaveLength(1));
    h.control.instruct({ id: 9, type: 'halt', code: 400, reason: 'banned' });
    const call = await h.halter.called;
    expect(call.exitStatus).toBe(14);
    expect(h.runner.started[0]!.signals).toEqual(['SIGTERM']);
    const types = h.control.applied.map((r) => r.type);
    expect(types.indexOf('instruction-done')).toBeLessThan(types.indexOf('shutdown'));
    expect(h.applied('payload-ended')[0]).toMatchObject({ payloadId: 1, signal: 'SIGTERM', message: 'stopped: halting: banned', evicted: { reason: 'halt' } });
    expect(h.applied('shutdown')[0]).toMatchObject({ code: 400 });
    expect(h.store.shutdownMessage).toBe('400 Site or node banned: banned');
  });

  it('tells a server that does not take it nothing of the eviction (an older server would refuse the field)', async () => {
    const h = harness();
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    h.control.offer(fakeAssignment(1));
    await h.until(() => expect(h.applied('payload-started')).toHaveLength(1));
    h.control.instruct({ id: 9, type: 'halt' });
    await h.halter.called;
    const ended = h.applied('payload-ended')[0]!;
    expect(ended).toMatchObject({ payloadId: 1, signal: 'SIGTERM' });
    expect(ended).not.toHaveProperty('evicted');
  });

  it('a payload an administrator kills is not evicted, even when a halt follows while it stops', async () => {
    const h = harness({ grace: '5' });
    h.control.registerReply = { ...h.control.registerReply, acceptsEvicted: true };
    h.runner.onStart = (p) => (p.obeysSigterm = false);
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    h.control.offer(fakeAssignment(1), fakeAssignment(2));
    await h.until(() => expect(h.applied('payload-started')).toHaveLength(2));
    // the two start side by side, in either order: find each by its payload id
    const proc = (id: number) => h.runner.started.find((p) => p.spec.env.VMPILOT_PAYLOAD_ID === String(id))!;
    h.control.instruct({ id: 8, type: 'kill-payload', payloadId: 1, reason: 'wrong input' });
    await h.until(() => expect(proc(1).signals).toEqual(['SIGTERM']));
    h.pilot.requestHalt(100, 'SIGTERM', 'signal');
    await h.until(() => expect(proc(2).signals).toEqual(['SIGTERM']));
    await h.clock.advance(5_000);
    const call = await h.halter.called;
    expect(call.exitStatus).toBe(0);
    const ended = new Map(h.applied('payload-ended').map((r) => [r.payloadId, r]));
    expect(ended.get(1)).not.toHaveProperty('evicted');
    expect(ended.get(1)?.message).toBe('stopped: wrong input');
    expect(ended.get(2)).toMatchObject({ evicted: { reason: 'signal' }, message: 'stopped: halting: SIGTERM' });
  });

  it('SIGKILLs a payload that ignores SIGTERM after the grace period', async () => {
    const h = harness({ grace: '5' });
    h.runner.onStart = (p) => (p.obeysSigterm = false);
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    h.control.offer(fakeAssignment(1));
    await h.until(() => expect(h.applied('payload-started')).toHaveLength(1));
    h.pilot.requestHalt(100, 'SIGTERM');
    await h.until(() => expect(h.runner.started[0]!.signals).toEqual(['SIGTERM']));
    await h.clock.advance(4_999);
    await h.settle();
    expect(h.runner.started[0]!.signals).toEqual(['SIGTERM']);
    await h.clock.advance(1);
    await h.halter.called;
    expect(h.runner.started[0]!.signals).toEqual(['SIGTERM', 'SIGKILL']);
    expect(h.halter.call?.exitStatus).toBe(0);
  });

  it('drains: no new work, halts 100 once running payloads have ended', async () => {
    const h = harness();
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    h.control.offer(fakeAssignment(1));
    await h.until(() => expect(h.applied('payload-started')).toHaveLength(1));
    h.control.instruct({ id: 3, type: 'drain' });
    await h.until(() => expect(h.pilot.lifecycle).toBe('draining'));
    // still one match open, as an instruction poll that no payload fits
    await h.until(() => expect(h.control.matches.at(-1)).toMatchObject({ freeCores: 0, holding: [1] }));
    const matches = h.control.matches.length;
    await h.clock.advance(3_600_000);
    expect(h.halter.call).toBeNull();
    h.runner.started[0]!.finish({ exitCode: 0, signal: null });
    await h.halter.called;
    for (const m of h.control.matches.slice(matches - 1)) expect(m.freeCores).toBe(0);
    expect(h.applied('shutdown')[0]).toMatchObject({ code: 100, message: expect.stringContaining('drained') });
    expect(h.applied('state').map((r) => r.state)).toEqual(['serving', 'draining', 'halting', 'halted']);
  });

  it('a draining, busy agent still hears a halt at once through its open match, and gives back work it will not start', async () => {
    const h = harness();
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    h.control.offer(fakeAssignment(1));
    await h.until(() => expect(h.applied('payload-started')).toHaveLength(1));
    h.control.instruct({ id: 3, type: 'drain' });
    await h.until(() => expect(h.control.matches.at(-1)).toMatchObject({ freeCores: 0 }));
    h.control.offer(fakeAssignment(2));
    await h.until(() => expect(h.applied('payload-released')).toMatchObject([{ payloadId: 2, reason: 'not started: the pilot is draining' }]));
    await h.until(() => expect(h.control.matches.at(-1)).toMatchObject({ freeCores: 0, holding: [1, 2] }));
    expect(h.runner.started).toHaveLength(1);
    const beats = h.control.heartbeats.length;
    // the fake clock does not move: no heartbeat can carry the halt, only the open match
    h.control.instruct({ id: 4, type: 'halt', code: 100, reason: 'operator' });
    await h.halter.called;
    expect(h.control.heartbeats.length - beats).toBeLessThanOrEqual(1);
    expect(h.applied('instruction-done').map((r) => r.instructionId)).toEqual([3, 4]);
    expect(h.applied('payload-ended')).toMatchObject([{ payloadId: 1 }]);
  });

  it('saves the "starting" record before the process is spawned, however slow the disk', async () => {
    class SlowStore extends MemoryStateStore {
      override async save(state: Parameters<MemoryStateStore['save']>[0]): Promise<void> {
        for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
        await super.save(state);
      }
    }
    const h = harness({}, new SlowStore());
    let onDisk: unknown = 'not spawned';
    h.runner.onStart = () => {
      onDisk = h.store.saved?.running['1'];
    };
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    h.control.offer(fakeAssignment(1));
    await h.until(() => expect(h.runner.started).toHaveLength(1));
    expect(onDisk).toMatchObject({ pid: 0, assignment: { id: 1 } });
    expect(h.store.saved?.started).toContain(1);
  });

  it('never over-commits, whatever sizes the server hands out', async () => {
    const h = harness({ cores: '4' });
    let maxUsed = 0;
    h.runner.onStart = () => {
      const used = h.runner.live.reduce((n, p) => n + Number(p.spec.env.VMPILOT_CORES), 0);
      maxUsed = Math.max(maxUsed, used);
    };
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    const sizes = [1, 2, 3, 4, 5, 1, 2, 2, 1, 3, 1, 4, 2, 1, 1, 6, 2, 3, 1, 1];
    h.control.offer(...sizes.map((cores, i) => fakeAssignment(i + 1, { cores })));
    for (let round = 0; round < 2000; round++) {
      const ended = h.applied('payload-ended').length + h.applied('payload-released').length;
      if (ended === sizes.length) break;
      await h.settle();
      h.runner.live[round % Math.max(1, h.runner.live.length)]?.finish();
    }
    await h.until(() => expect(h.applied('payload-ended').length + h.applied('payload-released').length).toBe(sizes.length));
    expect(maxUsed).toBeLessThanOrEqual(4);
    // what did not fit was given back to the queue, never reported as ended (failed)
    expect(h.applied('payload-ended').filter((r) => r.message?.includes('not started'))).toHaveLength(0);
    for (const id of [5, 16]) expect(h.applied('payload-released').find((r) => r.payloadId === id)?.reason).toMatch(/needs \d cores/);
    for (const m of h.control.matches) expect(m.freeCores).toBeLessThanOrEqual(4);
  });

  it('asks again with the new free cores as soon as a payload ends', async () => {
    const h = harness({ cores: '1' });
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    h.control.offer(fakeAssignment(1));
    await h.until(() => expect(h.runner.started).toHaveLength(1));
    await h.settle();
    // full: the open match only polls for instructions
    expect(h.control.matches.at(-1)).toMatchObject({ freeCores: 0, holding: [1] });
    h.runner.started[0]!.finish();
    // (it may still list the payload in `holding` while its end report is on the way)
    await h.until(() => expect(h.control.matches.at(-1)).toMatchObject({ freeCores: 1 }));
  });

  it('does not start a redelivered payload id twice', async () => {
    const h = harness();
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    h.control.offer(fakeAssignment(1), fakeAssignment(1), fakeAssignment(2));
    await h.until(() => expect(h.runner.started).toHaveLength(2));
    h.runner.started[0]!.finish();
    h.control.offer(fakeAssignment(1));
    await h.until(() => expect(h.applied('payload-ended')).toHaveLength(1));
    await h.settle();
    expect(h.runner.started.map((p) => p.spec.env.VMPILOT_PAYLOAD_ID).sort()).toEqual(['1', '2']);
    expect(h.applied('payload-started').map((r) => r.payloadId).sort()).toEqual([1, 2]);
  });

  it('carries out an instruction delivered twice only once', async () => {
    const h = harness({ idleTimeout: '0' });
    h.control.failNext('report', 10);
    h.control.instruct({ id: 5, type: 'set', idleTimeoutSec: 5000 });
    h.start();
    // While acks fail, every heartbeat delivers the instruction again.
    for (let i = 0; i < 30 && h.applied('instruction-done').length === 0; i++) {
      await h.settle();
      await h.clock.advance(30_000);
    }
    await h.until(() => expect(h.applied('instruction-done')).toHaveLength(1));
    expect(h.control.heartbeats.length).toBeGreaterThanOrEqual(2);
    expect(h.control.matches.length).toBeGreaterThanOrEqual(1);
    expect(h.applied('instruction-done')[0]).toMatchObject({ instructionId: 5, ok: true });
    const acks = h.control.batches.flat().filter((r) => r.type === 'instruction-done');
    expect(new Set(acks.map((r) => r.seq)).size).toBe(1);
    expect(h.store.saved?.instructionsDone).toEqual([5]);
  });

  it('fails a payload that cannot start without crashing, then keeps serving', async () => {
    const h = harness();
    h.runner.failCommands.add('nope');
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    h.control.offer(fakeAssignment(1, { command: ['nope'] }));
    await h.until(() => expect(h.applied('payload-ended')).toHaveLength(1));
    expect(h.applied('payload-ended')[0]).toMatchObject({ exitCode: 127, message: expect.stringMatching(/^cannot start/) });
    await h.until(() => expect(h.control.openMatches).toBe(1));
    expect(h.pilot.lifecycle).toBe('serving');
  });

  it('retries registration while the server is unreachable, and sends heartbeats', async () => {
    const h = harness();
    h.control.failNext('register', 2);
    h.start();
    for (let i = 0; i < 20 && h.control.registrations.length === 0; i++) {
      await h.settle();
      await h.clock.advance(1000);
    }
    await h.until(() => expect(h.control.registrations).toHaveLength(1));
    expect(h.control.registrations[0]).toMatchObject({ cores: 4, hostname: 'node-1' });
    await h.until(() => expect(h.control.heartbeats.length).toBeGreaterThan(0));
    expect(h.control.heartbeats[0]).toMatchObject({ state: 'serving', cores: { total: 4, used: 0, free: 4 } });
  });
});
