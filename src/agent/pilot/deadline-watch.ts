/**
 * The deadline watch: the node's deadline (MJF `shutdowntime`,
 * `shutdowntime_job`, the batch end time) is looked at every fraction of
 * the grace the agent promises (PilotResources.watchIntervalMs), before
 * every match request and before a payload is taken, not only at
 * heartbeats. A moved deadline is applied at once (pilot/node-state.ts):
 *
 *   look ──moved──▶ $MACHINEFEATURES and every running payload's shutdowntime_job rewritten (PilotResources)
 *              ├──▶ the open match request is aborted: asked again with the new remaining time
 *              └──▶ the lifecycle wakes: drain when near, SIGTERM at deadline − grace, halt 100
 */
import type { Clock } from '../../shared/clock.js';
import type { PayloadSupervisor } from '../payload/supervisor.js';
import type { HeldPayload, PilotResources } from '../resources/pilot-resources.js';
import type { NodeState } from './node-state.js';

/** The payloads held, and whether each one's process runs (the payload book records it). */
export function heldPayloads(payloads: Pick<PayloadSupervisor, 'heartbeatView'>): HeldPayload[] {
  return payloads.heartbeatView().map((v) => ({ id: v.id, running: v.state !== 'starting' }));
}

/** What the watch needs. */
export interface DeadlineWatchDeps {
  clock: Clock;
  res: Pick<PilotResources, 'watchIntervalMs'>;
  node: Pick<NodeState, 'refreshDeadline'>;
  /** Aborted when the pilot stops its loops. */
  stop: AbortSignal;
}

/** Look at the deadline every watch interval until the pilot stops its loops. */
export async function watchDeadline(d: DeadlineWatchDeps): Promise<void> {
  for (;;) {
    const ms = d.res.watchIntervalMs();
    if (ms === null || d.stop.aborted) return;
    await d.clock.sleep(ms, d.stop);
    if (d.stop.aborted) return;
    await d.node.refreshDeadline();
  }
}
