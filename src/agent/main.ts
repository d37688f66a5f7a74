/**
 * The entry points of `vmpilot run` and `vmpilot probe`: load the config,
 * build the real adapters, wire process signals to the pilot.
 */
import { ShutdownCode } from '../protocol/index.js';
import { systemClock } from '../shared/clock.js';
import { createLogger } from '../shared/log.js';
import { loadConfig } from './config/load.js';
import { HttpControlPlane } from './control/http-control-plane.js';
import { childProcessRunner } from './executor/process-runner.js';
import { processHalter } from './halt/halter.js';
import { Pilot } from './pilot.js';
import { nodeProbe } from './probe/node-probe.js';
import { formatResources, offeredResources } from './probe/resources.js';
import { FileStateStore } from './state/file-store.js';

/** `vmpilot run`: run the agent until it halts (the halt action ends the process). */
export async function runAgent(flags: Record<string, unknown>): Promise<void> {
  const config = loadConfig({ flags }, { require: ['server', 'token'] });
  const root = createLogger({ level: config.logLevel });
  const log = root.child({ role: 'agent' });
  const control = new HttpControlPlane({ server: config.server!, token: config.token! });
  const pilot = new Pilot({
    config,
    control,
    runner: childProcessRunner,
    probe: nodeProbe,
    halter: processHalter(log),
    store: new FileStateStore(config.stateDir),
    clock: systemClock,
    log: root,
  });
  process.on('SIGTERM', () => pilot.requestHalt(ShutdownCode.REQUESTED, 'SIGTERM'));
  process.on('SIGINT', () => pilot.requestHalt(ShutdownCode.REQUESTED, 'SIGINT'));
  process.on('SIGUSR1', () => pilot.requestDrain('SIGUSR1'));
  process.on('SIGHUP', () => log.info('SIGHUP ignored'));
  log.info({ server: config.server, cores: config.cores, stateDir: config.stateDir, halt: config.halt.kind }, 'starting');
  await pilot.run();
}

/** `vmpilot probe`: print the node as the agent sees it. */
export async function probeCommand(flags: Record<string, unknown>): Promise<void> {
  const config = loadConfig({ flags });
  const snap = await nodeProbe.snapshot(config.stateDir);
  const offered = offeredResources(snap, { cores: config.cores, memoryMb: config.memoryMb });
  process.stdout.write(flags.json ? `${JSON.stringify(offered, null, 2)}\n` : formatResources(offered));
}
