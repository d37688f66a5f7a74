/**
 * The lifecycle loop: asks the pure decision (monitor/lifecycle.ts) what to
 * do next, carries out drains and resumes, returns the halt, and otherwise
 * sleeps until the next moment a rule can fire (or something changes).
 * Each round also checks the lease (pilot/lease-fence.ts).
 * Also the watch on the operator's drain files.
 */
import { DRAIN_POLL_MS } from '../monitor/drain-files.js';
import { idleAnswerInMs } from '../monitor/idle.js';
import { decideLifecycle, type HaltRequest, type LifecycleInputs } from '../monitor/lifecycle.js';
import { HOUR, type PilotCore } from './core.js';

/** Start draining this long before the deadline minus grace. */
const DRAIN_LEAD_SEC = 60;

/** What the lifecycle decision reads, as of `now`. */
export function lifecycleInputs(p: PilotCore, now: number): LifecycleInputs {
  const { config } = p.deps;
  return {
    now,
    state: p.lifecycle,
    runningCount: p.payloads.count,
    bootAt: p.bootAt,
    lastBusyAt: p.lastBusyAt,
    lastContactAt: p.control.lastContactAt,
    idle: p.control.idle,
    idleTimeoutSec: p.idleTimeoutSec,
    minLifetimeSec: config.minLifetimeSec,
    orphanTimeoutSec: config.orphanTimeoutSec,
    // --drain-before counts from the deadline; the rule counts from the deadline minus the grace
    drainLeadSec: config.drainBeforeSec === null ? DRAIN_LEAD_SEC : Math.max(0, config.drainBeforeSec - p.res.graceSec()),
    drainRequested: p.drainRequested ?? (p.drainFile ? `drain file ${p.drainFile}` : null),
    haltRequested: p.haltRequested,
    haltBy: p.deadline === null ? null : p.deadline - p.res.graceSec() * 1000,
  };
}

/**
 * How long the server may hold the next match request (s): its bound, or
 * less so that its answer comes when the idle timeout is due (the idle halt
 * fires on that answer, monitor/idle.ts); 0 while the server is away, so
 * that the first call that reaches it is answered at once (the pilot
 * notices the return, and asks for work, without waiting a long poll).
 */
export function matchWaitSec(p: PilotCore): number {
  if (p.control.unreachable) return 0;
  const i = lifecycleInputs(p, p.deps.clock.now());
  if (i.state !== 'serving' || i.runningCount > 0 || i.idleTimeoutSec <= 0) return p.matchWaitSec;
  const dueMs = idleAnswerInMs(i, i.now);
  return dueMs === null ? p.matchWaitSec : Math.min(p.matchWaitSec, Math.ceil(dueMs) / 1000);
}

/** Run the lifecycle until it decides to halt; resolves with the halt. */
export async function lifecycleLoop(p: PilotCore): Promise<HaltRequest> {
  const { clock } = p.deps;
  for (;;) {
    const v = p.wake.version;
    const now = clock.now();
    const fenceWake = p.fence.check(now);
    const d = decideLifecycle(lifecycleInputs(p, now));
    // a requested halt (instruction, signal) keeps its eviction reason; the deadline has its own
    if (d.kind === 'halt') return p.haltRequested ?? { code: d.code, reason: d.reason, ...(d.eviction ? { eviction: d.eviction } : {}) };
    if (d.kind === 'drain' || d.kind === 'resume') {
      await p.transition(d.kind === 'drain' ? 'draining' : 'serving', d.reason);
      p.abortMatch();
      continue;
    }
    const wakeAt = d.wakeAt === null ? fenceWake : fenceWake === null ? d.wakeAt : Math.min(d.wakeAt, fenceWake);
    await p.wake.wait(v, wakeAt === null ? HOUR : Math.max(0, wakeAt - now));
  }
}

/** Poll the operator's drain files until the pilot stops its loops; a change wakes the lifecycle. */
export async function watchDrainFiles(p: PilotCore): Promise<void> {
  const files = p.deps.drainFiles;
  if (!files) return;
  while (!p.stopLoops.signal.aborted) {
    const found = await files.present().catch(() => null);
    if (found !== p.drainFile) {
      p.log.info({ file: found ?? p.drainFile, present: found !== null }, found ? 'drain file found' : 'drain file removed');
      p.drainFile = found;
      p.abortMatch();
      p.wake.poke();
    }
    await p.deps.clock.sleep(DRAIN_POLL_MS, p.stopLoops.signal);
  }
}
