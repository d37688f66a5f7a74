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

  it('ends a sleep at once when its signal aborts', async () => {
    const clock = new FakeClock();
    const ctl = new AbortController();
    const slept = clock.sleep(60_000, ctl.signal);
    ctl.abort();
    await slept;
    expect(clock.pending).toBe(0);
  });
});
