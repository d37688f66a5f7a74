import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canTransition, decideLifecycle, type LifecycleInputs } from '../../../../src/agent/monitor/lifecycle.js';

const T0 = 1_000_000;
const base: LifecycleInputs = { now: T0, state: 'serving', runningCount: 0, lastBusyAt: T0, idleTimeoutSec: 300, drainRequested: null, haltRequested: null, haltBy: null };

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
    ['deadline passed', { runningCount: 2, haltBy: T0 }, { kind: 'halt', code: 100, reason: 'deadline' }],
    ['deadline ahead wakes then', { runningCount: 2, haltBy: T0 + 5000 }, { kind: 'stay', wakeAt: T0 + 5000 }],
    ['deadline before idle timeout', { haltBy: T0 + 5000 }, { kind: 'stay', wakeAt: T0 + 5000 }],
    ['booting does not idle-halt', { state: 'booting', now: T0 + 10_000_000 }, { kind: 'stay', wakeAt: null }],
    ['halting stays', { state: 'halting', haltRequested: { code: 100, reason: 'x' } }, { kind: 'stay', wakeAt: null }],
    ['halted stays', { state: 'halted' }, { kind: 'stay', wakeAt: null }],
  ];
  it.each(table)('%s', (_, over, expected) => {
    expect(decideLifecycle({ ...base, ...over })).toEqual(expected);
  });

  it('halts for idleness exactly from T, never before, for any timeout', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 86400 }), fc.integer({ min: 0, max: 10_000_000 }), (idle, dt) => {
        const d = decideLifecycle({ ...base, idleTimeoutSec: idle, now: T0 + dt });
        if (dt >= idle * 1000) expect(d).toEqual({ kind: 'halt', code: 300, reason: `idle for ${idle} s` });
        else expect(d).toEqual({ kind: 'stay', wakeAt: T0 + idle * 1000 });
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
        },
      ),
    );
  });
});
