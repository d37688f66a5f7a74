/**
 * A small port for running a short command with a timeout (`squeue`,
 * `qstat`), with its real adapter on node's own `execFile`. Never throws.
 */
import { execFile, type ChildProcess } from 'node:child_process';

/** What a short command did: its exit code (null when it could not run or timed out) and stdout. */
export interface CommandResult {
  exitCode: number | null;
  stdout: string;
  /** Why it failed, when it did. */
  error?: string;
}

/** Runs `argv` for at most `timeoutMs`. */
export type CommandRunner = (argv: string[], timeoutMs: number) => Promise<CommandResult>;

/** More output than any squeue/qstat answer the agent reads; a command that prints more is stopped. */
const MAX_OUTPUT_BYTES = 4 * 1024 * 1024;

/**
 * The real runner: `execFile` (no shell) with a timeout after which the
 * command is SIGKILLed, stdin closed, PATH and the rest of the environment
 * only from `env` (nothing else of the agent's), stdout capped.
 */
export function execFileCommandRunner(env: Readonly<Record<string, string>>): CommandRunner {
  return (argv, timeoutMs) =>
    new Promise<CommandResult>((resolve) => {
      const [file, ...args] = argv;
      if (!file) return resolve({ exitCode: null, stdout: '', error: 'no command given' });
      let child: ChildProcess;
      try {
        child = execFile(
          file,
          args,
          { env: { ...env }, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: MAX_OUTPUT_BYTES, encoding: 'utf8', windowsHide: true },
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
