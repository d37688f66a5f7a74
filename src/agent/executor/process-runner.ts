/**
 * The real ProcessRunner: node's child_process.spawn with `detached: true`,
 * so every payload leads its own process group and the whole group can be
 * signalled (`kill(-pid)`), children included.
 *
 *   start ──spawn──▶ running ──leader exits──▶ exited
 *     │                 │
 *     └─ error ─▶ VMP_SPAWN (never started)   signalGroup(sig) ─▶ kill(-pid, sig)
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { VmpilotError } from '../../shared/errors.js';
import type { PayloadProcess, ProcessExit, ProcessRunner, ProcessSpec } from '../ports.js';

/** Send `signal` to process group `pgid`; false when no process of it is left. */
export function signalProcessGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Spawns real processes, each in its own process group. */
export const childProcessRunner: ProcessRunner = {
  async start(spec: ProcessSpec): Promise<PayloadProcess> {
    const [file, ...args] = spec.command;
    if (!file) throw new VmpilotError('VMP_SPAWN', 'cannot start: empty command');
    const out = openSync(spec.stdoutPath, 'a');
    const err = openSync(spec.stderrPath, 'a');
    try {
      const child = spawn(file, args, {
        cwd: spec.cwd,
        env: spec.env,
        detached: true,
        stdio: ['ignore', out, err],
        ...(spec.uid === undefined ? {} : { uid: spec.uid }),
        ...(spec.gid === undefined ? {} : { gid: spec.gid }),
      });
      const exited = new Promise<ProcessExit>((resolve) => {
        child.once('exit', (exitCode, signal) => resolve({ exitCode, signal }));
      });
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', (e) =>
          reject(new VmpilotError('VMP_SPAWN', `cannot start: ${e.message}`, { cause: e, details: { command: spec.command } })),
        );
      });
      const pid = child.pid!;
      child.unref();
      return { pid, exited, signalGroup: (sig) => signalProcessGroup(pid, sig) };
    } finally {
      closeSync(out);
      closeSync(err);
    }
  },
};
