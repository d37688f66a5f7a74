/**
 * One leader for the singletons: of the server replicas on one database,
 * one at a time runs the stall sweeper and the director (the duties). The
 * lock is a port (LeaderLock): on PostgreSQL a session-level advisory lock
 * on a connection of its own (store/pg-leader.ts); on SQLite (one server)
 * ALWAYS_LEADER, which this replica always holds.
 *
 * A replica that does not hold the lock tries to take it every `tryEveryMs`.
 * The holder checks its lock's connection at the same pace: when the
 * connection is lost (the lock's `onLost`), or a check does not answer
 * within `checkTimeoutMs`, the replica stops acting at once (the duties'
 * `stop` is called before anything is awaited), lets the lock go, and
 * campaigns again once its duties have stopped. docs/scale-out.md says what
 * that guarantees and what it does not.
 */
import type { Clock } from '../shared/clock.js';
import { describeError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';

/** The lock one replica of a database holds at a time. */
export interface LeaderLock {
  /** Try once to take the lock (connecting first when needed); true when this replica holds it now. Rejects when the database cannot be reached. */
  tryTake(): Promise<boolean>;
  /** A round trip on the held lock's connection: true while the lock is held; false or a rejection when it is not. */
  stillHeld(): Promise<boolean>;
  /** `lost` is called, with the reason, whenever a held lock's connection is lost (the lock is then free for another replica). */
  onLost(lost: (why: string) => void): void;
  /** Let the lock go (its connection is closed without waiting); the next `tryTake` connects again. */
  release(): void;
  /** Let the lock go and close for good. */
  close(): Promise<void>;
}

/** The lock of a server that is alone on its database (SQLite): always held. */
export const ALWAYS_LEADER: LeaderLock = {
  tryTake: async () => true,
  stillHeld: async () => true,
  onLost: () => undefined,
  release: () => undefined,
  close: async () => undefined,
};

/** What the leader does: `start` when this replica becomes the leader, `stop` when it is no longer (it stops acting when `stop` is called; the promise says when it has finished). */
export interface Duties {
  start(): void;
  stop(): Promise<void>;
}

/** What the leadership needs. */
export interface LeadershipOptions {
  lock: LeaderLock;
  clock: Clock;
  log: Logger;
  duties: Duties;
  /** Told every change (true: this replica is the leader now), e.g. for the metrics. */
  onChange?: (leader: boolean) => void;
  /** How often a follower tries to take the lock and the leader checks it (default 2 s). */
  tryEveryMs?: number;
  /** A check of the held lock that takes longer makes the leader step down (default 3 s). */
  checkTimeoutMs?: number;
}

/** The default pace of tries and checks. */
export const LEADER_TRY_MS = 2000;
/** The default time a check of the held lock may take. */
export const LEADER_CHECK_TIMEOUT_MS = 3000;

/** Campaigns for the lock and runs the duties while this replica holds it. */
export class Leadership {
  private readonly stop = new AbortController();
  private loop: Promise<void> | null = null;
  private leading = false;
  private stepping: Promise<void> | null = null;
  private unreachable = false;

  constructor(private readonly o: LeadershipOptions) {
    o.lock.onLost((why) => void this.stepDown(`its lock's connection to the database was lost: ${why}`));
  }

  /** Whether this replica is the leader now (it runs the duties). */
  get isLeader(): boolean {
    return this.leading;
  }

  /** Campaign now, then every `tryEveryMs` until closed. */
  start(): void {
    const every = this.o.tryEveryMs ?? LEADER_TRY_MS;
    this.loop ??= (async () => {
      while (!this.stop.signal.aborted) {
        await this.round();
        await this.o.clock.sleep(every, this.stop.signal);
      }
    })();
  }

  /** One try (a follower) or one check (the leader). */
  private async round(): Promise<void> {
    // a replica that stepped down campaigns again only once its duties have stopped
    await this.stepping;
    if (this.stop.signal.aborted) return;
    if (this.leading) {
      const held = await this.within(this.o.lock.stillHeld(), this.o.checkTimeoutMs ?? LEADER_CHECK_TIMEOUT_MS);
      if (held !== true) await this.stepDown(held === 'timeout' ? "its lock's connection did not answer a check in time" : `its lock is no longer held${held === false ? '' : `: ${held}`}`);
      return;
    }
    let took = false;
    try {
      took = await this.o.lock.tryTake();
      if (this.unreachable) this.o.log.info('the database answers the leader election again');
      this.unreachable = false;
    } catch (err) {
      if (!this.unreachable) this.o.log.warn({ err: describeError(err) }, 'cannot reach the database to take the leader lock: trying again');
      this.unreachable = true;
      this.o.lock.release();
    }
    if (!took || this.stop.signal.aborted) {
      if (took) this.o.lock.release();
      return;
    }
    this.leading = true;
    this.o.log.info('this server is the leader now: it runs the stall sweeper and the director');
    this.o.onChange?.(true);
    this.o.duties.start();
  }

  /** `p`'s value, its error's description, or 'timeout' once `ms` passed. */
  private async within(p: Promise<boolean>, ms: number): Promise<boolean | string> {
    const done = new AbortController();
    const late = this.o.clock.sleep(ms, done.signal).then(() => 'timeout' as const);
    try {
      return await Promise.race([p.catch((err: unknown) => describeError(err)), late]);
    } finally {
      done.abort();
    }
  }

  /** Stop acting at once, then let the lock go; resolves when the duties have stopped. */
  private stepDown(why: string): Promise<void> {
    if (!this.leading) return this.stepping ?? Promise.resolve();
    this.leading = false;
    this.o.log.warn({ why }, 'this server is no longer the leader: its stall sweeper and director stop');
    this.o.onChange?.(false);
    const stopped = this.o.duties.stop();
    this.stepping = (async () => {
      await stopped.catch((err: unknown) => this.o.log.error({ err: describeError(err) }, 'stopping the leader duties failed'));
      // only now may another replica take over (when the lock was not lost already)
      this.o.lock.release();
      this.o.log.info('stopped acting as the leader');
      this.stepping = null;
    })();
    return this.stepping;
  }

  /** Stop campaigning; a leader stops its duties and lets the lock go. */
  async close(): Promise<void> {
    this.stop.abort();
    await this.loop;
    await this.stepDown('the server is stopping');
    await this.o.lock.close();
  }
}

/** A sweeper as the duties see it (sweeper.ts). */
interface SweeperLike {
  start(): void;
  close(): Promise<void>;
}

/** The director as the duties see it (director/loop.ts). */
interface DirectorLike {
  start(): void;
  pause(): Promise<void>;
}

/** The singletons as duties: a new sweeper (from `sweeper()`) and the director (when configured) started on becoming the leader, both stopped on stepping down. */
export function singletonDuties(sweeper: () => SweeperLike, director: DirectorLike | null): Duties {
  let running: SweeperLike | null = null;
  return {
    start() {
      running = sweeper();
      running.start();
      director?.start();
    },
    async stop() {
      const s = running;
      running = null;
      // both called before anything is awaited: they stop acting at once
      await Promise.all([s?.close(), director?.pause()]);
    },
  };
}
