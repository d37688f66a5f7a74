/**
 * The actions of `vmpilot-server batch-script` and `user-data`: read the
 * agent manifest (beside the server bundle, or --manifest), turn the
 * command-line strings into typed options, and print the generated text.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { VmpilotError, describeError } from '../../shared/errors.js';
import { BATCH_DEFAULTS, batchScript, defaultDrainSec, type PbsFlavour } from './batch-script.js';
import { MANIFEST_NAME, defaultAgentDir, pickAgentFile, readManifest } from './manifest.js';
import { checkChoice, checkSha256, parseIntOption } from './options.js';
import { agentRef, type AgentRef } from './shell.js';
import { USER_DATA_DEFAULTS, userData } from './user-data.js';

type Flags = Record<string, string | boolean | string[] | undefined>;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** The agent file to fetch: --agent-sha256 with --agent-file, or from the manifest. */
export async function agentFromFlags(flags: Flags): Promise<AgentRef> {
  const flavour = checkChoice('--agent', str(flags.agent) ?? 'executable', ['executable', 'bundle'] as const);
  const sha = str(flags.agentSha256);
  if (sha !== undefined) {
    const file = str(flags.agentFile) ?? (flavour === 'bundle' ? 'vmpilot.cjs' : 'vmpilot-linux-x64');
    if (file.endsWith('.gz')) throw new VmpilotError('VMP_USAGE', '--agent-file: with --agent-sha256 give the uncompressed file (e.g. vmpilot-linux-x64), whose hash is what runs');
    return { file, sha256: checkSha256('--agent-sha256', sha), runSha256: sha, kind: flavour };
  }
  const manifestFile = str(flags.manifest);
  const dir = manifestFile ? path.dirname(path.resolve(manifestFile)) : defaultAgentDir();
  if (manifestFile && path.basename(manifestFile) !== MANIFEST_NAME) {
    throw new VmpilotError('VMP_USAGE', `--manifest "${manifestFile}": expected a file named ${MANIFEST_NAME} (npm run build writes dist/${MANIFEST_NAME})`);
  }
  const manifest = await readManifest(dir).catch((err: unknown) => {
    throw new VmpilotError('VMP_USAGE', `${(err as Error).message}; or give --manifest FILE or --agent-sha256 HEX`, { cause: err });
  });
  return agentRef(pickAgentFile(manifest, flavour));
}

const int = (flags: Flags, key: string, flag: string, fallback: number, min: number, max: number): number => {
  const v = str(flags[key]);
  return v === undefined ? fallback : parseIntOption(flag, v, min, max);
};

/** `--ca-file FILE`: its name and text, or undefined; VMP_USAGE when it cannot be read (batchScript and userData check the PEM). */
export function caFromFlags(flags: Flags): { file: string; pem: string } | undefined {
  const file = str(flags.caFile);
  if (file === undefined) return undefined;
  try {
    return { file, pem: readFileSync(file, 'utf8') };
  } catch (err) {
    throw new VmpilotError('VMP_USAGE', `--ca-file ${file}: cannot read it: ${describeError(err)}`, { cause: err });
  }
}

/**
 * `vmpilot-server batch-script`. Without `--drain-before`, a wall time too
 * short for the default drain gets a shorter one, said on stderr (`note`)
 * rather than refused as a flag the user never gave.
 */
export async function batchScriptCommand(
  flags: Flags,
  write: (s: string) => unknown = (s) => process.stdout.write(s),
  note: (s: string) => unknown = (s) => process.stderr.write(s),
): Promise<void> {
  const agent = await agentFromFlags(flags);
  const walltimeSec = int(flags, 'walltime', '--walltime', BATCH_DEFAULTS.walltimeSec, 120, 366 * 86400);
  const drainGiven = str(flags.drainBefore) !== undefined;
  const drainSec = drainGiven ? int(flags, 'drainBefore', '--drain-before', BATCH_DEFAULTS.drainSec, 0, 366 * 86400) : defaultDrainSec(walltimeSec);
  const script = batchScript({
    system: str(flags.system) ?? '',
    server: str(flags.server) ?? '',
    token: str(flags.pilotToken),
    agent,
    cores: int(flags, 'cores', '--cores', BATCH_DEFAULTS.cores, 1, 4096),
    walltimeSec,
    drainSec,
    idleTimeoutSec: int(flags, 'idleTimeout', '--idle-timeout', BATCH_DEFAULTS.idleTimeoutSec, 0, 30 * 86400),
    graceSec: int(flags, 'grace', '--grace', BATCH_DEFAULTS.graceSec, 0, 3600),
    jobName: str(flags.jobName) ?? BATCH_DEFAULTS.jobName,
    queue: str(flags.queue),
    account: str(flags.account),
    sgePe: str(flags.sgePe) ?? BATCH_DEFAULTS.sgePe,
    output: str(flags.output),
    cacheDir: str(flags.cacheDir),
    workDir: str(flags.workDir),
    pbs: str(flags.pbs) as PbsFlavour | undefined,
    ca: caFromFlags(flags),
  });
  if (!drainGiven && drainSec !== BATCH_DEFAULTS.drainSec) {
    note(
      `vmpilot-server: note: the job drains ${drainSec} s before its wall time ends (a quarter of --walltime ${walltimeSec}): ` +
        `the default ${BATCH_DEFAULTS.drainSec} s would leave less than the 60 s a drain must leave; give --drain-before SEC to choose\n`,
    );
  }
  write(script);
}

/** `vmpilot-server user-data`. */
export async function userDataCommand(flags: Flags, write = (s: string) => process.stdout.write(s)): Promise<void> {
  const agent = await agentFromFlags(flags);
  write(
    userData({
      server: str(flags.server) ?? '',
      token: str(flags.pilotToken),
      agent,
      cores: str(flags.cores) === undefined ? null : parseIntOption('--cores', str(flags.cores)!, 1, 4096),
      idleTimeoutSec: int(flags, 'idleTimeout', '--idle-timeout', USER_DATA_DEFAULTS.idleTimeoutSec, 0, 30 * 86400),
      graceSec: int(flags, 'grace', '--grace', USER_DATA_DEFAULTS.graceSec, 0, 3600),
      lifetimeSec: str(flags.lifetime) === undefined ? null : parseIntOption('--lifetime', str(flags.lifetime)!, 60, 366 * 86400),
      halt: str(flags.halt) ?? USER_DATA_DEFAULTS.halt,
      sshKeys: Array.isArray(flags.sshKey) ? flags.sshKey : [],
      packages: Array.isArray(flags.package) ? flags.package : [],
      ca: caFromFlags(flags),
    }),
  );
}
