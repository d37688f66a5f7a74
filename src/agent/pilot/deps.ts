/** What a pilot is built from: its configuration and its ports (../ports.ts). */
import type { Logger } from '../../shared/log.js';
import type { AgentConfig } from '../config/schema.js';
import type { JobOutputs } from '../halt/job-outputs.js';
import type { DrainFiles } from '../probe/drain-files.js';
import type { BootstrapEnd } from '../bootstrap/halt.js';
import type { UsageProbe } from '../probe/usage.js';
import type { Clock, ControlPlane, Halter, NodeProbe, ProcessRunner, StateStore } from '../ports.js';
import type { PilotResources } from '../resources/pilot-resources.js';

/** Everything a pilot needs. The optional ports default to doing nothing (tests). */
export interface PilotDeps {
  config: Readonly<AgentConfig>;
  control: ControlPlane;
  runner: ProcessRunner;
  probe: NodeProbe;
  halter: Halter;
  store: StateStore;
  clock: Clock;
  log: Logger;
  /** `$JOBOUTPUTS`, when given. */
  outputs?: JobOutputs | null;
  drainFiles?: DrainFiles;
  usage?: UsageProbe;
  /** [0, 1), for the first heartbeat's jitter. */
  random?: () => number;
  /** Machine/Job Features values for the heartbeat. */
  features?: () => Record<string, string | number>;
  /** Resources and deadline (MJF, batch, cgroup), re-read on every heartbeat; default: config and probe only. */
  resources?: PilotResources;
  /** The bootstrap steps (agent/bootstrap), run once registered: the environment they add to the payloads', or a halt request (code 500) when one failed. */
  bootstrap?: () => Promise<BootstrapEnd>;
}
