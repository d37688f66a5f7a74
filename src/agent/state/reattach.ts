/**
 * After a restart: find the payloads the previous run left running. For each
 * record in `state.running` the wrapper's files and /proc say whether the
 * payload is still alive (re-attach: watch its pid until it is gone), ended
 * while the agent was down (report its exit status), or cannot be accounted
 * for (report it lost). `planReattach` is the pure decision.
 */
import { constants } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Clock } from '../../shared/clock.js';
import { NO_FOLLOW } from '../executor/output-tail.js';
import { signalProcessGroup } from '../executor/process-runner.js';
import type { PayloadProcess, ProcessExit } from '../ports.js';
import { wrapperName } from './wrapped-runner.js';

/** What the previous run's files say about one payload. */
export interface PayloadTraces {
  /** The wrapper's pid (its pid file, else the state's), or null. */
  pid: number | null;
  /** The wrapper with that pid is still running. */
  alive: boolean;
  /** The payload's exit status from `exit_status`, or null. */
  exitStatus: number | null;
}

/** What to do with one payload found after a restart. */
export type ReattachPlan =
  | { kind: 'adopt'; pid: number }
  | { kind: 'ended'; exitCode: number | null; signal: string | null; message: string }
  | { kind: 'lost'; message: string };

/** The signal name of a shell status 129..192 (128 + signal number), or null. Pure. */
export function signalOfStatus(status: number): string | null {
  if (status <= 128 || status > 192) return null;
  const n = status - 128;
  const entry = Object.entries(os.constants.signals).find(([, v]) => v === n);
  return entry ? entry[0] : null;
}

/** Decide about one payload from its traces. Pure. */
export function planReattach(t: PayloadTraces): ReattachPlan {
  if (t.pid !== null && t.alive) return { kind: 'adopt', pid: t.pid };
  if (t.exitStatus !== null) {
    const signal = signalOfStatus(t.exitStatus);
    return { kind: 'ended', exitCode: signal ? null : t.exitStatus, signal, message: 'ended while the agent was restarting' };
  }
  if (t.pid === null) return { kind: 'lost', message: 'lost: the agent stopped before the payload started' };
  return { kind: 'lost', message: 'lost: the payload ended while the agent was down and left no exit status' };
}

/** A number alone in `file`, read without following a link (a payload may have put one there). */
const readInt = async (file: string): Promise<number | null> => {
  const handle = await open(file, constants.O_RDONLY | NO_FOLLOW).catch(() => null);
  const text = handle ? await handle.readFile('utf8').catch(() => '').finally(() => handle.close()) : '';
  return /^\d+\s*$/.test(text) ? Number(text.trim()) : null;
};

/** True when `pid` is the wrapper of payload `id` (not a reused pid). */
export async function isWrapperAlive(pid: number, id: string): Promise<boolean> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => null);
  if (cmdline === null) return false;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  if (/\) Z /.test(stat)) return false; // a zombie has ended
  return cmdline.split('\0').includes(wrapperName(id));
}

/** Read the traces of payload `id` in `dir` (state pid as a fallback). */
export async function readTraces(id: string, dir: string, statePid: number): Promise<PayloadTraces> {
  const pid = (await readInt(path.join(dir, 'pid'))) ?? (statePid > 0 ? statePid : null);
  const alive = pid !== null && (await isWrapperAlive(pid, id));
  return { pid, alive, exitStatus: await readInt(path.join(dir, 'exit_status')) };
}

/** A PayloadProcess for a wrapper that is not our child: polled every `pollMs` until it is gone. */
export function adoptedProcess(pid: number, id: string, dir: string, clock: Clock, pollMs = 500): PayloadProcess {
  const exited = (async (): Promise<ProcessExit> => {
    while (await isWrapperAlive(pid, id)) await clock.sleep(pollMs);
    const status = await readInt(path.join(dir, 'exit_status'));
    if (status === null) return { exitCode: null, signal: null };
    const signal = signalOfStatus(status);
    return { exitCode: signal ? null : status, signal };
  })();
  return { pid, exited, signalGroup: (sig) => signalProcessGroup(pid, sig) };
}
