/**
 * The wake-ups one server sends the others through PostgreSQL's NOTIFY
 * (pg-notifier.ts), as pure values: what is waiting to be sent (a
 * `WakeBatch`, which coalesces many wake-ups into few notifications), the
 * text of a notification, and its parse. Pure: no connection, no clock.
 *
 * A notification's payload (channel `vmpilot_wake`, store/pg-wake-connection.ts) is `all` (work was queued:
 * wake every waiting match request) or `pilot:ID[,ID…]` (instructions were
 * added for these pilots). Anything else is ignored (a newer server's word
 * this one does not know), never an error.
 */

/** What a notification asks: wake every waiting request, or those of some pilots. */
export type Wake = { all: true } | { all: false; pilots: readonly number[] };

/** PostgreSQL refuses a payload of 8000 bytes or more; a list of pilots is cut below this. */
export const MAX_PAYLOAD_BYTES = 7900;

/** The notification of `wake`, cut into payloads under MAX_PAYLOAD_BYTES (ids are ASCII). */
export function wakePayloads(wake: Wake, maxBytes = MAX_PAYLOAD_BYTES): string[] {
  if (wake.all) return ['all'];
  const out: string[] = [];
  let current = '';
  for (const id of wake.pilots) {
    const next = current ? `${current},${id}` : `pilot:${id}`;
    if (next.length > maxBytes && current) {
      out.push(current);
      current = `pilot:${id}`;
    } else {
      current = next;
    }
  }
  if (current) out.push(current);
  return out;
}

/** The wake-up a notification's payload asks for; null for a payload this server does not know. */
export function parseWake(payload: string | undefined): Wake | null {
  if (payload === 'all') return { all: true };
  const m = /^pilot:(\d{1,15}(?:,\d{1,15})*)$/.exec(payload ?? '');
  if (!m) return null;
  const pilots = m[1]!.split(',').map(Number).filter((n) => Number.isSafeInteger(n) && n > 0);
  return pilots.length > 0 ? { all: false, pilots } : null;
}

/**
 * The wake-ups not yet sent. Many `all` come to one (every waiting request
 * is woken once whatever the count), a pilot named twice is sent once, and
 * an `all` makes the pilots' wake-ups needless (it wakes their requests too).
 */
export class WakeBatch {
  private all = false;
  private readonly pilots = new Set<number>();

  /** Add a wake-up to send. */
  add(wake: Wake): void {
    if (wake.all) {
      this.all = true;
      this.pilots.clear();
      return;
    }
    if (this.all) return;
    for (const id of wake.pilots) this.pilots.add(id);
  }

  /** True when nothing is waiting to be sent. */
  get empty(): boolean {
    return !this.all && this.pilots.size === 0;
  }

  /** What is waiting, as the one wake-up to send (null: nothing), and the batch emptied. */
  take(): Wake | null {
    if (this.empty) return null;
    const wake: Wake = this.all ? { all: true } : { all: false, pilots: [...this.pilots] };
    this.all = false;
    this.pilots.clear();
    return wake;
  }
}

/** The wait before the `attempt`-th reconnection (0 first): 100 ms doubling, at most 5 s. Pure. */
export function reconnectDelayMs(attempt: number): number {
  return Math.min(5000, 100 * 2 ** Math.min(attempt, 16));
}
