/**
 * The deadline watch: the node's deadline (MJF `shutdowntime`,
 * `shutdowntime_job`, the batch end time) is looked at every fraction of
 * the grace the agent promises (PilotResources.watchIntervalMs), before
 * every match request and before a payload is taken, not only at
 * heartbeats. A moved deadline is applied at once:
 *
 *   look ──moved──▶ $MACHINEFEATURES and every running payload's shutdowntime_job rewritten (PilotResources)
 *              ├──▶ the open match request is aborted: asked again with the new remaining time
 *              └──▶ the lifecycle wakes: drain when near, SIGTERM at deadline − grace, halt 100
 */
import { describeError } from '../../shared/errors.js';
import type { HeldPayload, ResourceUpdate } from '../resources/pilot-resources.js';
import type { PilotCore } from './core.js';

/** The payloads held, and whether each one's process runs (pilot/payload-books.ts records it). */
export function heldPayloads(p: PilotCore): HeldPayload[] {
  return p.payloads.heartbeatView().map((v) => ({ id: v.id, running: v.state !== 'starting' }));
}

/** Take a refreshed deadline: when it moved, the open match is asked again and the lifecycle wakes. */
export function applyDeadline(p: PilotCore, u: Pick<ResourceUpdate, 'deadline'>): void {
  if (u.deadline === p.deadline) return;
  p.deadline = u.deadline;
  p.abortMatch();
  p.wake.poke();
}

/** Look at the deadline now (cheap; nothing without Machine/Job Features or a batch system). */
export async function refreshDeadline(p: PilotCore): Promise<void> {
  const u = await p.res.refreshDeadline(heldPayloads(p)).catch((err: unknown) => {
    p.log.warn({ err: describeError(err) }, 'deadline not refreshed');
    return null;
  });
  if (u) applyDeadline(p, u);
}

/** Look at the deadline every watch interval until the pilot stops its loops. */
export async function watchDeadline(p: PilotCore): Promise<void> {
  const { clock } = p.deps;
  for (;;) {
    const ms = p.res.watchIntervalMs();
    if (ms === null || p.stopLoops.signal.aborted) return;
    await clock.sleep(ms, p.stopLoops.signal);
    if (p.stopLoops.signal.aborted) return;
    await refreshDeadline(p);
  }
}
