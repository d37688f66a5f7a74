/**
 * A wake-up signal for the pilot's loops: a loop reads `version`, decides,
 * and sleeps with `wait(version, ms)`; any `poke()` since it read the
 * version ends the sleep at once, so no change is missed. Timers go through
 * the Clock port only.
 */
import type { Clock } from '../shared/clock.js';

/** One hour: how long a loop with nothing to wait for sleeps before it looks again. */
export const HOUR = 3_600_000;

/** A versioned wake-up signal over a Clock. */
export class Wakeup {
  private v = 0;
  private sleepers = new Set<AbortController>();

  constructor(private readonly clock: Clock) {}

  /** Changes so far; pass it to `wait`. */
  get version(): number {
    return this.v;
  }

  /** Something changed: wake every waiter. */
  poke(): void {
    this.v++;
    for (const c of this.sleepers) c.abort();
    this.sleepers.clear();
  }

  /** Sleep up to `ms`, or until a poke after `since` (at once if one came already). */
  async wait(since: number, ms: number): Promise<void> {
    if (this.v !== since) return;
    const c = new AbortController();
    this.sleepers.add(c);
    try {
      await this.clock.sleep(ms, c.signal);
    } finally {
      this.sleepers.delete(c);
    }
  }
}
