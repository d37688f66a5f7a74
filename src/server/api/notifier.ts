/**
 * The wake-up port of the match long polls: a match request that found
 * nothing waits on a ticket until work is queued, an instruction is added for
 * its pilot, or the server closes. A request takes its ticket BEFORE it looks
 * at the store, so a wake-up that comes between the look and the wait is not
 * missed (the ticket is already woken and `wait` returns at once); that
 * holds however long the store's awaits take.
 *
 * One server process: the in-memory `Waiters` (waiters.ts). Several
 * processes sharing one database: an implementation that also sends each
 * wake-up to the others (e.g. PostgreSQL LISTEN/NOTIFY) and wakes its own
 * waiters on theirs, with a polling fallback; the routes do not change.
 */

/** Why a wait ended. */
export type WaitEnd = 'woken' | 'timeout' | 'aborted' | 'closing';

/** One request's place in line. */
export interface Ticket {
  /** Wait up to `ms` for a wake-up, or until `signal` aborts (the client went away). */
  wait(ms: number, signal?: AbortSignal): Promise<WaitEnd>;
  /** Leave the line; call when the request is answered. */
  dispose(): void;
}

/** Wake-ups for the waiting match requests. */
export interface Notifier {
  /** Take a ticket for a match request of `pilotId` (before looking at the store). */
  ticket(pilotId: number): Ticket;
  /** Work was queued (submitted, or put back): wake every waiting request. */
  wakeAll(): void;
  /** An instruction was added for `pilotId`: wake its requests. */
  wakePilot(pilotId: number): void;
  /** The server is closing: end every wait, now and later. */
  closeAll(): void;
  /** True once `closeAll` was called. */
  readonly isClosing: boolean;
}
