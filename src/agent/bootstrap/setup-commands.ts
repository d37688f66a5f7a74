/**
 * The setup-commands step: run the spec's shell commands in order, in the
 * software directory, with the payload environment, each within a time limit.
 * A command that exits non-zero stops the bootstrap, quoting its last output.
 * Commands must be idempotent: a restarted agent runs them again.
 */
import { spawn } from 'node:child_process';

/** Runs one shell command; resolves with its exit status (null if killed) and last output. */
export type CommandRunner = (command: string, o: { cwd: string; env: Record<string, string>; timeoutMs: number }) => Promise<{ status: number | null; output: string }>;

/** The real runner: `sh -c` in its own process group, killed at the time limit. */
export const shellRunner: CommandRunner = (command, o) =>
  new Promise((resolve, reject) => {
    // spawn's own timeout kills the shell at the limit; then its whole group goes too
    const child = spawn('sh', ['-c', command], { cwd: o.cwd, env: o.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true, timeout: o.timeoutMs, killSignal: 'SIGKILL' });
    let output = '';
    const keep = (d: Buffer) => (output = (output + d.toString()).slice(-2000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('exit', (_code, signal) => {
      if (signal !== 'SIGKILL') return;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // the group is already gone
      }
    });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, output }));
  });

/** Run `commands` in order; throws naming the first that failed. */
export async function runSetupCommands(
  commands: readonly string[],
  o: { cwd: string; env: Record<string, string>; timeoutSec: number },
  run: CommandRunner,
): Promise<{ ran: number }> {
  for (const command of commands) {
    const r = await run(command, { cwd: o.cwd, env: o.env, timeoutMs: o.timeoutSec * 1000 });
    if (r.status !== 0) {
      const tail = r.output.trim().split('\n').slice(-3).join(' | ');
      const how = r.status === null ? `was killed (time limit ${o.timeoutSec} s)` : `exited with ${r.status}`;
      throw new Error(`setup command "${command}" ${how}${tail ? `: ${tail}` : ''}`);
    }
  }
  return { ran: commands.length };
}
