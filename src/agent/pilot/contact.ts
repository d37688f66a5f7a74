/**
 * A ControlPlane decorator that remembers what the server answered, and
 * when:
 * - `lastContactAt`: the last answer (the orphan timeout counts from it);
 * - `leaseFrom`: when the last call the server accepted was SENT (the server
 *   records contact when a call arrives, so its clock for the lease starts no
 *   earlier than this);
 * - `idle`: the stretches of time in which the server answered and the
 *   latest "nothing" to a match that offered work, for the idle rule
 *   (monitor/idle.ts). A stretch starts at the send time of the first call
 *   answered after an outage (never before the outage's last failure) and
 *   ends at a call that got no answer, or at an answer that came more than
 *   LATE_MS past its bound (a match's wait, else nothing): a server that
 *   takes that long is not answering, and the next stretch starts at the
 *   late answer.
 * It says when the server is back after an outage (`onBack`: queued reports
 * go out at once) and when it answered "nothing" (`onNoWork`: the idle rule
 * looks again).
 */
import type { HeartbeatRequest, MatchReply, MatchRequest, RegisterRequest, Report } from '../../protocol/index.js';
import type { Clock } from '../../shared/clock.js';
import { isVmpilotError } from '../../shared/errors.js';
import type { ControlPlane } from '../ports.js';
import type { IdleEvidence, NoWorkAnswer, Stretch } from '../monitor/idle.js';

/** An answer this long (ms) past its call's bound counts as the end of an outage, not as part of a stretch. */
export const LATE_MS = 5000;
/** How many closed stretches are kept (dropping one only makes the idle time shorter). */
const MAX_STRETCHES = 64;

/** True when `err` means the server did not answer (as opposed to answering "no"). */
export function isNoAnswer(err: unknown): boolean {
  return isVmpilotError(err, 'VMP_UNREACHABLE', 'VMP_SERVER');
}

/** True when a match reply says there is nothing for the pilot: no payload, no instruction. */
function isNothing(request: MatchRequest, reply: MatchReply): boolean {
  // an instruction poll (freeCores 0) was not a question about work
  return request.freeCores > 0 && reply.payload === null && reply.instructions.length === 0;
}

/** Wraps a ControlPlane; `lastContactAt` is the last answer from the server. */
export class ContactTracker implements ControlPlane {
  lastContactAt: number;
  /** Send time of the last call the server accepted (2xx), or boot time. */
  leaseFrom: number;
  private down = false;
  /** The last moment a call got no answer (a stretch never starts before it). */
  private lastNoAnswerAt: number;
  private earlier: Stretch[] = [];
  private current: Stretch | null = null;
  private noWork: NoWorkAnswer | null = null;

  constructor(
    private readonly inner: ControlPlane,
    private readonly clock: Clock,
    /** Called when the server answers again after calls failed. */
    private readonly onBack: () => void = () => undefined,
    /** Called when a match that offered work was answered "nothing". */
    private readonly onNoWork: () => void = () => undefined,
  ) {
    this.lastContactAt = this.leaseFrom = this.lastNoAnswerAt = clock.now();
  }

  /** Start the clocks at `at` (the pilot's boot); no stretch until the server answers. */
  reset(at: number): void {
    this.lastContactAt = this.leaseFrom = this.lastNoAnswerAt = at;
    this.earlier = [];
    this.current = null;
    this.noWork = null;
  }

  /** True while the last call found the server unreachable. */
  get unreachable(): boolean {
    return this.down;
  }

  /** The server's answers as the idle rule reads them (a copy). */
  get idle(): IdleEvidence {
    return { earlier: [...this.earlier], current: this.current && { ...this.current }, noWork: this.noWork && { ...this.noWork } };
  }

  register(request: RegisterRequest) {
    return this.track(this.inner.register(request), 0);
  }

  heartbeat(request: HeartbeatRequest) {
    return this.track(this.inner.heartbeat(request), 0);
  }

  async match(request: MatchRequest, signal?: AbortSignal) {
    const sentAt = this.clock.now();
    const reply = await this.track(this.inner.match(request, signal), request.waitSec * 1000, signal);
    // asked at its send time: after a late answer the stretch starts later, and the idle rule does not count it
    this.noWork = isNothing(request, reply) ? { askedAt: sentAt, answeredAt: this.clock.now() } : null;
    if (this.noWork) this.onNoWork();
    return reply;
  }

  report(reports: Report[]) {
    return this.track(this.inner.report(reports), 0);
  }

  resume(pilotId: number, credential: string): void {
    this.inner.resume(pilotId, credential);
  }

  private async track<T>(call: Promise<T>, boundMs: number, signal?: AbortSignal): Promise<T> {
    const sentAt = this.clock.now();
    try {
      const reply = await call;
      this.leaseFrom = Math.max(this.leaseFrom, sentAt);
      this.answered(sentAt, boundMs);
      return reply;
    } catch (err) {
      if (signal?.aborted) throw err;
      if (isNoAnswer(err)) this.noAnswer();
      else this.answered(sentAt, boundMs); // a refusal is an answer: the server is there
      throw err;
    }
  }

  private noAnswer(): void {
    this.down = true;
    this.lastNoAnswerAt = this.clock.now();
    this.closeStretch();
  }

  private answered(sentAt: number, boundMs: number): void {
    const now = this.clock.now();
    if (now - sentAt > boundMs + LATE_MS) {
      // answered, but so late that the time it hung was time without an answer
      this.lastNoAnswerAt = now;
      this.closeStretch();
    }
    const from = Math.max(sentAt, this.lastNoAnswerAt);
    if (this.current) this.current.to = Math.max(this.current.to, now);
    else this.current = { from, to: now };
    this.lastContactAt = now;
    if (this.down) {
      this.down = false;
      this.onBack();
    }
  }

  private closeStretch(): void {
    if (!this.current) return;
    this.earlier.push(this.current);
    if (this.earlier.length > MAX_STRETCHES) this.earlier.shift();
    this.current = null;
    this.noWork = null;
  }
}
