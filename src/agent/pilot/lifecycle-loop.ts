/**
 * The lifecycle loop: asks the pure decision (monitor/lifecycle.ts) what to
 * do next, carries out drains and resumes, returns the halt, and otherwise
 * sleeps until the next moment a rule can fire (or something changes).
 * Each round also checks the lease (pilot/lease-fence.ts).
 * Also the watch on the operator's drain files.
 */
import { DRAIN_POLL_MS } from '../monitor/drain-files.js';
import { decideLifecycle, type HaltRequest } from '../monitor/lifecycle.js';
import { HOUR, type PilotCore } from './core.js';

/** Start draining this long before the deadline minus grace. */
const DRAIN_LEAD_SEC = 60;

/** Run the lifecycle until it decides to halt; resolves with the halt. */
export async function lifecycleLoop(p: PilotCore): Promise<HaltRequest> {
  const { config, clock } = p.deps;
  for (;;) {
    const v = p.wake.version;
    const now = clock.now();
    const fenceWake = p.fence.check(now);
    p.control.windowMs = p.reachableWindowSec * 1000;
    const d = decideLifecycle({
      now,
      state: p.lifecycle,
      runningCount: p.payloads.count,
      bootAt: p.bootAt,
      lastBusyAt: p.lastBusyAt,
      lastContactAt: p.control.lastContactAt,
      serverDown: p.control.unreachable,
      reachableSince: p.control.reachableSince,
      idleTimeoutSec: p.idleTimeoutSec,
      minLifetimeSec: config.minLifetimeSec,
      orphanTimeoutSec: config.orphanTimeoutSec,
      drainLeadSec: DRAIN_LEAD_SEC,
      drainRequested: p.drainRequested ?? (p.drainFile ? `drain file ${p.drainFile}` : null),
      haltRequested: p.haltRequested,
      haltBy: p.deadline === null ? null : p.deadline - p.res.graceSec() * 1000,
    });
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
