/**
 * The real Halter, the last thing the agent does:
 * - `exit`: exit with the status derived from the shutdown code;
 * - `poweroff`: try `systemctl poweroff`, then `shutdown -h now`, then
 *   `poweroff`, stopping at the first that succeeds; then exit;
 * - a command: run it with `sh -c`; then exit.
 */
import { spawnSync } from 'node:child_process';
import { writeSync } from 'node:fs';
import type { Logger } from '../../shared/log.js';
import type { HaltAction, Halter } from '../ports.js';

/** The commands tried, in order, for `poweroff`. */
export const POWEROFF_COMMANDS: readonly string[][] = [
  ['systemctl', 'poweroff'],
  ['shutdown', '-h', 'now'],
  ['poweroff'],
];

/** The commands a halt action runs before the process exits (none for `exit`). Pure. */
export function haltCommands(action: HaltAction): readonly string[][] {
  if (action.kind === 'poweroff') return POWEROFF_COMMANDS;
  if (action.kind === 'command') return [['sh', '-c', action.command]];
  return [];
}

/** A Halter that runs the halt commands and then exits the process. */
export function processHalter(log: Logger): Halter {
  return {
    async halt(action: HaltAction, exitStatus: number, problem?: string): Promise<never> {
      // beside the JSON log lines on stderr, the one line a person reads (as every command's error is said)
      if (problem !== undefined) writeStderr(`vmpilot: error: ${problem}\n`);
      for (const [file, ...args] of haltCommands(action)) {
        const r = spawnSync(file!, args, { stdio: ['ignore', 'inherit', 'inherit'], timeout: 120_000 });
        const ok = !r.error && r.status === 0;
        log.info({ command: [file, ...args].join(' '), status: r.status, err: r.error?.message }, ok ? 'halt command done' : 'halt command failed');
        if (ok && action.kind === 'poweroff') break;
      }
      log.info({ exitStatus }, 'exit');
      log.flush?.();
      process.exit(exitStatus);
    },
  };
}

/** Write to stderr synchronously (the process exits next); a closed stderr is no reason to fail the halt. */
function writeStderr(text: string): void {
  try {
    writeSync(2, text);
  } catch {
    // nowhere to say it
  }
}

/** A Halter for tests: records the call and never returns (like the real one). */
export class FakeHalter implements Halter {
  call: { action: HaltAction; exitStatus: number; problem?: string } | null = null;
  private resolveCalled!: (c: { action: HaltAction; exitStatus: number; problem?: string }) => void;
  /** Settles when `halt` is called. */
  readonly called = new Promise<{ action: HaltAction; exitStatus: number; problem?: string }>((r) => (this.resolveCalled = r));

  halt(action: HaltAction, exitStatus: number, problem?: string): Promise<never> {
    this.call = { action, exitStatus, ...(problem === undefined ? {} : { problem }) };
    this.resolveCalled(this.call);
    return new Promise<never>(() => undefined);
  }
}
