import { describe, expect, it } from 'vitest';
import { LongPolls } from '../../../../src/server/api/long-polls.js';
import { nextLink, pageOf } from '../../../../src/server/api/paging.js';
import { TokenBuckets } from '../../../../src/server/api/rate-limit.js';
import { RefusalLog } from '../../../../src/server/api/refusal-log.js';
import { clampTime, sameReport, seqProblem } from '../../../../src/server/store/report-rules.js';
import { FakeClock } from '../../../../src/shared/clock.js';
import { captureLogger } from '../../agent/log-capture.js';

describe('the server limits', () => {
  it('rate-limits per key with a burst, then a rate, and says when to retry', async () => {
    const clock = new FakeClock();
    const b = new TokenBuckets(3, 1, clock);
    expect([1, 2, 3, 4].map(() => b.take('a').ok)).toEqual([true, true, true, false]);
    expect(b.take('a')).toEqual({ ok: false, retryAfterSec: 1 });
    expect(b.take('b').ok).toBe(true);
    await clock.advance(1000);
    expect(b.take('a').ok).toBe(true);
    expect(new TokenBuckets(0, 0, clock).take('x').ok).toBe(true);
    const small = new TokenBuckets(1, 1, clock, 2);
    for (const k of ['k1', 'k2', 'k3', 'k4']) small.take(k);
    expect(small.size).toBeLessThanOrEqual(2);
  });

  it('lets a pilot hold two long polls: a third answers the oldest; in all, none beyond the cap', () => {
    const polls = new LongPolls(2, 3);
    const a = polls.enter(1)!;
    const b = polls.enter(1)!;
    const c = polls.enter(1)!;
    expect([a.replaced.aborted, b.replaced.aborted, c.replaced.aborted]).toEqual([true, false, false]);
    expect(polls.size).toBe(2);
    expect(polls.enter(2)).not.toBeNull();
    expect(polls.enter(3)).toBeNull();
    // a pilot at its own cap still replaces, even with the total reached
    expect(polls.enter(1)).not.toBeNull();
    a.leave();
    b.leave();
    expect(polls.size).toBe(3);
  });

  it('logs the first refusal of a kind, counts the rest, and says how many it left out', async () => {
    const clock = new FakeClock();
    const { log, lines: captured } = captureLogger();
    const lines = () => captured;
    const r = new RefusalLog(log, clock, 10_000);
    for (let i = 0; i < 100; i++) r.warn('authentication failed', { ip: '10.0.0.1' });
    expect(lines().filter((l) => l.msg === 'authentication failed')).toHaveLength(1);
    await clock.advance(10_000);
    r.warn('authentication failed', { ip: '10.0.0.2' });
    expect(lines().at(-1)).toMatchObject({ msg: 'authentication failed', suppressed: 99, ip: '10.0.0.2' });
  });

  it('pages newest first with a Link to the next page while pages are full', () => {
    expect(pageOf({})).toEqual({ limit: 100, before: null, offset: null });
    expect(() => pageOf({ limit: '501' })).toThrow(/query\.limit must be from 1 to 500/);
    const page = pageOf({ limit: '2' });
    expect(nextLink('/v1/pilots', { state: 'running', limit: '2' }, page, [{ id: 9 }, { id: 7 }])).toBe('</v1/pilots?state=running&limit=2&cursor=7>; rel="next"');
    expect(nextLink('/v1/pilots', {}, page, [{ id: 9 }])).toBeNull();
  });

  it('checks a request of reports follows the applied seq, a resend is the same report, times fit what the server saw', () => {
    expect(seqProblem(4, [3, 4, 5, 6])).toBeNull();
    expect(seqProblem(4, [6])).toMatch(/does not follow the last applied seq 4: send seq 5 first/);
    expect(seqProblem(4, [5, 7])).toMatch(/reports\[1\]\.seq is 7 after 5/);
    expect(sameReport('{"seq":1,"type":"x","at":2}', { at: 2, seq: 1, type: 'x' })).toBe(true);
    expect(sameReport('{"seq":1,"type":"x","at":2}', { at: 3, seq: 1, type: 'x' })).toBe(false);
    expect(clampTime(0, 100, 200)).toBe(100);
    expect(clampTime(8.64e15, 100, 200)).toBe(200);
    expect(clampTime(150, 100, 200)).toBe(150);
  });
});
