/**
 * Run one payload: prepare its directory `<stateDir>/payloads/<id>/` (with
 * `tmp/`, `jobfeatures/`, `stdout`, `stderr`), build its environment, start
 * it through the ProcessRunner and, when it ends, collect its exit, usage
 * and output tail.
 *
 * The directory is the payload's own: with a payload user (the agent is
 * root) it is the agent's, group of the payload user, mode 01770 (the
 * payload may create files in it, and no one else may enter it), and the
 * files the agent writes there stay the agent's (the sticky bit keeps the
 * payload from replacing them with links); `tmp/` is the payload user's.
 * Otherwise it is mode 0700, and a sandbox keeps those files read-only.
 *
 *   prepare ──▶ start ──┬─▶ running ──exit──▶ ended {exitCode, signal, overMemory, cpuSec, peakRssMb, outputTail}
 *                       └─▶ cannot start ───▶ ended {exitCode 127, message "cannot start: …"}
 */
import { chmod, chown, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Assignment } from '../../protocol/index.js';
import { describeError, isVmpilotError } from '../../shared/errors.js';
import { writeFeatures } from '../mjf/provide.js';
import type { PayloadProcess, ProcessExit, ProcessRunner, ProcessSpec } from '../ports.js';
import { AGENT_FILES, ENV_FILE, envFileText, outerEnv, sandboxCommand, type SandboxSpec } from '../isolation/sandbox.js';
import { TAIL_BYTES, TAIL_LINES, combineTails, readTail } from './output-tail.js';

/** Exit code reported for a payload whose command could not be started (as a shell does). */
export const CANNOT_START_EXIT = 127;

/** How a payload ended, as the `payload-ended` report carries it. */
export interface PayloadResult {
  exitCode: number | null;
  signal: string | null;
  outputTail: string;
  message?: string;
  overMemory?: boolean;
  cpuSec?: number;
  peakRssMb?: number;
}

/** What the agent gives every payload beyond its assignment. */
export interface PayloadContext {
  /** Its job features (`$JOBFEATURES`), one file per key. */
  jobFeatures: Readonly<Record<string, number | string>>;
  /** The node's `$MACHINEFEATURES` directory, when the agent provides one. */
  machineFeaturesDir: string | null;
  /** Run as this user (the agent runs as root); null: as the agent. `dedicated`: no other payload runs as it now. */
  user: { uid: number; gid: number; name?: string; dedicated?: boolean } | null;
  /** Cap on stdout and stderr, bytes. */
  maxOutputBytes: number;
  /** Start in this sandbox (the agent is not root): the tool and the mounts, less the payload's own directory. */
  sandbox?: { tool: 'bwrap' | 'unshare'; mounts: Omit<SandboxSpec, 'payloadDir' | 'protect'> } | null;
  /** Hold its processes in a cgroup they cannot leave. */
  contain?: boolean;
  /** Called once when the payload's processes are gone, or when it never started (frees its slot). */
  release?: () => void;
  /** Variables the agent sets for this payload over its own env (its GPUs: CUDA_VISIBLE_DEVICES, ...). */
  env?: Readonly<Record<string, string>>;
}

/** The directory of payload `id` under the state dir. */
export function payloadDir(stateDir: string, id: number): string {
  return path.join(stateDir, 'payloads', String(id));
}

/**
 * The environment of a payload. Pure. The agent's base env first, then the
 * agent's per-payload values, then the assignment's env; VMPILOT_PAYLOAD_ID,
 * VMPILOT_CORES, the Machine/Job Features directories and `agentEnv` (the
 * payload's GPUs) always come from the agent.
 */
export function payloadEnv(
  base: Readonly<Record<string, string>>,
  assignment: Assignment,
  cores: number,
  dir: string,
  machineFeaturesDir: string | null = null,
  agentEnv: Readonly<Record<string, string>> = {},
): Record<string, string> {
  const env: Record<string, string> = {
    ...base,
    OMP_NUM_THREADS: String(cores),
    TMPDIR: path.join(dir, 'tmp'),
    ...assignment.env,
    VMPILOT_PAYLOAD_ID: String(assignment.id),
    VMPILOT_CORES: String(cores),
    VMPILOT_PAYLOAD_DIR: dir,
    JOBFEATURES: path.join(dir, 'jobfeatures'),
    ...agentEnv,
  };
  if (machineFeaturesDir) env.MACHINEFEATURES = machineFeaturesDir;
  else delete env.MACHINEFEATURES;
  return env;
}

