/**
 * After a restart: find the payloads the previous run left running. For each
 * record in `state.running` the wrapper's files and /proc say whether the
 * payload is still alive (re-attach: watch its pid until it is gone), ended
 * while the agent was down (report its exit status), never started (no
 * wrapper ran: give it back to the queue), or started and is gone without an
 * exit status (report it lost). `planReattach` is the pure decision.
 *
 * "Never started" is only said when nothing of the wrapper is left: its pid
 * file is written before it starts the payload, and a wrapper spawned just
 * before the agent died that has not written it yet is found by its name in
 * /proc (`findWrapper`) and re-attached to instead.
 */
import { constants } from 'node:fs';
import { open, readFile, readlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Clock } from '../../shared/clock.js';
import { NO_FOLLOW } from '../executor/output-tail.js';
import { signalProcessGroup } from '../executor/process-runner.js';
import { listPids, readEnvironValue, readStat, signalPids } from '../executor/proc.js';
import type { PayloadProcess, ProcessExit } from '../ports.js';
import { wrapperName } from '../payload/wrapped-runner.js';

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
  /** No wrapper ever ran: the payload was never started, and goes back to the queue. */
  | { kind: 'not-started'; message: string }
  /** The wrapper ran and is gone without an exit status: the payload may have run. */
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
  if (t.pid === null) return { kind: 'not-started', message: 'not started: the agent restarted before starting it' };
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

/**
 * The pid of a live process named as payload `id`'s wrapper (or its gate,
 * which carries the wrapper's command line) working in `dir`, or null. A
 * process whose working directory cannot be read counts: "no wrapper" must
 * be certain before a payload is given back.
 */
export async function findWrapper(id: string, dir: string, procRoot = '/proc'): Promise<number | null> {
  for (const pid of listPids(procRoot)) {
    const cmdline = await readFile(`${procRoot}/${pid}/cmdline`, 'utf8').catch(() => null);
    if (cmdline === null || !cmdline.split('\0').includes(wrapperName(id))) continue;
    const stat = await readFile(`${procRoot}/${pid}/stat`, 'utf8').catch(() => '');
    if (/\) Z /.test(stat)) continue;
    const cwd = await readlink(`${procRoot}/${pid}/cwd`).catch(() => null);
    if (cwd === null || path.resolve(cwd) === path.resolve(dir)) return pid;
  }
  return null;
}

/**
 * Read the traces of payload `id` in `dir` (state pid as a fallback; with
 * neither, a wrapper that has not yet written its pid file, found in /proc).
 */
export async function readTraces(id: string, dir: string, statePid: number, procRoot = '/proc'): Promise<PayloadTraces> {
  const pid = (await readInt(path.join(dir, 'pid'))) ?? (statePid > 0 ? statePid : null) ?? (await findWrapper(id, dir, procRoot));
  const alive = pid !== null && (await isWrapperAlive(pid, id));
  return { pid, alive, exitStatus: await readInt(path.join(dir, 'exit_status')) };
}

/**
 * Kill what is left of the payload that ran in `dir` after its wrapper is
 * gone (processes carrying its `VMPILOT_PAYLOAD_DIR`, reparented when the
 * wrapper died), and wait until they have ended (gone or zombies), so that
 * none can still run when it is queued again. Returns how many it killed.
 */
export async function killLeftovers(dir: string, clock: Clock, procRoot = '/proc', tries = 40): Promise<number> {
  const killed = new Set<number>();
  for (let i = 0; i < tries; i++) {
    const left = listPids(procRoot).filter((pid) => pid !== process.pid && readEnvironValue(procRoot, pid, 'VMPILOT_PAYLOAD_DIR') === dir);
    for (const pid of left) killed.add(pid);
    signalPids(left, 'SIGKILL');
    // a process being torn down no longer shows its environment: it counts as ended once it is a zombie or gone
    const dying = [...killed].filter((pid) => !hasEnded(procRoot, pid));
    if (left.length === 0 && dying.length === 0) break;
    await clock.sleep(25);
  }
  return killed.size;
}

/** True when `pid` is gone or a zombie. */
function hasEnded(procRoot: string, pid: number): boolean {
  const info = readStat(procRoot, pid);
  return info === null || info.state === 'Z' || info.state === 'X';
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
