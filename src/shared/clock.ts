/**
 * The clock port. Nothing in vmpilot calls Date.now(), setTimeout or
 * setInterval directly but the real clock here: tests drive a fake clock.
 */
export interface Clock {
  /** Wall-clock time, milliseconds since the Unix epoch. */
  now(): number;
  /**
   * Resolve after `ms` milliseconds, or at once with no error when `signal`
   * aborts (check `signal.aborted` afterwards when it matters).
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      signal?.addEventListener('abort', done, { once: true });
    }),
};

/**
 * A clock that moves only when told to, for tests. `advance` runs every
 * sleeper whose time has come, in order.
 */
export class FakeClock implements Clock {
  private t: number;
  private sleepers: { at: number; resolve: () => void }[] = [];

  constructor(start = 1_700_000_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const onAbort = () => {
        this.sleepers = this.sleepers.filter((s) => s !== sleeper);
        resolve();
      };
      // woken by `advance`: the listener goes too, as with the system clock (a loop sleeping on
      // one long-lived signal would otherwise pile up listeners)
      const sleeper = {
        at: this.t + Math.max(0, ms),
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      this.sleepers.push(sleeper);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Move time forward by `ms`, waking sleepers whose time has come. */
  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    for (;;) {
      this.sleepers.sort((a, b) => a.at - b.at);
      const next = this.sleepers[0];
      if (!next || next.at > target) break;
      this.sleepers.shift();
      this.t = next.at;
      next.resolve();
      // let the woken code run before the next sleeper wakes
      await new Promise((r) => setImmediate(r));
    }
    this.t = target;
  }

  /** How many sleepers are waiting. */
  get pending(): number {
    return this.sleepers.length;
  }

  /** How many sleepers are due now (they wake at the next `advance`, `advance(0)` included). */
  get due(): number {
    return this.sleepers.filter((s) => s.at <= this.t).length;
  }
}
