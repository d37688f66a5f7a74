/**
 * The lifecycle loop: asks the pure decision (monitor/lifecycle.ts) what to
 * do next, carries out drains and resumes, returns the halt, and otherwise
 * sleeps until the next moment a rule can fire (or something changes).
 * Each round also checks the lease (pilot/lease-fence.ts).
 * Also the watch on the operator's drain files.
 */
import type { LifecycleState } from '../../protocol/index.js';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/log.js';
import type { AgentConfig } from '../config/schema.js';
import type { ContactTracker } from './contact.js';
import { DRAIN_POLL_MS, type DrainFiles } from '../probe/drain-files.js';
import { idleAnswerInMs } from '../monitor/idle.js';
import { decideLifecycle, type LifecycleInputs } from '../monitor/lifecycle.js';
import type { PayloadSupervisor } from '../payload/supervisor.js';
import { HOUR, type Wakeup } from '../wakeup.js';
import type { LeaseFence } from './lease-fence.js';
import { agentHalt, type Halt, type Lifecycle } from './lifecycle.js';
import type { MatchAbort } from './match-call.js';

/** Start draining this long before the deadline minus grace. */
const DRAIN_LEAD_SEC = 60;

/** What the loop reads and acts on. */
export interface LifecycleLoopDeps {
  clock: Clock;
  wake: Wakeup;
  config: Pick<AgentConfig, 'minLifetimeSec' | 'orphanTimeoutSec' | 'drainBeforeSec'>;
  graceSec(): number;
  life: Lifecycle;
  payloads: Pick<PayloadSupervisor, 'count'>;
  contact: Pick<ContactTracker, 'lastContactAt' | 'idle' | 'unreachable'>;
  /** The node's deadline now (ms epoch), or null. */
  deadline(): number | null;
  /** The server's bound on a held-open match (s). */
  matchWaitMaxSec(): number;
  fence: Pick<LeaseFence, 'check'>;
  transition(to: LifecycleState, reason: string): Promise<void>;
  match: MatchAbort;
}

/** Decides the lifecycle, round after round, until the halt. */
export class LifecycleLoop {
  constructor(private readonly d: LifecycleLoopDeps) {}

  /** What the lifecycle decision reads, as of `now`. */
  inputs(now: number): LifecycleInputs {
    const { config, life } = this.d;
    const deadline = this.d.deadline();
    return {
      now,
      state: life.state,
      runningCount: this.d.payloads.count,
      bootAt: life.bootAt,
      lastBusyAt: life.lastBusyAt,
      lastContactAt: this.d.contact.lastContactAt,
      idle: this.d.contact.idle,
      idleTimeoutSec: life.idleTimeoutSec,
      minLifetimeSec: config.minLifetimeSec,
      orphanTimeoutSec: config.orphanTimeoutSec,
      // --drain-before counts from the deadline; the rule counts from the deadline minus the grace
      drainLeadSec: config.drainBeforeSec === null ? DRAIN_LEAD_SEC : Math.max(0, config.drainBeforeSec - this.d.graceSec()),
      drainRequested: life.drainReason,
      haltRequested: life.halt,
      haltBy: deadline === null ? null : deadline - this.d.graceSec() * 1000,
    };
  }

  /**
   * How long the server may hold the next match request (s): its bound, or
   * less so that its answer comes when the idle timeout is due (the idle halt
   * fires on that answer, monitor/idle.ts); 0 while the server is away, so
   * that the first call that reaches it is answered at once (the pilot
   * notices the return, and asks for work, without waiting a long poll).
   */
  matchWaitSec(): number {
    if (this.d.contact.unreachable) return 0;
    const bound = this.d.matchWaitMaxSec();
    const i = this.inputs(this.d.clock.now());
    if (i.state !== 'serving' || i.runningCount > 0 || i.idleTimeoutSec <= 0) return bound;
    const dueMs = idleAnswerInMs(i, i.now);
    return dueMs === null ? bound : Math.min(bound, Math.ceil(dueMs) / 1000);
  }

  /** Run the lifecycle until it decides to halt; resolves with the halt. */
  async run(): Promise<Halt> {
    const { clock, wake, life } = this.d;
    for (;;) {
      const v = wake.version;
      const now = clock.now();
      const fenceWake = this.d.fence.check(now);
      const d = decideLifecycle(this.inputs(now));
      // a requested halt (instruction, signal) keeps its eviction reason; the deadline has its own
      if (d.kind === 'halt') return life.halt ?? agentHalt(d, 'halt');
      if (d.kind === 'drain' || d.kind === 'resume') {
        await this.d.transition(d.kind === 'drain' ? 'draining' : 'serving', d.reason);
        this.d.match.abort();
        continue;
      }
      const wakeAt = d.wakeAt === null ? fenceWake : fenceWake === null ? d.wakeAt : Math.min(d.wakeAt, fenceWake);
      await wake.wait(v, wakeAt === null ? HOUR : Math.max(0, wakeAt - now));
    }
  }
}

/** What the drain-file watch needs. */
export interface DrainWatchDeps {
  files: DrainFiles;
  life: Pick<Lifecycle, 'drainFile' | 'setDrainFile'>;
  clock: Clock;
  log: Logger;
  stop: AbortSignal;
}

/** Poll the operator's drain files until the pilot stops its loops; a change wakes the lifecycle. */
export async function watchDrainFiles(d: DrainWatchDeps): Promise<void> {
  while (!d.stop.aborted) {
    const found = await d.files.present().catch(() => null);
    d.life.setDrainFile(found);
    await d.clock.sleep(DRAIN_POLL_MS, d.stop);
  }
}
