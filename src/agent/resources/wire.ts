/**
 * Build the real resources of a running agent: the probe, cgroup, batch
 * system and Machine/Job Features sources, and the payloads' isolation.
 */
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/log.js';
import type { AgentConfig } from '../config/schema.js';
import { lastKnownFile } from '../mjf/last-known.js';
import { PayloadIsolation } from '../isolation/payload-isolation.js';
import { probeIsolation } from '../isolation/probe.js';
import { OUTER_PATH } from '../isolation/sandbox.js';
import { SlotAccounts } from '../isolation/slots.js';
import { nodeProbe } from '../probe/node-probe.js';
import { systemCommandRunner } from '../executor/command-runner.js';
import { mailboxSpoolOf } from '../control/mailbox-url.js';
import { NodeResources } from './node-resources.js';
import { PilotResources } from './pilot-resources.js';
import { SpotNotice } from './spot-notice.js';

/**
 * The isolation of `vmpilot run`: probe what the node allows, plan, make the
 * state directory private, and say what was chosen ("isolation" in the log;
 * a warning when it is none). Throws VMP_CONFIG for an unknown payload user
 * or an isolation asked for that cannot be had.
 */
export async function realIsolation(config: Readonly<AgentConfig>, log: Logger): Promise<PayloadIsolation> {
  const run = systemCommandRunner({ PATH: OUTER_PATH });
  const slots = new SlotAccounts({ run });
  const { plan, mapUser } = await probeIsolation({ choice: config.isolation, payloadUser: config.payloadUser, run, slots });
  const uid = process.getuid?.() ?? -1;
  const isolation = new PayloadIsolation(plan, {
    stateDir: config.stateDir,
    secretFiles: [config.tokenFile, config.configFile].filter((f): f is string => f !== null),
    // mailboxes' requests carry pilots' credentials: the whole spool, the other agents' of this account too
    secretDirs: [mailboxSpoolOf(config.server)].filter((d): d is string => d !== null),
    uid,
    gid: process.getgid?.() ?? -1,
    mapUser,
    slots: plan.mode === 'slot-users' ? slots : null,
  });
  await isolation.prepareStateDir();
  const fields = { isolation: plan.mode, containment: plan.containment, ...(plan.account ? { payloadUser: plan.account.name } : {}), ...(plan.notes.length ? { notes: plan.notes } : {}) };
  if (plan.mode === 'none') log.warn(fields, 'isolation: none: payloads can read the agent state and signal the agent');
  else log.info(fields, `isolation: ${plan.mode}`);
  return isolation;
}

/** The PilotResources of `vmpilot run`. Throws VMP_CONFIG for an unknown payload user. */
export async function realPilotResources(config: Readonly<AgentConfig>, log: Logger, clock: Clock): Promise<PilotResources> {
  const isolation = await realIsolation(config, log);
  const source = new NodeResources({
    config,
    probe: nodeProbe,
    log: log.child({ role: 'resources' }),
    startedAt: clock.now(),
    run: systemCommandRunner(config.batchEnv),
    clock,
    lastKnown: { file: lastKnownFile(config.stateDir), save: true },
    spotNotice: config.spotNotice ? new SpotNotice(config.spotNotice, config.metadataUrl, log.child({ role: 'spot-notice' }), clock) : null,
  });
  return new PilotResources(source, config, log.child({ role: 'resources' }), isolation);
}
