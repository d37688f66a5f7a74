/**
 * The real CommandRunner (ports.ts): a short command with a timeout
 * (`squeue`, `qstat`, `nvidia-smi`, `useradd`) on node's own `execFile`, its
 * stdout kept; or, with `tail`, a longer one (a bootstrap setup command) in
 * its own process group with only the tail of its output kept. Never throws.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import type { CommandOptions, CommandResult, CommandRunner } from '../ports.js';

/** More output than any squeue/qstat answer the agent reads; a command that prints more is stopped. */
const MAX_OUTPUT_BYTES = 4 * 1024 * 1024;

/**
 * The real runner: `execFile` (no shell) with a timeout after which the
 * command is SIGKILLed, stdin closed, PATH and the rest of the environment
 * only from `env` (nothing else of the agent's), stdout capped.
 */
export function systemCommandRunner(env: Readonly<Record<string, string>>): CommandRunner {
  return (argv, timeoutMs, o = {}) => (o.tail ? runForTail(argv, timeoutMs, o, env) : runCaptured(argv, timeoutMs, o, env));
}

/** How much of a `tail` command's output is kept (its last characters). */
const TAIL_CHARS = 2000;

/** A short command: its stdout, capped; stderr's start in `error`. */
function runCaptured(argv: readonly string[], timeoutMs: number, o: CommandOptions, env: Readonly<Record<string, string>>): Promise<CommandResult> {
  return new Promise<CommandResult>((resolve) => {
    const [file, ...args] = argv;
    if (!file) return resolve({ exitCode: null, stdout: '', error: 'no command given' });
    let child: ChildProcess;
    try {
      child = execFile(
        file,
        args,
        { env: { ...(o.env ?? env) }, ...(o.cwd ? { cwd: o.cwd } : {}), timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: MAX_OUTPUT_BYTES, encoding: 'utf8', windowsHide: true },
        (err, stdout, stderr) => {
          if (!err) return resolve({ exitCode: 0, stdout });
          const e = err as Error & { code?: unknown; killed?: boolean; signal?: NodeJS.Signals | null };
          if (e.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') return resolve({ exitCode: null, stdout: '', error: `${file} printed more than ${MAX_OUTPUT_BYTES} bytes; stopped` });
          if (e.killed) return resolve({ exitCode: null, stdout: '', error: `timed out after ${timeoutMs} ms` });
          if (typeof e.code === 'number') return resolve({ exitCode: e.code, stdout, error: `exit ${e.code}: ${stderr.slice(0, 200)}` });
          if (e.signal) return resolve({ exitCode: null, stdout: '', error: `${file} was killed by ${e.signal}` });
          // it could not start (ENOENT, EACCES, ...): node's message names the command and the reason
          resolve({ exitCode: null, stdout: '', error: e.message });
        },
      );
    } catch (err) {
      return resolve({ exitCode: null, stdout: '', error: (err as Error).message });
    }
    // stdin ignored: nothing to read, and a command that waits for input gets EOF at once
    child.stdin?.end();
  });
}

/**
 * `sh -c …` and the like: in its own process group, killed (the whole group)
 * at the time limit; the last TAIL_CHARS of stdout and stderr as they came.
 */
function runForTail(argv: readonly string[], timeoutMs: number, o: CommandOptions, env: Readonly<Record<string, string>>): Promise<CommandResult> {
  return new Promise<CommandResult>((resolve) => {
    const [file, ...args] = argv;
    if (!file) return resolve({ exitCode: null, stdout: '', error: 'no command given' });
    let child: ChildProcess & { stdout: NonNullable<ChildProcess['stdout']>; stderr: NonNullable<ChildProcess['stderr']> };
    try {
      // spawn's own timeout kills the command at the limit; then its whole group goes too
      child = spawn(file, args, { cwd: o.cwd, env: { ...(o.env ?? env) }, stdio: ['ignore', 'pipe', 'pipe'], detached: true, timeout: timeoutMs, killSignal: 'SIGKILL' });
    } catch (err) {
      return resolve({ exitCode: null, stdout: '', error: (err as Error).message });
    }
    let output = '';
    const keep = (d: Buffer) => (output = (output + d.toString()).slice(-TAIL_CHARS));
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
    // it could not start (ENOENT, EACCES, ...): node's message names the command and the reason
    child.on('error', (err) => resolve({ exitCode: null, stdout: '', error: err.message }));
    child.on('close', (status, signal) => resolve({ exitCode: status, stdout: '', output, ...(status === 0 ? {} : { error: status === null ? `killed by ${signal ?? 'a signal'}` : `exit ${status}` }) }));
  });
}