/** Create the payload's directory (the payload's, see above) and return what to start. */
export async function preparePayload(
  stateDir: string,
  baseEnv: Readonly<Record<string, string>>,
  assignment: Assignment,
  cores: number,
  ctx: PayloadContext | null = null,
): Promise<ProcessSpec> {
  const dir = payloadDir(stateDir, assignment.id);
  const files = { stdoutPath: path.join(dir, 'stdout'), stderrPath: path.join(dir, 'stderr') };
  const user = ctx?.user ?? null;
  await mkdir(path.join(dir, 'tmp'), { recursive: true });
  await chmod(dir, user ? 0o1770 : 0o700);
  await writeFeatures(path.join(dir, 'jobfeatures'), ctx?.jobFeatures ?? { allocated_cpu: cores, job_id: String(assignment.id) });
  const written = [files.stdoutPath, files.stderrPath, `${files.stdoutPath}.cut`, `${files.stderrPath}.cut`];
  await Promise.all(written.map((f) => writeFile(f, '', { flag: 'a' })));
  // the agent's per-payload values (its GPUs) are in env before it is written for a sandbox or handed to a slot account
  let env = payloadEnv(baseEnv, assignment, cores, dir, ctx?.machineFeaturesDir ?? null, ctx?.env);
  if (user) {
    // the agent's files stay the agent's (sticky dir); the pump, running as the payload user, writes them by group
    await chown(dir, process.getuid?.() ?? 0, user.gid);
    for (const f of written) {
      await chown(f, process.getuid?.() ?? 0, user.gid);
      await chmod(f, 0o660);
    }
    await chown(path.join(dir, 'tmp'), user.uid, user.gid);
    await chmod(path.join(dir, 'tmp'), 0o700);
    env = { ...env, HOME: dir, ...(user.name ? { USER: user.name, LOGNAME: user.name } : {}) };
  }
  let sandbox: ProcessSpec['sandbox'];
  if (ctx?.sandbox) {
    const envFile = path.join(dir, ENV_FILE);
    await writeFile(envFile, envFileText(env), { mode: 0o600 });
    const mounts: SandboxSpec = { ...ctx.sandbox.mounts, payloadDir: dir, protect: AGENT_FILES };
    sandbox = { prefix: sandboxCommand(ctx.sandbox.tool, mounts, []), envFile, outerEnv: outerEnv(env) };
  }
  return {
    command: assignment.command,
    cwd: dir,
    env,
    ...files,
    ...(user ? { uid: user.uid, gid: user.gid, ...(user.dedicated ? { sweepUid: true } : {}) } : {}),
    memoryLimitMb: assignment.memoryMb,
    ...(ctx ? { maxOutputBytes: ctx.maxOutputBytes } : {}),
    ...(ctx?.contain ? { contain: true } : {}),
    ...(sandbox ? { sandbox } : {}),
  };
}

/** The line the output pump writes where it dropped output (output-pump.ts). */
const DROP_LINE = /\[vmpilot: \d+ bytes of output dropped: ([^\]]+)\]/;

/** The result of a payload once its process has exited. */
export async function collectResult(spec: ProcessSpec, exit: ProcessExit, message?: string): Promise<PayloadResult> {
  const [out, err] = await Promise.all([readTail(spec.stdoutPath), readTail(spec.stderrPath)]);
  // a full disk: the report says so, in its message and at the end of the output tail (an adopted
  // payload's pump is not our child: the drop line it wrote into the file tells, when it could write one)
  const dropped = DROP_LINE.exec(`${out}\n${err}`)?.[1];
  const note = exit.outputTruncated ?? (dropped ? `output truncated: ${dropped}` : undefined);
  const text = [message, note].filter(Boolean).join('; ');
  const tail = combineTails(out, err);
  return {
    exitCode: exit.exitCode,
    signal: exit.signal,
    outputTail: note ? combineTails(out, err, TAIL_LINES, TAIL_BYTES - 80) + `\n[vmpilot: ${note}]` : tail,
    ...(text ? { message: text } : {}),
    ...(exit.overMemory ? { overMemory: true } : {}),
    ...(exit.cpuSec === undefined ? {} : { cpuSec: exit.cpuSec }),
    ...(exit.peakRssMb === undefined ? {} : { peakRssMb: exit.peakRssMb }),
  };
}

/**
 * What a payload that could not start is reported with: a VMP_SPAWN error
 * says it already ("cannot start: …", as every thrower of that code words
 * it); any other failure (its directory, its account) gets the prefix.
 */
export function cannotStartMessage(err: unknown): string {
  const text = describeError(err);
  return isVmpilotError(err, 'VMP_SPAWN') ? text : `cannot start: ${text}`;
}

/** A payload that started, or the result of one that could not. */
export type StartOutcome =
  | { started: true; spec: ProcessSpec; process: PayloadProcess }
  | { started: false; result: PayloadResult };

/** Prepare and start a payload; a failure to start becomes a result, never a throw. */
export async function startPayload(
  runner: ProcessRunner,
  stateDir: string,
  baseEnv: Readonly<Record<string, string>>,
  assignment: Assignment,
  cores: number,
  ctx: PayloadContext | null = null,
): Promise<StartOutcome> {
  let spec: ProcessSpec | null = null;
  try {
    spec = await preparePayload(stateDir, baseEnv, assignment, cores, ctx);
    const process = await runner.start(spec);
    return { started: true, spec, process };
  } catch (err) {
    ctx?.release?.();
    const message = cannotStartMessage(err);
    const tail = spec ? (await collectResult(spec, { exitCode: null, signal: null })).outputTail : '';
    return { started: false, result: { exitCode: CANNOT_START_EXIT, signal: null, outputTail: tail, message } };
  }
}
