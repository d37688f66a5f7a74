import { describe, expect, it } from 'vitest';
import { FakeControlPlane, fakeAssignment } from '../../../../src/agent/control/fake-control-plane.js';
import { ContactTracker, LATE_MS } from '../../../../src/agent/pilot/contact.js';
import { idleHaltBy } from '../../../../src/agent/monitor/idle.js';
import type { ControlPlane } from '../../../../src/agent/ports.js';
import type { HeartbeatRequest, MatchRequest } from '../../../../src/protocol/index.js';
import { FakeClock } from '../../../../src/shared/clock.js';
import { VmpilotError } from '../../../../src/shared/errors.js';

const ask = (over: Partial<MatchRequest> = {}): MatchRequest => ({ freeCores: 4, totalCores: 4, freeMemoryMb: 1000, remainingSec: null, holding: [], waitSec: 20, ...over });
const beat: HeartbeatRequest = { at: 0, state: 'serving', version: 'x', uptimeSec: 1, cores: { total: 4, used: 0, free: 4 }, memoryMb: { total: 1, used: 0 }, payloads: [], deadline: null };

function setup() {
  const clock = new FakeClock();
  const fake = new FakeControlPlane(clock);
  const events: string[] = [];
  const t = new ContactTracker(fake, clock, () => events.push('back'), () => events.push('nothing'));
  const t0 = clock.now();
  t.reset(t0);
  const settle = async () => {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  };
  /** A match held by the fake server for its wait, answered as the clock passes it. */
  const matchFor = async (request: MatchRequest) => {
    const reply = t.match(request);
    await settle();
    await clock.advance(request.waitSec * 1000);
    return reply;
  };
  return { clock, fake, t, t0, events, matchFor };
}

