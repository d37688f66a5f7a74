/**
 * The setup-commands step: run the spec's shell commands in order, in the
 * software directory, with the payload environment, each within a time limit.
 * A command that exits non-zero stops the bootstrap, quoting its last output.
 * Commands must be idempotent: a restarted agent runs them again. They run
 * through the one CommandRunner (ports.ts; `tail`: own process group, the
 * whole group killed at the limit, the last of the output kept).
 */
import type { CommandRunner } from '../ports.js';

/** Run `commands` in order; throws naming the first that failed. */
export async function runSetupCommands(
  commands: readonly string[],
  o: { cwd: string; env: Record<string, string>; timeoutSec: number },
  run: CommandRunner,
): Promise<{ ran: number }> {
  for (const command of commands) {
    const r = await run(['sh', '-c', command], o.timeoutSec * 1000, { cwd: o.cwd, env: o.env, tail: true });
    // it could not start (no sh): the runner's reason, as it is
    if (r.output === undefined) throw new Error(r.error ?? `setup command "${command}" could not start`);
    if (r.exitCode !== 0) {
      const tail = r.output.trim().split('\n').slice(-3).join(' | ');
      const how = r.exitCode === null ? `was killed (time limit ${o.timeoutSec} s)` : `exited with ${r.exitCode}`;
      throw new Error(`setup command "${command}" ${how}${tail ? `: ${tail}` : ''}`);
    }
  }
  return { ran: commands.length };
}
