/**
 * Run one payload: prepare its directory `<stateDir>/payloads/<id>/` (with
 * `tmp/`, `stdout`, `stderr`), build its environment, start it through the
 * ProcessRunner and, when it ends, collect its exit and output tail.
 *
 *   prepare ──▶ start ──┬─▶ running ──exit──▶ ended {exitCode, signal, outputTail}
 *                       └─▶ cannot start ───▶ ended {exitCode 127, message "cannot start: …"}
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Assignment } from '../../protocol/index.js';
import { describeError } from '../../shared/errors.js';
import type { PayloadProcess, ProcessExit, ProcessRunner, ProcessSpec } from '../ports.js';
import { combineTails, readTail } from './output-tail.js';

/** Exit code reported for a payload whose command could not be started (as a shell does). */
export const CANNOT_START_EXIT = 127;

/** How a payload ended, as the `payload-ended` report carries it. */
export interface PayloadResult {
  exitCode: number | null;
  signal: string | null;
  outputTail: string;
  message?: string;
}

/** The directory of payload `id` under the state dir. */
export function payloadDir(stateDir: string, id: number): string {
  return path.join(stateDir, 'payloads', String(id));
}

/**
 * The environment of a payload. Pure. The agent's base env first, then the
 * agent's per-payload values, then the assignment's env; VMPILOT_PAYLOAD_ID
 * and VMPILOT_CORES always come from the agent.
 */
export function payloadEnv(
  base: Readonly<Record<string, string>>,
  assignment: Assignment,
  cores: number,
  dir: string,
): Record<string, string> {
  return {
    ...base,
    OMP_NUM_THREADS: String(cores),
    TMPDIR: path.join(dir, 'tmp'),
    ...assignment.env,
    VMPILOT_PAYLOAD_ID: String(assignment.id),
    VMPILOT_CORES: String(cores),
    VMPILOT_PAYLOAD_DIR: dir,
  };
}

/** Create the payload's directory and return what to start. */
export async function preparePayload(
  stateDir: string,
  baseEnv: Readonly<Record<string, string>>,
  assignment: Assignment,
  cores: number,
): Promise<ProcessSpec> {
  const dir = payloadDir(stateDir, assignment.id);
  await mkdir(path.join(dir, 'tmp'), { recursive: true });
  return {
    command: assignment.command,
    cwd: dir,
    env: payloadEnv(baseEnv, assignment, cores, dir),
    stdoutPath: path.join(dir, 'stdout'),
    stderrPath: path.join(dir, 'stderr'),
  };
}

/** The result of a payload once its process has exited. */
export async function collectResult(spec: ProcessSpec, exit: ProcessExit, message?: string): Promise<PayloadResult> {
  const [out, err] = await Promise.all([readTail(spec.stdoutPath), readTail(spec.stderrPath)]);
  return { exitCode: exit.exitCode, signal: exit.signal, outputTail: combineTails(out, err), ...(message ? { message } : {}) };
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
): Promise<StartOutcome> {
  let spec: ProcessSpec | null = null;
  try {
    spec = await preparePayload(stateDir, baseEnv, assignment, cores);
    const process = await runner.start(spec);
    return { started: true, spec, process };
  } catch (err) {
    const text = describeError(err);
    const message = text.startsWith('cannot start') ? text : `cannot start: ${text}`;
    const tail = spec ? (await collectResult(spec, { exitCode: null, signal: null })).outputTail : '';
    return { started: false, result: { exitCode: CANNOT_START_EXIT, signal: null, outputTail: tail, message } };
  }
}