describe('ContactTracker: what the server answered, and when', () => {
  it('starts with no stretch: the server has said nothing before its first answer', () => {
    const { t } = setup();
    expect(t.idle).toEqual({ earlier: [], current: null, noWork: null });
  });

  it('keeps one stretch while the server answers; a "nothing" to a match that offered work is the idle evidence', async () => {
    const { t, t0, events, matchFor } = setup();
    await t.heartbeat(beat);
    await matchFor(ask());
    expect(t.idle).toEqual({ earlier: [], current: { from: t0, to: t0 + 20_000 }, noWork: { askedAt: t0, answeredAt: t0 + 20_000 } });
    expect(events).toEqual(['nothing']);
  });

  it('an instruction poll, an instruction or a payload is no "nothing"', async () => {
    const { t, fake, events, matchFor } = setup();
    await matchFor(ask({ freeCores: 0 }));
    expect(t.idle.noWork).toBeNull();
    await matchFor(ask());
    expect(t.idle.noWork).not.toBeNull();
    fake.offer(fakeAssignment(1));
    await t.match(ask());
    expect(t.idle.noWork).toBeNull();
    fake.instruct({ id: 3, type: 'drain', reason: 'x' });
    await t.match(ask());
    expect(t.idle.noWork).toBeNull();
    expect(events).toEqual(['nothing']);
  });

  it('a call without an answer ends the stretch; the next starts at the send time of the first call answered after it', async () => {
    const { t, fake, clock, t0, events, matchFor } = setup();
    await matchFor(ask());
    fake.failNext('heartbeat', 2);
    await clock.advance(1000);
    await expect(t.heartbeat(beat)).rejects.toThrow();
    expect(t.unreachable).toBe(true);
    expect(t.idle).toEqual({ earlier: [{ from: t0, to: t0 + 20_000 }], current: null, noWork: null });
    await clock.advance(4000);
    await expect(t.heartbeat(beat)).rejects.toThrow();
    await clock.advance(3000);
    const back = clock.now();
    await matchFor(ask({ waitSec: 0 }));
    expect(t.unreachable).toBe(false);
    expect(t.idle).toEqual({ earlier: [{ from: t0, to: t0 + 20_000 }], current: { from: back, to: back }, noWork: { askedAt: back, answeredAt: back } });
    expect(events).toEqual(['nothing', 'back', 'nothing']);
    // the idle time: 20 s before the outage, none during it
    expect(idleHaltBy({ idle: t.idle, lastBusyAt: t0, bootAt: t0, idleTimeoutSec: 20, minLifetimeSec: 0 })).toEqual({ idleMs: 20_000 });
    expect(idleHaltBy({ idle: t.idle, lastBusyAt: t0, bootAt: t0, idleTimeoutSec: 21, minLifetimeSec: 0 })).toBeNull();
  });

  it('a request that hung across an outage does not open the next stretch before the outage ended', async () => {
    const { t, fake, clock, t0 } = setup();
    await t.heartbeat(beat);
    const held = t.match(ask());
    await clock.advance(5000);
    fake.failNext('report');
    await expect(t.report([])).rejects.toThrow();
    const failedAt = clock.now();
    await clock.advance(15_000);
    await held;
    expect(t.idle).toEqual({ earlier: [{ from: t0, to: t0 }], current: { from: failedAt, to: t0 + 20_000 }, noWork: { askedAt: t0, answeredAt: t0 + 20_000 } });
    // asked before the outage: no evidence about now
    expect(idleHaltBy({ idle: t.idle, lastBusyAt: t0, bootAt: t0, idleTimeoutSec: 1, minLifetimeSec: 0 })).toBeNull();
  });

  it(`an answer more than ${LATE_MS / 1000} s past its bound is time without an answer`, async () => {
    const clock = new FakeClock();
    // a slow server: each match is answered "nothing" when the test says
    let release: () => void = () => undefined;
    const slow = stub({
      match: async () => {
        await new Promise<void>((r) => (release = r));
        return { payload: null, instructions: [] };
      },
    });
    const t = new ContactTracker(slow, clock);
    const t0 = clock.now();
    t.reset(t0);
    await t.heartbeat(beat);
    const reply = t.match(ask({ waitSec: 2 }));
    await clock.advance(2000 + LATE_MS);
    release();
    await reply;
    // on time (just): part of the stretch, and evidence
    expect(t.idle.current).toEqual({ from: t0, to: t0 + 2000 + LATE_MS });
    expect(t.idle.noWork).not.toBeNull();
    const late = t.match(ask({ waitSec: 2 }));
    const askedAt = clock.now();
    await clock.advance(30_000);
    release();
    await late;
    const now = clock.now();
    expect(t.idle).toEqual({ earlier: [{ from: t0, to: t0 + 2000 + LATE_MS }], current: { from: now, to: now }, noWork: { askedAt, answeredAt: now } });
    expect(idleHaltBy({ idle: t.idle, lastBusyAt: t0, bootAt: t0, idleTimeoutSec: 1, minLifetimeSec: 0 })).toBeNull();
  });

  it('a refusal is an answer: the server is there', async () => {
    const clock = new FakeClock();
    const t = new ContactTracker(
      stub({
        report: async () => {
          throw new VmpilotError('VMP_CONFLICT', 'refused');
        },
      }),
      clock,
    );
    const t0 = clock.now();
    t.reset(t0);
    await clock.advance(1000);
    await expect(t.report([])).rejects.toThrow('refused');
    expect(t.unreachable).toBe(false);
    expect(t.idle.current).toEqual({ from: t0 + 1000, to: t0 + 1000 });
    expect(t.lastContactAt).toBe(t0 + 1000);
  });

  it('an aborted match is neither an answer nor an outage', async () => {
    const { t, clock, t0 } = setup();
    await t.heartbeat(beat);
    const abort = new AbortController();
    const open = t.match(ask(), abort.signal);
    await clock.advance(3000);
    abort.abort();
    await expect(open).rejects.toThrow();
    expect(t.unreachable).toBe(false);
    expect(t.idle).toEqual({ earlier: [], current: { from: t0, to: t0 }, noWork: null });
  });
});

/** A control plane whose calls answer at once, but for those given. */
function stub(over: Partial<ControlPlane>): ControlPlane {
  return {
    register: async () => ({ pilotId: 1, credential: 'c', heartbeatIntervalSec: 30, matchWaitMaxSec: 20, serverTime: 0 }),
    heartbeat: async () => ({ intervalSec: 30, instructions: [] }),
    match: async () => ({ payload: null, instructions: [] }),
    report: async () => ({ appliedSeq: 0, refused: [], instructions: [] }),
    resume: () => undefined,
    ...over,
  };
}
