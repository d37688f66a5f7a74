/**
 * The match requests held open (long polls), counted per pilot and in all,
 * so that no pilot (or a thief of its credential) and no crowd of clients
 * can pile them up: a pilot's newest request replaces its oldest beyond
 * `perPilot` (the oldest is answered at once, with no payload), and beyond
 * `total` a new one is refused until others end.
 */

/** One open match request. */
export interface LongPoll {
  /** Aborts when a newer request of the same pilot replaced this one. */
  readonly replaced: AbortSignal;
  /** The request is answered: leave the count. */
  leave(): void;
}

/** The open match requests. */
export class LongPolls {
  private readonly byPilot = new Map<number, Set<{ ctl: AbortController }>>();
  private count = 0;

  constructor(
    private readonly perPilot: number,
    /** 0: no cap in all. */
    private readonly total: number,
  ) {}

  /** How many are open. */
  get size(): number {
    return this.count;
  }

  /**
   * Enter a request of `pilotId`, or null when `total` are open already. A
   * pilot over `perPilot` has its oldest replaced (which does not count
   * against `total`: one leaves as one comes).
   */
  enter(pilotId: number): LongPoll | null {
    let mine = this.byPilot.get(pilotId);
    const replacing = mine !== undefined && mine.size >= this.perPilot;
    if (!replacing && this.total > 0 && this.count >= this.total) return null;
    if (!mine) {
      mine = new Set();
      this.byPilot.set(pilotId, mine);
    }
    while (mine.size >= this.perPilot) {
      const oldest = mine.values().next().value!;
      mine.delete(oldest);
      this.count--;
      oldest.ctl.abort();
    }
    const entry = { ctl: new AbortController() };
    mine.add(entry);
    this.count++;
    const set = mine;
    let left = false;
    return {
      replaced: entry.ctl.signal,
      leave: () => {
        if (left) return;
        left = true;
        if (set.delete(entry)) this.count--;
        if (set.size === 0 && this.byPilot.get(pilotId) === set) this.byPilot.delete(pilotId);
      },
    };
  }
}
