/**
 * Build the real resources of a running agent: the probe, cgroup, batch
 * system and Machine/Job Features sources, and the payload user.
 */
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/log.js';
import type { AgentConfig } from '../config/schema.js';
import { openStateDirTo, resolvePayloadUser } from '../executor/payload-user.js';
import { lastKnownFile } from '../mjf/last-known.js';
import { nodeProbe } from '../probe/node-probe.js';
import { execFileCommandRunner } from './command.js';
import { NodeResources } from './node-resources.js';
import { PilotResources } from './pilot-resources.js';

/** The PilotResources of `vmpilot run`. Throws VMP_CONFIG for an unknown payload user. */
export async function realPilotResources(config: Readonly<AgentConfig>, log: Logger, clock: Clock): Promise<PilotResources> {
  const uid = typeof process.getuid === 'function' ? process.getuid() : -1;
  const user = resolvePayloadUser(config.payloadUser, uid);
  if (config.payloadUser !== null && user === null) log.warn({ payloadUser: config.payloadUser }, 'not root: payloads run as the agent user');
  if (user) {
    await openStateDirTo(config.stateDir);
    log.info({ payloadUser: user.name, uid: user.uid }, 'payloads run as');
  }
  const source = new NodeResources({
    config,
    probe: nodeProbe,
    log: log.child({ role: 'resources' }),
    startedAt: clock.now(),
    run: execFileCommandRunner(config.batchEnv),
    clock,
    lastKnown: { file: lastKnownFile(config.stateDir), save: true },
  });
  return new PilotResources(source, config, log.child({ role: 'resources' }), user ? { uid: user.uid, gid: user.gid } : null);
}
