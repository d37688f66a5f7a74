/**
 * Wake-ups for long-polling match requests, in memory: the `Notifier` port
 * (notifier.ts) for one server process. A request takes a ticket BEFORE it
 * looks at the store, so a wake-up that comes between the look and the wait
 * is not missed: the ticket is already woken and `wait` returns at once.
 *
 * Woken by: `wakeAll` (a payload was queued), `wakePilot` (an instruction for
 * that pilot), `closeAll` (the server is shutting down: every wait ends and
 * new tickets start woken).
 */
import type { Clock } from '../../shared/clock.js';
import type { Notifier, Ticket, WaitEnd } from './notifier.js';

export type { Ticket, WaitEnd } from './notifier.js';

interface Entry {
  pilotId: number;
  woken: boolean;
  controller: AbortController;
}

/** The set of waiting match requests, in this process. */
export class Waiters implements Notifier {
  private readonly entries = new Set<Entry>();
  private closing = false;

  constructor(private readonly clock: Clock) {}

  /** How many requests hold a ticket. */
  get size(): number {
    return this.entries.size;
  }

  /** True once `closeAll` was called. */
  get isClosing(): boolean {
    return this.closing;
  }

  /** Take a ticket for a match request of `pilotId`. */
  ticket(pilotId: number): Ticket {
    const entry: Entry = { pilotId, woken: this.closing, controller: new AbortController() };
    this.entries.add(entry);
    return {
      wait: async (ms: number, signal?: AbortSignal): Promise<WaitEnd> => {
        if (signal?.aborted) return 'aborted';
        if (this.closing) return 'closing';
        if (entry.woken) return 'woken';
        const stop = () => entry.controller.abort();
        signal?.addEventListener('abort', stop, { once: true });
        try {
          await this.clock.sleep(ms, entry.controller.signal);
        } finally {
          signal?.removeEventListener('abort', stop);
        }
        if (signal?.aborted) return 'aborted';
        if (this.closing) return 'closing';
        return entry.woken ? 'woken' : 'timeout';
      },
      dispose: () => {
        this.entries.delete(entry);
      },
    };
  }

  /** Wake every waiting request (new work was queued). */
  wakeAll(): void {
    for (const e of this.entries) this.wake(e);
  }

  /** Wake the requests of one pilot (an instruction was added for it). */
  wakePilot(pilotId: number): void {
    for (const e of this.entries) if (e.pilotId === pilotId) this.wake(e);
  }

  /** End every wait, now and later: the server is closing. */
  closeAll(): void {
    this.closing = true;
    this.wakeAll();
  }

  private wake(e: Entry): void {
    e.woken = true;
    e.controller.abort();
  }
}
