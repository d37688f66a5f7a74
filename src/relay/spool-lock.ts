/**
 * One relay per spool: `DIR/.relay.lock` names the relay that moves the
 * spool's mailboxes (host, pid, and when it last said it is alive). A second
 * relay refuses to start while the first lives (its pid on this host, or a
 * lock refreshed within STALE_MS on another host: a shared filesystem is
 * seen from several login nodes); a relay that was killed leaves a lock the
 * next one takes over. Two relays on one spool would each answer the other's
 * interrupted requests at start.
 */
import { hostname } from 'node:os';
import path from 'node:path';
import type { Clock } from '../shared/clock.js';
import { VmpilotError } from '../shared/errors.js';
import { readIfThere, removeIfThere, writeMessage } from '../mailbox/files.js';

/** A lock not refreshed for this long (ms) is taken to belong to a relay that is gone. */
export const STALE_MS = 30_000;
/** How often the holder refreshes its lock (ms). */
export const REFRESH_MS = 5_000;
const NAME = '.relay.lock';

interface Holder {
  host: string;
  pid: number;
  at: number;
}

/** Whether `holder` still holds the lock, for a relay on `host` at `now`. Pure but for `alive`. */
export function stillHeld(holder: Holder, host: string, now: number, alive: (pid: number) => boolean): boolean {
  if (holder.host === host) return holder.pid !== process.pid && alive(holder.pid);
  return now - holder.at < STALE_MS;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The lock of one spool directory. */
export class SpoolLock {
  private lastRefresh = 0;
  private readonly host = hostname();

  constructor(
    private readonly dir: string,
    private readonly clock: Clock,
  ) {}

  /** Take the lock; VMP_STATE when a live relay holds it. */
  async take(): Promise<void> {
    const text = await readIfThere(path.join(this.dir, NAME));
    if (text) {
      let holder: Holder | null = null;
      try {
        holder = JSON.parse(text) as Holder;
      } catch {
        // a torn lock is nobody's
      }
      if (holder && stillHeld(holder, this.host, this.clock.now(), alive)) {
        throw new VmpilotError(
          'VMP_STATE',
          `spool ${this.dir} is moved by the relay with pid ${holder.pid} on ${holder.host} (${NAME}); stop that one first, or give this relay another --spool`,
        );
      }
    }
    await this.refresh(true);
  }

  /** Say we are alive (at most every REFRESH_MS unless `now`). */
  async refresh(now = false): Promise<void> {
    const t = this.clock.now();
    if (!now && t - this.lastRefresh < REFRESH_MS) return;
    this.lastRefresh = t;
    await writeMessage(this.dir, NAME, JSON.stringify({ host: this.host, pid: process.pid, at: t }));
  }

  /** Let go of the lock (the relay stops). */
  async release(): Promise<void> {
    const text = await readIfThere(path.join(this.dir, NAME)).catch(() => null);
    if (text?.includes(`"pid":${process.pid},`) && text.includes(JSON.stringify(this.host))) await removeIfThere(path.join(this.dir, NAME)).catch(() => false);
  }
}
