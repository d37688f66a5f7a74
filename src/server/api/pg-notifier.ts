/**
 * Wake-ups across the servers of one PostgreSQL database: the Notifier port
 * (notifier.ts) over the in-memory Waiters of this process.
 *
 * `wakeAll` and `wakePilot` wake this server's waiting match requests at
 * once, as Waiters does, and (mode `listen`) send the wake-up to the other
 * servers with NOTIFY on one channel; the wake-up connection
 * (store/pg-wake-connection.ts, one Client of its own) LISTENs there and
 * wakes this server's waiters on the others' notifications. Its own come
 * back to it too and are skipped by the sender's pid (they were woken
 * already; waking twice would be harmless, only wasted looks at the store).
 *
 * Coalesced: a wake-up waits in a WakeBatch (wake-messages.ts) while a
 * NOTIFY is being sent, and the wake-ups of one turn of the event loop go
 * out together, so a burst of submits costs a few notifications, not one
 * each. While the connection is down the batch is kept and sent once it is
 * back.
 *
 * Connection lost (PostgreSQL restarted, the backend terminated): it
 * reconnects with back-off (reconnectDelayMs), and on reconnecting wakes
 * every waiter here, since a notification may have been missed meanwhile.
 *
 * The periodic poll: every `pollMs` every waiter here is woken and looks at
 * the store again, so a wake-up lost whatever the cause delays a match by at
 * most `pollMs`. Mode `poll` is that alone, with no connection and no NOTIFY
 * (for PgBouncer in transaction pooling, where LISTEN does not work): then
 * `pollMs` is how long a payload submitted through another server may wait.
 *
 * States of the listen loop:
 * ```
 * connecting ──ok──► listening ──lost──► waiting (back-off) ──► connecting
 *      └──failed──────────────────────────────► waiting
 * any ──closeAll──► closed
 * ```
 */
