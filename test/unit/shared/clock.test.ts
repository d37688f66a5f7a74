import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../src/shared/clock.js';

describe('FakeClock', () => {
  it('wakes sleepers in time order as it advances, and only those whose time has come', async () => {
    const clock = new FakeClock(1000);
    const woke: string[] = [];
    void clock.sleep(300).then(() => woke.push(`b@${clock.now()}`));
    void clock.sleep(100).then(() => woke.push(`a@${clock.now()}`));
    void clock.sleep(5000).then(() => woke.push('late'));
    await clock.advance(400);
    expect(woke).toEqual(['a@1100', 'b@1300']);
    expect(clock.now()).toBe(1400);
    expect(clock.pending).toBe(1);
  });

  it('counts the sleepers that are due, which advance(0) wakes without moving time', async () => {
    const clock = new FakeClock(1000);
    let woke = false;
    void clock.sleep(0).then(() => (woke = true));
    void clock.sleep(10);
    expect([clock.due, clock.pending]).toEqual([1, 2]);
    await clock.advance(0);
    expect(woke).toBe(true);
    expect([clock.due, clock.pending, clock.now()]).toEqual([0, 1, 1000]);
  });

  it('ends a sleep at once when its signal aborts', async () => {
    const clock = new FakeClock();
    const ctl = new AbortController();
    const slept = clock.sleep(60_000, ctl.signal);
    ctl.abort();
    await slept;
    expect(clock.pending).toBe(0);
  });
});
