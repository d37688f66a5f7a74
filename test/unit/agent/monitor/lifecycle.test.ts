import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { IdleEvidence } from '../../../../src/agent/monitor/idle.js';
import { canTransition, decideLifecycle, type LifecycleInputs } from '../../../../src/agent/monitor/lifecycle.js';

const T0 = 1_000_000;
/** The server has answered since T0; its latest answer to a match was "nothing", asked at `askedAt`, answered at `at`. */
const nothing = (askedAt: number, at: number, over: Partial<IdleEvidence> = {}): IdleEvidence => ({
  earlier: [],
  current: { from: T0, to: at },
  noWork: { askedAt, answeredAt: at },
  ...over,
});
const base: LifecycleInputs = {
  now: T0,
  state: 'serving',
  runningCount: 0,
  bootAt: T0,
  lastBusyAt: T0,
  lastContactAt: T0,
  idle: { earlier: [], current: { from: T0, to: T0 }, noWork: null },
  idleTimeoutSec: 300,
  minLifetimeSec: 0,
  orphanTimeoutSec: 0,
  drainLeadSec: 0,
  drainRequested: null,
  haltRequested: null,
  haltBy: null,
};

describe('decideLifecycle', () => {
  const table: [string, Partial<LifecycleInputs>, ReturnType<typeof decideLifecycle>][] = [
    ['no "nothing" from the server yet: no idle halt, however long', { now: T0 + 10_000_000 }, { kind: 'stay', wakeAt: null }],
    ['"nothing" 1 ms before the idle timeout', { now: T0 + 299_999, idle: nothing(T0 + 280_000, T0 + 299_999) }, { kind: 'stay', wakeAt: null }],
    ['"nothing" at the idle timeout', { now: T0 + 300_000, idle: nothing(T0 + 280_000, T0 + 300_000) }, { kind: 'halt', code: 300, reason: 'idle for 300 s' }],
    ['idle counts from the last payload', { now: T0 + 300_000, lastBusyAt: T0 + 1, idle: nothing(T0 + 280_000, T0 + 300_000) }, { kind: 'stay', wakeAt: null }],
    ['a "nothing" asked before the last payload ran is no answer about now', { now: T0 + 900_000, lastBusyAt: T0 + 290_000, idle: nothing(T0 + 280_000, T0 + 900_000) }, { kind: 'stay', wakeAt: null }],
    ['busy: never idle', { now: T0 + 10_000_000, runningCount: 1, idle: nothing(T0, T0 + 10_000_000) }, { kind: 'stay', wakeAt: null }],
    ['idle timeout 0 disables', { now: T0 + 10_000_000, idleTimeoutSec: 0, idle: nothing(T0, T0 + 10_000_000) }, { kind: 'stay', wakeAt: null }],
    ['halt request wins', { runningCount: 3, haltRequested: { code: 400, reason: 'banned' } }, { kind: 'halt', code: 400, reason: 'banned' }],
    ['halt request while draining', { state: 'draining', runningCount: 1, haltRequested: { code: 100, reason: 'x' } }, { kind: 'halt', code: 100, reason: 'x' }],
    ['halt request while booting', { state: 'booting', haltRequested: { code: 100, reason: 'SIGTERM' } }, { kind: 'halt', code: 100, reason: 'SIGTERM' }],
    ['drain request while serving', { runningCount: 2, drainRequested: 'admin' }, { kind: 'drain', reason: 'admin' }],
    ['draining with payloads', { state: 'draining', runningCount: 2, drainRequested: 'admin' }, { kind: 'stay', wakeAt: null }],
    ['draining, last payload ended', { state: 'draining', drainRequested: 'admin' }, { kind: 'halt', code: 100, reason: 'drained' }],
    ['deadline passed', { runningCount: 2, haltBy: T0 }, { kind: 'halt', code: 100, reason: 'deadline', eviction: 'deadline' }],
    ['deadline ahead wakes then', { runningCount: 2, haltBy: T0 + 5000 }, { kind: 'stay', wakeAt: T0 + 5000 }],
    ['deadline ahead while idle', { haltBy: T0 + 5000 }, { kind: 'stay', wakeAt: T0 + 5000 }],
    ['booting does not idle-halt', { state: 'booting', now: T0 + 10_000_000 }, { kind: 'stay', wakeAt: null }],
    ['halting stays', { state: 'halting', haltRequested: { code: 100, reason: 'x' } }, { kind: 'stay', wakeAt: null }],
    ['halted stays', { state: 'halted' }, { kind: 'stay', wakeAt: null }],
    ['min lifetime holds off the idle halt', { now: T0 + 300_000, minLifetimeSec: 600, idle: nothing(T0 + 280_000, T0 + 300_000) }, { kind: 'stay', wakeAt: null }],
    ['idle halt once the min lifetime is over', { now: T0 + 600_000, minLifetimeSec: 600, idle: nothing(T0 + 580_000, T0 + 600_000) }, { kind: 'halt', code: 300, reason: 'idle for 600 s' }],
    ['orphaned with nothing running', { orphanTimeoutSec: 60, idleTimeoutSec: 0, now: T0 + 60_000 }, { kind: 'halt', code: 700, reason: 'server unreachable for 60 s' }],
    ['orphan timeout ahead wakes then', { orphanTimeoutSec: 60, idleTimeoutSec: 0, now: T0 + 10_000 }, { kind: 'stay', wakeAt: T0 + 60_000 }],
    ['orphaned but busy: payloads go on', { orphanTimeoutSec: 60, runningCount: 1, now: T0 + 600_000 }, { kind: 'stay', wakeAt: null }],
    ['contact resets the orphan clock', { orphanTimeoutSec: 60, idleTimeoutSec: 0, lastContactAt: T0 + 50_000, now: T0 + 60_000 }, { kind: 'stay', wakeAt: T0 + 110_000 }],
    ['drain lifted: back to serving', { state: 'draining', runningCount: 1 }, { kind: 'resume', reason: 'drain lifted' }],
    ['drain file still there', { state: 'draining', runningCount: 1, drainRequested: 'drain file /x' }, { kind: 'stay', wakeAt: null }],
    ['deadline near: drain', { runningCount: 1, haltBy: T0 + 30_000, drainLeadSec: 60 }, { kind: 'drain', reason: 'deadline in 30 s' }],
    ['deadline near keeps draining', { state: 'draining', runningCount: 1, haltBy: T0 + 30_000, drainLeadSec: 60 }, { kind: 'stay', wakeAt: T0 + 30_000 }],
    ['wakes to drain before the deadline', { runningCount: 1, haltBy: T0 + 100_000, drainLeadSec: 60 }, { kind: 'stay', wakeAt: T0 + 40_000 }],
    // time without an answer is never idle time
    ['server away (no stretch under way): no idle halt', { now: T0 + 900_000, idle: { earlier: [{ from: T0, to: T0 + 299_000 }], current: null, noWork: null } }, { kind: 'stay', wakeAt: null }],
    ['server away: the orphan timeout is the rule', { now: T0 + 300_000, lastContactAt: T0, orphanTimeoutSec: 600, idle: { earlier: [], current: null, noWork: null } }, { kind: 'stay', wakeAt: T0 + 600_000 }],
    ['server away that long: orphan halt 700, never 300', { now: T0 + 600_000, lastContactAt: T0, orphanTimeoutSec: 600, idle: { earlier: [{ from: T0, to: T0 }], current: null, noWork: null } }, { kind: 'halt', code: 700, reason: 'server unreachable for 600 s' }],
    [
      'an outage pauses the idle time: 200 s answered, away 60 s, 99.999 s answered',
      { now: T0 + 359_999, idle: { earlier: [{ from: T0, to: T0 + 200_000 }], current: { from: T0 + 260_000, to: T0 + 359_999 }, noWork: { askedAt: T0 + 270_000, answeredAt: T0 + 359_999 } } },
      { kind: 'stay', wakeAt: null },
    ],
    [
      'an outage pauses the idle time: 200 s answered, away 60 s, 100 s answered',
      { now: T0 + 360_000, idle: { earlier: [{ from: T0, to: T0 + 200_000 }], current: { from: T0 + 260_000, to: T0 + 360_000 }, noWork: { askedAt: T0 + 270_000, answeredAt: T0 + 360_000 } } },
      { kind: 'halt', code: 300, reason: 'idle for 300 s' },
    ],
    [
      'idle time enough before an outage, but no "nothing" asked since the return',
      { now: T0 + 500_000, idle: { earlier: [{ from: T0, to: T0 + 400_000 }], current: { from: T0 + 500_000, to: T0 + 500_000 }, noWork: { askedAt: T0 + 399_000, answeredAt: T0 + 500_000 } } },
      { kind: 'stay', wakeAt: null },
    ],
    [
      'idle time enough before an outage: halts on the first "nothing" asked after the return',
      { now: T0 + 500_010, idle: { earlier: [{ from: T0, to: T0 + 400_000 }], current: { from: T0 + 500_000, to: T0 + 500_010 }, noWork: { askedAt: T0 + 500_000, answeredAt: T0 + 500_010 } } },
      { kind: 'halt', code: 300, reason: 'idle for 400 s' },
    ],
  ];
  it.each(table)('%s', (_, over, expected) => {
    expect(decideLifecycle({ ...base, ...over })).toEqual(expected);
  });

  it('halts for idleness on the first "nothing" that completes T, never before, for any timeout', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 86400 }), fc.integer({ min: 0, max: 10_000_000 }), fc.integer({ min: 0, max: 60_000 }), (idle, dt, wait) => {
        const at = T0 + dt;
        const d = decideLifecycle({ ...base, idleTimeoutSec: idle, now: at, idle: nothing(Math.max(T0, at - wait), at) });
        if (dt >= idle * 1000) expect(d).toMatchObject({ kind: 'halt', code: 300 });
        else expect(d).toEqual({ kind: 'stay', wakeAt: null });
      }),
    );
  });

  it('only ever proposes allowed transitions', () => {
    const states = ['booting', 'serving', 'draining', 'halting', 'halted'] as const;
    fc.assert(
      fc.property(
        fc.constantFrom(...states),
        fc.nat(3),
        fc.option(fc.string(), { nil: null }),
        fc.option(fc.record({ code: fc.constantFrom(100, 300, 400), reason: fc.string() }), { nil: null }),
        fc.nat(1_000_000),
        (state, running, drain, halt, dt) => {
          const d = decideLifecycle({ ...base, state, runningCount: running, drainRequested: drain, haltRequested: halt, now: T0 + dt });
          if (d.kind === 'drain') expect(canTransition(state, 'draining')).toBe(true);
          if (d.kind === 'halt') expect(canTransition(state, 'halting')).toBe(true);
          if (d.kind === 'resume') expect(canTransition(state, 'serving')).toBe(true);
        },
      ),
    );
  });
});
