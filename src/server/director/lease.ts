/**
 * One director at a time on one database: the lease a director takes or
 * renews in the store at each cycle (DirectorStore.holdLease, one
 * transaction) and gives back when it closes. The holder is named by the
 * host and the server's URL, so a server restarted where it ran takes its own
 * lease back at once; another holder's lease is waited out (it stopped
 * renewing) or given back (it closed).
 */
import { hostname } from 'node:os';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/log.js';
import type { DirectorLease, DirectorStore } from './ports.js';

/** What the lease needs. */
export interface LeaseDeps {
  store: Pick<DirectorStore, 'holdLease'>;
  clock: Clock;
  log: Logger;
  /** The holder's name; absent: `hostname() serverUrl()`, made at the first use. */
  holder?: string | undefined;
  /** The server's URL, once it listens. */
  serverUrl: () => string;
  /** How long a lease lasts unless renewed. */
  leaseMs: number;
}

/** This director's lease, as last seen in the store. */
export class Lease {
  private name: string | undefined;
  private seen: DirectorLease | null = null;

  constructor(private readonly d: LeaseDeps) {
    this.name = d.holder;
  }

  /** This director's name as a holder. */
  get holder(): string {
    this.name ??= `${hostname()} ${this.d.serverUrl()}`;
    return this.name;
  }

  /** Who held the lease when last asked, when it was another director; null when this one holds it or has not asked. */
  get standby(): DirectorLease | null {
    return this.seen !== null && this.seen.holder !== this.holder ? { ...this.seen } : null;
  }

  /** Take or renew the lease; true when this director holds it now. Says in the log when the holder changes. */
  async renew(): Promise<boolean> {
    const now = this.d.clock.now();
    const was = this.seen;
    this.seen = await this.d.store.holdLease(this.holder, now + this.d.leaseMs, now);
    const mine = this.seen.holder === this.holder;
    if (!mine && was?.holder !== this.seen.holder) this.d.log.warn({ holder: this.seen.holder, until: this.seen.until }, "another server's director holds the lease: this one stands by");
    if (mine && was !== null && was.holder !== this.holder) this.d.log.info({ was: was.holder }, 'this director holds the lease now');
    return mine;
  }

  /** Give the lease back when this director holds it, so another takes over at its next cycle. */
  async giveBack(): Promise<void> {
    if (this.seen?.holder !== this.holder) return;
    const now = this.d.clock.now();
    await this.d.store.holdLease(this.holder, now, now).catch(() => undefined);
  }
}
