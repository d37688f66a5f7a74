/**
 * The leadership (src/server/leader.ts) on the fake clock, over a lock
 * table in memory that two replicas share as they would share PostgreSQL's
 * advisory lock: one leader at a time; a lost lock stops the duties at once
 * and the replica campaigns again once they have stopped; a check that does
 * not answer makes the leader step down and let the lock go; SQLite's lock
 * is always held. The real lock on a real PostgreSQL is in
 * store/pg-leader.test.ts, the replicas in test/integration/leader.test.ts.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ALWAYS_LEADER, Leadership, singletonDuties, type Duties, type LeaderLock } from '../../../src/server/leader.js';
import { FakeClock } from '../../../src/shared/clock.js';
import { silentLogger } from '../../../src/shared/log.js';

const WAIT = { timeout: 10_000, interval: 5 };

/** One lock in memory; `lockFor(name)` is a replica's connection to it. */
class LockTable {
  holder: string | null = null;
  private readonly lost = new Map<string, (why: string) => void>();
  /** Checks of `name` hang (a silent connection) while it is in here. */
  readonly silent = new Set<string>();
  released: string[] = [];

  lockFor(name: string): LeaderLock {
    return {
      tryTake: async () => {
        this.holder ??= name;
        return this.holder === name;
      },
      stillHeld: () => (this.silent.has(name) ? new Promise<boolean>(() => undefined) : Promise.resolve(this.holder === name)),
      onLost: (l) => void this.lost.set(name, l),
      release: () => {
        this.released.push(name);
        if (this.holder === name) this.holder = null;
      },
      close: async () => {
        if (this.holder === name) this.holder = null;
      },
    };
  }

  /** The holder's connection is cut (as pg_terminate_backend does): the lock is free and it is told. */
  cut(): void {
    const h = this.holder;
    if (h === null) return;
    this.holder = null;
    this.lost.get(h)?.('terminated');
  }
}

/** Duties that record what they do; `stop` finishes only when `finish()` is called (at once when `slow` is false, and after the first `finish()`). */
function recorder(slow = false) {
  const events: string[] = [];
  let acting = false;
  let finish = () => {
    slow = false;
  };
  const duties: Duties = {
    start() {
      acting = true;
      events.push('start');
    },
    stop() {
      acting = false;
      events.push('stop');
      return slow
        ? new Promise<void>((r) => {
            finish = () => {
              slow = false;
              r();
            };
          })
        : Promise.resolve();
    },
  };
  return { duties, events, acting: () => acting, finish: () => finish() };
}

describe('leadership', () => {
  const made: Leadership[] = [];
  afterEach(async () => {
    await Promise.all(made.splice(0).map((l) => l.close()));
  });
  const replica = (table: LockTable, name: string, clock: FakeClock, duties: Duties, changes: boolean[] = []) => {
    const l = new Leadership({ lock: table.lockFor(name), clock, log: silentLogger(), duties, onChange: (b) => changes.push(b), tryEveryMs: 2000, checkTimeoutMs: 3000 });
    made.push(l);
    return l;
  };

  it('one of two replicas leads; when its lock is lost it stops at once, and the other takes over at its next try', async () => {
    const clock = new FakeClock();
    const table = new LockTable();
    const a = recorder();
    const b = recorder();
    const changesA: boolean[] = [];
    const la = replica(table, 'a', clock, a.duties, changesA);
    la.start();
    await vi.waitFor(() => expect(la.isLeader).toBe(true), WAIT);
    const lb = replica(table, 'b', clock, b.duties);
    lb.start();
    await clock.advance(2000);
    await clock.advance(2000);
    expect([la.isLeader, lb.isLeader]).toEqual([true, false]);
    expect(b.events).toEqual([]);

    table.cut();
    // stopped before any time passes, not at a next check
    expect(la.isLeader).toBe(false);
    expect(a.acting()).toBe(false);
    expect(changesA).toEqual([true, false]);
    await clock.advance(2000);
    await vi.waitFor(() => expect(lb.isLeader || la.isLeader).toBe(true), WAIT);
    // exactly one leads again, and its duties run
    expect([la.isLeader, lb.isLeader].filter(Boolean)).toHaveLength(1);
    expect(la.isLeader ? a.acting() : b.acting()).toBe(true);
  });

  it('a leader whose duties are still stopping does not campaign again until they have stopped', async () => {
    const clock = new FakeClock();
    const table = new LockTable();
    const a = recorder(true);
    const la = replica(table, 'a', clock, a.duties);
    la.start();
    await vi.waitFor(() => expect(la.isLeader).toBe(true), WAIT);
    table.cut();
    for (let i = 0; i < 5; i++) await clock.advance(2000);
    // the lock is free, but a is still stopping: it does not take it
    expect(table.holder).toBe(null);
    expect(a.events).toEqual(['start', 'stop']);
    a.finish();
    await vi.waitFor(async () => {
      await clock.advance(2000);
      expect(la.isLeader).toBe(true);
    }, WAIT);
    expect(a.events).toEqual(['start', 'stop', 'start']);
  });

  it('a leader whose check does not answer in time steps down, stops, and only then lets the lock go', async () => {
    const clock = new FakeClock();
    const table = new LockTable();
    const a = recorder(true);
    const la = replica(table, 'a', clock, a.duties);
    la.start();
    await vi.waitFor(() => expect(la.isLeader).toBe(true), WAIT);
    table.silent.add('a');
    await clock.advance(2000); // the check is sent
    await clock.advance(3000); // and not answered in time
    await vi.waitFor(() => expect(la.isLeader).toBe(false), WAIT);
    expect(a.events).toEqual(['start', 'stop']);
    // not let go while its duties are still stopping
    expect(table.released).toEqual([]);
    expect(table.holder).toBe('a');
    a.finish();
    await vi.waitFor(() => expect(table.released).toEqual(['a']), WAIT);
  });

  it('on close a leader stops its duties; SQLite (ALWAYS_LEADER) leads at once', async () => {
    const clock = new FakeClock();
    const a = recorder();
    const l = new Leadership({ lock: ALWAYS_LEADER, clock, log: silentLogger(), duties: a.duties });
    l.start();
    await vi.waitFor(() => expect(l.isLeader).toBe(true), WAIT);
    for (let i = 0; i < 3; i++) await clock.advance(2000);
    expect(l.isLeader).toBe(true);
    await l.close();
    expect(l.isLeader).toBe(false);
    expect(a.events).toEqual(['start', 'stop']);
  });

  it('the singleton duties: a new sweeper each time, and the director started and paused with it', async () => {
    const log: string[] = [];
    let n = 0;
    const duties = singletonDuties(
      () => {
        const id = ++n;
        return { start: () => log.push(`sweeper ${id} start`), close: async () => void log.push(`sweeper ${id} close`) };
      },
      { start: () => log.push('director start'), pause: async () => void log.push('director pause') },
    );
    duties.start();
    await duties.stop();
    duties.start();
    expect(log).toEqual(['sweeper 1 start', 'director start', 'sweeper 1 close', 'director pause', 'sweeper 2 start', 'director start']);
  });
});
