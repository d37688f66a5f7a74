/**
 * A ControlPlane decorator that remembers the last moment the server
 * answered (the orphan timeout counts from it), says when the server is
 * back after an outage (so queued reports go out at once), and keeps what
 * the lease fence and the idle rule need:
 * - `leaseFrom`: when the last call the server accepted was SENT (the server
 *   records contact when a call arrives, so its clock for the lease starts no
 *   earlier than this);
 * - `reachableSince`: the start of the current stretch in which the server
 *   answered, i.e. the first answer after it had been away for longer than
 *   `windowMs` (idle time counts from there, never across an outage).
 */
import type { HeartbeatRequest, MatchRequest, RegisterRequest, Report } from '../../protocol/index.js';
import type { Clock } from '../../shared/clock.js';
import { isVmpilotError } from '../../shared/errors.js';
import type { ControlPlane } from '../ports.js';

/** True when `err` means the server did not answer (as opposed to answering "no"). */
export function isNoAnswer(err: unknown): boolean {
  return isVmpilotError(err, 'VMP_UNREACHABLE', 'VMP_SERVER');
}

/** Wraps a ControlPlane; `lastContactAt` is the last answer from the server. */
export class ContactTracker implements ControlPlane {
  lastContactAt: number;
  /** Send time of the last call the server accepted (2xx), or boot time. */
  leaseFrom: number;
  /** When the server became reachable again after an outage longer than `windowMs`, or boot time. */
  reachableSince: number;
  /** An outage shorter than this (ms) is a blip: it does not restart `reachableSince`. */
  windowMs = 60_000;
  private down = false;

  constructor(
    private readonly inner: ControlPlane,
    private readonly clock: Clock,
    /** Called when the server answers again after calls failed. */
    private readonly onBack: () => void = () => undefined,
  ) {
    this.lastContactAt = this.leaseFrom = this.reachableSince = clock.now();
  }

  /** Start all three clocks at `at` (the pilot's boot). */
  reset(at: number): void {
    this.lastContactAt = this.leaseFrom = this.reachableSince = at;
  }

  /** True while the last call found the server unreachable. */
  get unreachable(): boolean {
    return this.down;
  }

  register(request: RegisterRequest) {
    return this.track(this.inner.register(request));
  }

  heartbeat(request: HeartbeatRequest) {
    return this.track(this.inner.heartbeat(request));
  }

  match(request: MatchRequest, signal?: AbortSignal) {
    return this.track(this.inner.match(request, signal), signal);
  }

  report(reports: Report[]) {
    return this.track(this.inner.report(reports));
  }

  resume(pilotId: number, credential: string): void {
    this.inner.resume(pilotId, credential);
  }

  private async track<T>(call: Promise<T>, signal?: AbortSignal): Promise<T> {
    const sentAt = this.clock.now();
    try {
      const reply = await call;
      this.leaseFrom = Math.max(this.leaseFrom, sentAt);
      this.answered();
      return reply;
    } catch (err) {
      if (signal?.aborted) throw err;
      if (isNoAnswer(err)) this.down = true;
      else this.answered(); // a refusal is an answer: the server is there
      throw err;
    }
  }

  private answered(): void {
    const now = this.clock.now();
    if (this.down && now - this.lastContactAt > this.windowMs) this.reachableSince = now;
    this.lastContactAt = now;
    if (this.down) {
      this.down = false;
      this.onBack();
    }
  }
}
