import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canTransition, decideLifecycle, type LifecycleInputs } from '../../../../src/agent/monitor/lifecycle.js';

const T0 = 1_000_000;
const base: LifecycleInputs = {
  now: T0,
  state: 'serving',
  runningCount: 0,
  bootAt: T0,
  lastBusyAt: T0,
  lastContactAt: T0,
  serverDown: false,
  reachableSince: T0,
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
    ['fresh boot: sleep until the idle timeout', {}, { kind: 'stay', wakeAt: T0 + 300_000 }],
    ['1 ms before the idle timeout', { now: T0 + 299_999 }, { kind: 'stay', wakeAt: T0 + 300_000 }],
    ['at the idle timeout', { now: T0 + 300_000 }, { kind: 'halt', code: 300, reason: 'idle for 300 s' }],
    ['idle counts from the last payload', { now: T0 + 300_000, lastBusyAt: T0 + 1 }, { kind: 'stay', wakeAt: T0 + 300_001 }],
    ['busy: never idle', { now: T0 + 10_000_000, runningCount: 1 }, { kind: 'stay', wakeAt: null }],
    ['idle timeout 0 disables', { now: T0 + 10_000_000, idleTimeoutSec: 0 }, { kind: 'stay', wakeAt: null }],
    ['halt request wins', { runningCount: 3, haltRequested: { code: 400, reason: 'banned' } }, { kind: 'halt', code: 400, reason: 'banned' }],
    ['halt request while draining', { state: 'draining', runningCount: 1, haltRequested: { code: 100, reason: 'x' } }, { kind: 'halt', code: 100, reason: 'x' }],
    ['halt request while booting', { state: 'booting', haltRequested: { code: 100, reason: 'SIGTERM' } }, { kind: 'halt', code: 100, reason: 'SIGTERM' }],
    ['drain request while serving', { runningCount: 2, drainRequested: 'admin' }, { kind: 'drain', reason: 'admin' }],
    ['draining with payloads', { state: 'draining', runningCount: 2, drainRequested: 'admin' }, { kind: 'stay', wakeAt: null }],
    ['draining, last payload ended', { state: 'draining', drainRequested: 'admin' }, { kind: 'halt', code: 100, reason: 'drained' }],
    ['deadline passed', { runningCount: 2, haltBy: T0 }, { kind: 'halt', code: 100, reason: 'deadline', eviction: 'deadline' }],
    ['deadline ahead wakes then', { runningCount: 2, haltBy: T0 + 5000 }, { kind: 'stay', wakeAt: T0 + 5000 }],
    ['deadline before idle timeout', { haltBy: T0 + 5000 }, { kind: 'stay', wakeAt: T0 + 5000 }],
    ['booting does not idle-halt', { state: 'booting', now: T0 + 10_000_000 }, { kind: 'stay', wakeAt: null }],
    ['halting stays', { state: 'halting', haltRequested: { code: 100, reason: 'x' } }, { kind: 'stay', wakeAt: null }],
    ['halted stays', { state: 'halted' }, { kind: 'stay', wakeAt: null }],
    ['min lifetime holds off the idle halt', { now: T0 + 300_000, minLifetimeSec: 600 }, { kind: 'stay', wakeAt: T0 + 600_000 }],
    ['idle halt once the min lifetime is over', { now: T0 + 600_000, minLifetimeSec: 600 }, { kind: 'halt', code: 300, reason: 'idle for 600 s' }],
    ['orphaned with nothing running', { orphanTimeoutSec: 60, idleTimeoutSec: 0, now: T0 + 60_000 }, { kind: 'halt', code: 700, reason: 'server unreachable for 60 s' }],
    ['orphan timeout ahead wakes then', { orphanTimeoutSec: 60, idleTimeoutSec: 0, now: T0 + 10_000 }, { kind: 'stay', wakeAt: T0 + 60_000 }],
    ['orphaned but busy: payloads go on', { orphanTimeoutSec: 60, runningCount: 1, now: T0 + 600_000 }, { kind: 'stay', wakeAt: null }],
    ['contact resets the orphan clock', { orphanTimeoutSec: 60, idleTimeoutSec: 0, lastContactAt: T0 + 50_000, now: T0 + 60_000 }, { kind: 'stay', wakeAt: T0 + 110_000 }],
    ['drain lifted: back to serving', { state: 'draining', runningCount: 1 }, { kind: 'resume', reason: 'drain lifted' }],
    ['drain file still there', { state: 'draining', runningCount: 1, drainRequested: 'drain file /x' }, { kind: 'stay', wakeAt: null }],
    ['deadline near: drain', { runningCount: 1, haltBy: T0 + 30_000, drainLeadSec: 60 }, { kind: 'drain', reason: 'deadline in 30 s' }],
    ['deadline near keeps draining', { state: 'draining', runningCount: 1, haltBy: T0 + 30_000, drainLeadSec: 60 }, { kind: 'stay', wakeAt: T0 + 30_000 }],
    ['wakes to drain before the deadline', { runningCount: 1, haltBy: T0 + 100_000, drainLeadSec: 60 }, { kind: 'stay', wakeAt: T0 + 40_000 }],
    // unreachable is not idle
    ['server away: no idle halt, look again in 1 s', { now: T0 + 300_000, serverDown: true, lastContactAt: T0 + 299_000 }, { kind: 'stay', wakeAt: T0 + 301_000 }],
    ['server back (after a blip, reachableSince unchanged): idle halt as usual', { now: T0 + 300_000, lastContactAt: T0 + 299_000 }, { kind: 'halt', code: 300, reason: 'idle for 300 s' }],
    ['server away, orphan timeout first', { now: T0 + 300_000, serverDown: true, lastContactAt: T0, orphanTimeoutSec: 600 }, { kind: 'stay', wakeAt: T0 + 301_000 }],
    ['server away that long: orphan halt 700, never 300', { now: T0 + 600_000, serverDown: true, lastContactAt: T0, orphanTimeoutSec: 600 }, { kind: 'halt', code: 700, reason: 'server unreachable for 600 s' }],
    ['idle counts from the server\'s return', { now: T0 + 400_000, reachableSince: T0 + 200_000 }, { kind: 'stay', wakeAt: T0 + 500_000 }],
    ['idle halt T after the server\'s return', { now: T0 + 500_000, reachableSince: T0 + 200_000 }, { kind: 'halt', code: 300, reason: 'idle for 300 s' }],
    ['a payload after the return counts from the payload', { now: T0 + 500_000, reachableSince: T0 + 200_000, lastBusyAt: T0 + 250_000 }, { kind: 'stay', wakeAt: T0 + 550_000 }],
  ];
  it.each(table)('%s', (_, over, expected) => {
    expect(decideLifecycle({ ...base, ...over })).toEqual(expected);
  });

  it('halts for idleness exactly from T, never before, for any timeout', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 86400 }), fc.integer({ min: 0, max: 10_000_000 }), (idle, dt) => {
        const d = decideLifecycle({ ...base, idleTimeoutSec: idle, now: T0 + dt });
        if (dt >= idle * 1000) expect(d).toMatchObject({ kind: 'halt', code: 300 });
        else expect(d).toEqual({ kind: 'stay', wakeAt: T0 + idle * 1000 });
      }),
    );
  });

  it('never halts 300 while the server is unreachable; once it is back, halts exactly T after its return', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3600 }), fc.integer({ min: 0, max: 100_000_000 }), fc.integer({ min: 0, max: 10_000_000 }), (idle, down, dt) => {
        // unreachable from T0 for `down` ms (last answer at T0): no idle halt, however long
        const away = decideLifecycle({ ...base, idleTimeoutSec: idle, serverDown: true, now: T0 + 62_001 + down });
        expect(away.kind).toBe('stay');
        expect(away).toEqual({ kind: 'stay', wakeAt: T0 + 62_001 + down + 1000 });
        // back at `back`: the idle halt comes T after it, between T and T + 1 s as always
        const back = T0 + 62_001 + down;
        const d = decideLifecycle({ ...base, idleTimeoutSec: idle, lastContactAt: back + dt, reachableSince: back, now: back + dt });
        if (dt >= idle * 1000) expect(d).toMatchObject({ kind: 'halt', code: 300 });
        else expect(d).toEqual({ kind: 'stay', wakeAt: back + idle * 1000 });
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