import type { Clock } from '../../shared/clock.js';
import { describeError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { WakeConnect, WakeConnection } from '../store/pg-wake-connection.js';
import type { Notifier, Ticket } from './notifier.js';
import { Waiters } from './waiters.js';
import { WakeBatch, parseWake, reconnectDelayMs, wakePayloads, type Wake } from './wake-messages.js';

/** How the servers of one database hear each other's wake-ups. */
export type WakeupMode = 'listen' | 'poll';

/** The modes, for the usage message. */
export const WAKEUP_MODES: readonly WakeupMode[] = ['listen', 'poll'];

/** The default poll interval of each mode: a fallback with LISTEN, the only wake-up without. */
export const DEFAULT_POLL_MS: Readonly<Record<WakeupMode, number>> = { listen: 5000, poll: 1000 };

/** What the PostgreSQL notifier needs. */
export interface PgNotifierOptions {
  mode: WakeupMode;
  /** Wake every waiter this often (ms). */
  pollMs: number;
  clock: Clock;
  log: Logger;
  /** Opens the wake-up connection (store/pg-wake-connection.ts pgWakeConnect); mode listen only. */
  connect?: WakeConnect;
}

/** The Notifier of a server sharing a PostgreSQL database with others. */
export class PgNotifier implements Notifier {
  private readonly waiters: Waiters;
  private readonly batch = new WakeBatch();
  private readonly stop = new AbortController();
  private conn: WakeConnection | null = null;
  private flushing = false;
  private loops: Promise<void>[] = [];
  private firstTry: Promise<void> = Promise.resolve();
  /** Notifications sent, and heard from the other servers (for tests and logs). */
  readonly counts = { sent: 0, heard: 0, connects: 0 };

  constructor(private readonly o: PgNotifierOptions) {
    this.waiters = new Waiters(o.clock);
    if (o.mode === 'listen' && !o.connect) throw new Error('PgNotifier: mode listen needs connect');
  }

  /**
   * Start listening (mode listen) and polling. Resolves once the first
   * connection attempt has succeeded or failed (a failed one is tried again
   * in the background), so a server that prints it listens already hears
   * the others.
   */
  start(): Promise<void> {
    if (this.loops.length > 0) return this.firstTry;
    if (this.o.mode === 'listen') {
      let tried!: () => void;
      this.firstTry = new Promise((resolve) => (tried = resolve));
      this.loops.push(this.listenLoop(tried));
    }
    this.loops.push(this.pollLoop());
    return this.firstTry;
  }

  /** True once `closeAll` was called. */
  get isClosing(): boolean {
    return this.waiters.isClosing;
  }

  /** Take a ticket for a match request of `pilotId`. */
  ticket(pilotId: number): Ticket {
    return this.waiters.ticket(pilotId);
  }

  /** Work was queued: wake every waiting request here, and on the other servers. */
  wakeAll(): void {
    this.waiters.wakeAll();
    this.send({ all: true });
  }

  /** An instruction was added for `pilotId`: wake its requests here, and on the other servers. */
  wakePilot(pilotId: number): void {
    this.waiters.wakePilot(pilotId);
    this.send({ all: false, pilots: [pilotId] });
  }

  /** End every wait, now and later, and stop listening and polling. */
  closeAll(): void {
    this.waiters.closeAll();
    this.stop.abort();
    void this.conn?.end();
  }

  /** `closeAll`, and resolve once the connection is closed and the loops have ended. */
  async close(): Promise<void> {
    this.closeAll();
    await this.conn?.end();
    await Promise.all(this.loops);
  }

  private send(wake: Wake): void {
    if (this.o.mode !== 'listen' || this.stop.signal.aborted) return;
    this.batch.add(wake);
    if (!this.flushing) void this.flush();
  }

  /** Send what the batch holds, and what comes meanwhile, while the connection is up. */
  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      // the wake-ups of this turn join the batch first
      await Promise.resolve();
      for (;;) {
        const conn = this.conn;
        if (!conn || this.stop.signal.aborted) return; // kept: sent once connected again
        const wake = this.batch.take();
        if (!wake) return;
        try {
          for (const payload of wakePayloads(wake)) {
            await conn.notify(payload);
            this.counts.sent++;
          }
        } catch (err) {
          // the connection broke mid-send: keep the wake-up for the next connection (twice is harmless)
          this.batch.add(wake);
          this.o.log.warn({ err: describeError(err) }, 'wake-up notification not sent; sent once reconnected');
          return;
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  /** A notification on the channel: wake the waiters it names, unless it is this server's own. */
  private heard(payload: string, fromPid: number, own: number): void {
    if (fromPid === own) return;
    const wake = parseWake(payload);
    if (!wake) return;
    this.counts.heard++;
    if (wake.all) this.waiters.wakeAll();
    else for (const id of wake.pilots) this.waiters.wakePilot(id);
  }

  private async listenLoop(tried: () => void): Promise<void> {
    const connect = this.o.connect!;
    for (let attempt = 0; !this.stop.signal.aborted; ) {
      try {
        let own = -1;
        const conn = await connect((payload, fromPid) => this.heard(payload, fromPid, own));
        own = conn.pid;
        if (this.stop.signal.aborted) {
          await conn.end();
          break;
        }
        this.conn = conn;
        this.counts.connects++;
        const afterTrouble = attempt > 0;
        attempt = 0;
        if (afterTrouble) {
          // notifications sent while it was down are lost: every waiter looks again
          this.waiters.wakeAll();
          this.o.log.info({ pid: own }, 'wake-ups: listening again');
        }
        tried();
        if (!this.batch.empty && !this.flushing) void this.flush();
        await conn.ended;
        this.conn = null;
        await conn.end();
        if (this.stop.signal.aborted) break;
        this.o.log.warn('wake-ups: connection to PostgreSQL lost; reconnecting');
      } catch (err) {
        tried();
        if (this.stop.signal.aborted) break;
        this.o.log.warn({ err: describeError(err), attempt }, 'wake-ups: cannot listen on PostgreSQL; trying again');
      }
      await this.o.clock.sleep(reconnectDelayMs(attempt++), this.stop.signal);
    }
    this.conn = null;
  }

  private async pollLoop(): Promise<void> {
    while (!this.stop.signal.aborted) {
      await this.o.clock.sleep(this.o.pollMs, this.stop.signal);
      if (!this.stop.signal.aborted) this.waiters.wakeAll();
    }
  }
}
