/**
 * The entry points of `vmpilot run` and `vmpilot probe`: load the config,
 * build the real adapters, wire process signals to the pilot.
 */
import { readFileSync } from 'node:fs';
import { VmpilotError, describeError } from '../shared/errors.js';
import { ShutdownCode } from '../protocol/index.js';
import { systemClock } from '../shared/clock.js';
import { createLogger } from '../shared/log.js';
import { loadConfigWithFile } from './config/load.js';
import { HttpControlPlane } from './control/http-control-plane.js';
import { childProcessRunner } from './executor/process-runner.js';
import { processHalter } from './halt/halter.js';
import { jobOutputsFor } from './halt/job-outputs.js';
import { drainPaths, fileDrainFiles } from './probe/drain-files.js';
import { procUsage } from './probe/usage.js';
import { wrappedRunner } from './payload/wrapped-runner.js';
import { Pilot } from './pilot.js';
import { nodeProbe } from './probe/node-probe.js';
import { realPilotResources } from './resources/wire.js';
import { FileStateStore } from './state/file-store.js';

/** `vmpilot run`: run the agent until it halts (the halt action ends the process). */
export async function runAgent(flags: Record<string, unknown>): Promise<void> {
  const config = await loadConfigWithFile({ flags }, { require: ['server', 'token'] });
  const root = createLogger({ level: config.logLevel });
  const log = root.child({ role: 'agent' });
  const ca = readCaFile(config.caFile);
  // a file:///DIR/NAME server is a mailbox on a shared filesystem, carried by `vmpilot relay --spool DIR` (docs/hpc.md)
  const control = config.server!.startsWith('file:')
    ? (await import('./control/mailbox-control-plane.js')).mailboxControlPlane({ server: config.server!, token: config.token!, clock: systemClock })
    : new HttpControlPlane({ server: config.server!, token: config.token!, ca });
  const pilot = new Pilot({
    config: Object.freeze({ ...config }),
    // loaded only when there are steps: an agent without them never loads the download and unpack code (tar)
    bootstrap:
      config.bootstrap === null
        ? undefined
        : async () =>
            (await import('./bootstrap/halt.js')).bootstrapHalt(
              config.bootstrap!,
              // bootstrap steps add to every payload's environment: the pilot keeps it (payload/base-env.ts)
              { stateDir: config.stateDir, baseEnv: config.payloadBaseEnv, clock: systemClock, log: root.child({ role: 'bootstrap' }), ca, artifactsVia: config.artifactsVia },
            ),
    control,
    runner: wrappedRunner(childProcessRunner),
    probe: nodeProbe,
    halter: processHalter(log),
    store: new FileStateStore(config.stateDir),
    clock: systemClock,
    log: root,
    outputs: jobOutputsFor(config.jobOutputs),
    drainFiles: fileDrainFiles(drainPaths(config.stateDir, config.drainFile)),
    usage: procUsage,
    resources: await realPilotResources(config, root, systemClock),
  });
  // SIGTERM (a batch system about to preempt, systemctl stop): drain, SIGTERM payloads, grace, halt 100;
  // the payloads are reported evicted, so the server queues them again
  process.on('SIGTERM', () => {
    pilot.requestDrain('SIGTERM');
    pilot.requestHalt(ShutdownCode.REQUESTED, 'SIGTERM', 'signal');
  });
  process.on('SIGINT', () => pilot.requestHalt(ShutdownCode.REQUESTED, 'SIGINT', 'signal'));
  process.on('SIGUSR1', () => pilot.requestDrain('SIGUSR1'));
  process.on('SIGHUP', () => log.info('SIGHUP ignored'));
  log.info({ server: config.server, cores: config.cores, stateDir: config.stateDir, halt: config.halt.kind }, 'starting');
  await pilot.run();
}

/** The CA certificate of `--ca-file`, or undefined; a clear config error when it cannot be read. */
function readCaFile(file: string | null): Buffer | undefined {
  if (file === null) return undefined;
  try {
    return readFileSync(file);
  } catch (err) {
    throw new VmpilotError('VMP_CONFIG', `caFile: cannot read ${file}: ${describeError(err)}`, { cause: err });
  }
}
