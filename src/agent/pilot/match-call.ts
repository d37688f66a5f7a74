/**
 * The open match request: the match loop holds at most one long-poll open;
 * anything that changes what it would ask for (cores freed, a drain, a
 * halt, a moved deadline) ends it, and the loop asks again.
 */

/** The abort handle of the match request in flight, if any. */
export class MatchCall {
  private current: AbortController | null = null;

  /** A new request begins: its signal. */
  open(): AbortSignal {
    const abort = new AbortController();
    this.current = abort;
    return abort.signal;
  }

  /** The request that began with `signal` is over. */
  close(signal: AbortSignal): void {
    if (this.current?.signal === signal) this.current = null;
  }

  /** End the open match request (it is asked again with what changed). */
  abort(): void {
    this.current?.abort();
  }
}

/** What a part that only ends the open match request gets. */
export type MatchAbort = Pick<MatchCall, 'abort'>;
