import { describe, expect, it } from 'vitest';
import { Waiters } from '../../../../src/server/api/waiters.js';
import { FakeClock } from '../../../../src/shared/clock.js';

describe('Waiters', () => {
  it('ends a wait with timeout when nothing happens in time', async () => {
    const clock = new FakeClock();
    const w = new Waiters(clock);
    const t = w.ticket(1);
    const ended = t.wait(20_000);
    await clock.advance(20_000);
    expect(await ended).toBe('timeout');
    t.dispose();
    expect(w.size).toBe(0);
  });

  it('wakes every waiter when work is queued', async () => {
    const w = new Waiters(new FakeClock());
    const a = w.ticket(1);
    const b = w.ticket(2);
    const waits = [a.wait(60_000), b.wait(60_000)];
    w.wakeAll();
    expect(await Promise.all(waits)).toEqual(['woken', 'woken']);
  });

  it('wakes only the pilot an instruction is for', async () => {
    const clock = new FakeClock();
    const w = new Waiters(clock);
    const mine = w.ticket(1).wait(1000);
    const other = w.ticket(2).wait(1000);
    w.wakePilot(1);
    expect(await mine).toBe('woken');
    await clock.advance(1000);
    expect(await other).toBe('timeout');
  });

  it('does not miss a wake-up that comes before the wait starts', async () => {
    const w = new Waiters(new FakeClock());
    const t = w.ticket(1);
    w.wakeAll();
    expect(await t.wait(60_000)).toBe('woken');
  });

  it('ends the wait when the client goes away', async () => {
    const w = new Waiters(new FakeClock());
    const t = w.ticket(1);
    const client = new AbortController();
    const ended = t.wait(60_000, client.signal);
    client.abort();
    expect(await ended).toBe('aborted');
    t.dispose();
    expect(w.size).toBe(0);
  });

  it('ends every wait, and every later one, when the server closes', async () => {
    const w = new Waiters(new FakeClock());
    const ended = w.ticket(1).wait(60_000);
    w.closeAll();
    expect(await ended).toBe('closing');
    expect(await w.ticket(2).wait(60_000)).toBe('closing');
  });
});
