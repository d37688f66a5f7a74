/**
 * The heartbeat loop: the first beat after a random part of the interval,
 * then one beat per interval (the server's reply, or a `set` instruction,
 * sets it); after failures the wait doubles up to a cap, and when the
 * server is back (any call answered) a beat that is overdue goes at once.
 * Each beat also rewrites `$JOBOUTPUTS/heartbeat`, whether or not the
 * server answered.
 */
import type { HeartbeatReply, HeartbeatRequest } from '../../protocol/index.js';
import type { Clock } from '../../shared/clock.js';
import { describeError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { JobOutputs } from '../halt/job-outputs.js';
import type { ControlPlane } from '../ports.js';
import { Wakeup } from '../wakeup.js';
import { firstBeatDelayMs, heartbeatDelayMs, heartbeatFileText } from '../monitor/heartbeat.js';

/** What the loop needs. */
export interface HeartbeatLoopDeps {
  control: ControlPlane;
  clock: Clock;
  log: Logger;
  outputs: JobOutputs | null;
  /** A number in [0, 1) for the first beat's jitter. */
  random: () => number;
  /** The heartbeat as of now. */
  build: () => Promise<HeartbeatRequest>;
  /** The server's reply (instructions). */
  onReply: (reply: HeartbeatReply) => void;
}

/** Sends heartbeats until stopped. */
export class HeartbeatLoop {
  /** Seconds between beats. */
  intervalSec: number;
  /** Set by a `set` instruction: wins over the interval in the server's replies. */
  private override: number | null = null;
  private failures = 0;
  /** When the last beat was sent (ms epoch), or null before the first. */
  private lastBeatAt: number | null = null;
  readonly wake: Wakeup;

  constructor(
    private readonly deps: HeartbeatLoopDeps,
    intervalSec: number,
  ) {
    this.intervalSec = intervalSec;
    this.wake = new Wakeup(deps.clock);
  }

  /** A `set` instruction: use this interval from now on, starting with the next beat. */
  setInterval(sec: number): void {
    this.override = sec;
    this.intervalSec = sec;
    this.wake.poke();
  }

  /** Beat now (e.g. on a state change) rather than at the end of the interval. */
  beatNow(): void {
    this.wake.poke();
  }

  /**
   * The server answered again after an outage: when beats failed and the
   * next one would have gone by now at the usual interval, beat now rather
   * than at the end of the back-off (up to ten minutes). Not sooner than the
   * interval, so a server that fails only heartbeats is not hammered.
   */
  serverBack(): void {
    if (this.failures === 0 || this.lastBeatAt === null) return;
    if (this.deps.clock.now() - this.lastBeatAt >= this.intervalSec * 1000) this.wake.poke();
  }

  /** Run until `stop` aborts. */
  async run(stop: AbortSignal): Promise<void> {
    const onStop = () => this.wake.poke();
    stop.addEventListener('abort', onStop, { once: true });
    const jitter = firstBeatDelayMs(this.intervalSec, this.deps.random());
    if (jitter > 0) await this.wake.wait(this.wake.version, jitter);
    while (!stop.aborted) {
      const v = this.wake.version;
      await this.beat();
      if (stop.aborted) break;
      await this.wake.wait(v, heartbeatDelayMs(this.intervalSec, this.failures));
    }
    stop.removeEventListener('abort', onStop);
  }

  /** Send one heartbeat and write the heartbeat file; never throws. */
  async beat(): Promise<void> {
    const { control, log, outputs } = this.deps;
    let request: HeartbeatRequest;
    try {
      request = await this.deps.build();
    } catch (err) {
      log.error({ err: describeError(err) }, 'heartbeat not built');
      return;
    }
    this.lastBeatAt = this.deps.clock.now();
    const written = outputs?.put('heartbeat', heartbeatFileText(request)).catch((err: unknown) => {
      log.warn({ err: describeError(err) }, 'heartbeat file not written');
    });
    try {
      const reply = await control.heartbeat(request);
      this.failures = 0;
      if (this.override === null && reply.intervalSec > 0) this.intervalSec = reply.intervalSec;
      this.deps.onReply(reply);
    } catch (err) {
      this.failures++;
      log.warn({ err: describeError(err), failures: this.failures, nextInSec: heartbeatDelayMs(this.intervalSec, this.failures) / 1000 }, 'heartbeat failed');
    }
    await written;
  }
}
