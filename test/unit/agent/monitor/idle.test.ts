import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { answeredMs, idleAnswerInMs, idleHaltBy, type IdleEvidence, type IdleInputs, type Stretch } from '../../../../src/agent/monitor/idle.js';

const T0 = 1_000_000;
const inputs = (idle: IdleEvidence, over: Partial<IdleInputs> = {}): IdleInputs => ({ idle, lastBusyAt: T0, bootAt: T0, idleTimeoutSec: 60, minLifetimeSec: 0, ...over });

/**
 * A history from T0 on: answered stretches and outages of the given lengths (ms), alternating, the last
 * stretch under way; the pilot's last "nothing" was asked `askAgo` ms before its end and answered at its end.
 */
function history(pieces: { answered: number; away: number }[], last: number, askAgo: number): { e: IdleEvidence; end: number; answered: number } {
  const earlier: Stretch[] = [];
  let t = T0;
  let answered = 0;
  for (const p of pieces) {
    earlier.push({ from: t, to: t + p.answered });
    answered += p.answered;
    t += p.answered + p.away;
  }
  const end = t + last;
  const e: IdleEvidence = { earlier, current: { from: t, to: end }, noWork: { askedAt: Math.max(t, end - askAgo), answeredAt: end } };
  return { e, end, answered: answered + last };
}

const pieces = fc.array(fc.record({ answered: fc.integer({ min: 0, max: 100_000 }), away: fc.integer({ min: 1, max: 10_000_000 }) }), { maxLength: 6 });

describe('the idle rule: only on the server\'s word', () => {
  it('halts exactly when the answered time since the last payload reaches the idle timeout; outages of any length add nothing', () => {
    fc.assert(
      fc.property(pieces, fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 0, max: 30_000 }), fc.integer({ min: 1, max: 600 }), (ps, last, askAgo, idleSec) => {
        const { e, answered } = history(ps, last, askAgo);
        const halt = idleHaltBy(inputs(e, { idleTimeoutSec: idleSec }));
        if (answered >= idleSec * 1000) expect(halt).toEqual({ idleMs: answered });
        else expect(halt).toBeNull();
      }),
    );
  });

  it('never halts while the server is away, whatever came before', () => {
    fc.assert(
      fc.property(pieces, fc.integer({ min: 0, max: 100_000 }), (ps, last) => {
        const { e } = history(ps, last, 0);
        expect(idleHaltBy(inputs({ ...e, current: null }, { idleTimeoutSec: 1 }))).toBeNull();
      }),
    );
  });

  it('needs a "nothing" asked after the return and after the last payload', () => {
    const e: IdleEvidence = { earlier: [{ from: T0, to: T0 + 120_000 }], current: { from: T0 + 200_000, to: T0 + 200_050 }, noWork: { askedAt: T0 + 199_999, answeredAt: T0 + 200_050 } };
    expect(idleHaltBy(inputs(e))).toBeNull();
    expect(idleHaltBy(inputs({ ...e, noWork: { askedAt: T0 + 200_000, answeredAt: T0 + 200_050 } }))).toEqual({ idleMs: 120_050 });
    // the last payload ran after it was asked: that "nothing" was about the node with a payload on it
    expect(idleHaltBy(inputs({ ...e, noWork: { askedAt: T0 + 200_000, answeredAt: T0 + 200_050 } }, { lastBusyAt: T0 + 200_001 }))).toBeNull();
  });

  it('counts only what the server answered after the last payload ran', () => {
    const e: IdleEvidence = { earlier: [{ from: T0, to: T0 + 50_000 }], current: { from: T0 + 80_000, to: T0 + 150_000 }, noWork: null };
    expect(answeredMs(e, T0, T0 + 150_000)).toBe(120_000);
    expect(answeredMs(e, T0 + 40_000, T0 + 150_000)).toBe(80_000);
    expect(answeredMs(e, T0 + 100_000, T0 + 150_000)).toBe(50_000);
    expect(answeredMs(e, T0, T0 + 20_000)).toBe(20_000);
  });

  it('holds the minimum lifetime', () => {
    const e: IdleEvidence = { earlier: [], current: { from: T0, to: T0 + 100_000 }, noWork: { askedAt: T0 + 90_000, answeredAt: T0 + 100_000 } };
    expect(idleHaltBy(inputs(e, { minLifetimeSec: 101 }))).toBeNull();
    expect(idleHaltBy(inputs(e, { minLifetimeSec: 100 }))).toEqual({ idleMs: 100_000 });
  });

  it('the wait it asks with brings the server\'s "nothing" exactly when the halt is due', () => {
    fc.assert(
      fc.property(pieces, fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 1, max: 600 }), fc.integer({ min: 0, max: 900 }), (ps, last, idleSec, minLife) => {
        const { e, end } = history(ps, last, 0);
        const wait = idleAnswerInMs(inputs(e, { idleTimeoutSec: idleSec, minLifetimeSec: minLife }), end)!;
        expect(wait).toBeGreaterThanOrEqual(0);
        // asked now, answered "nothing" after `wait`: the halt; a millisecond sooner: not yet
        const answer = (after: number): IdleEvidence => ({ ...e, current: { from: e.current!.from, to: end + after }, noWork: { askedAt: end, answeredAt: end + after } });
        expect(idleHaltBy(inputs(answer(wait), { idleTimeoutSec: idleSec, minLifetimeSec: minLife }))).not.toBeNull();
        if (wait > 0) expect(idleHaltBy(inputs(answer(wait - 1), { idleTimeoutSec: idleSec, minLifetimeSec: minLife }))).toBeNull();
      }),
    );
  });

  it('plans no wait while the server is away', () => {
    expect(idleAnswerInMs(inputs({ earlier: [], current: null, noWork: null }), T0 + 5000)).toBeNull();
  });
});
