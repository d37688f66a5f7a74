/**
 * A small port for running a short command with a timeout (`squeue`,
 * `qstat`), with its real adapter on execa. Never throws.
 */

/** What a short command did: its exit code (null when it could not run or timed out) and stdout. */
export interface CommandResult {
  exitCode: number | null;
  stdout: string;
  /** Why it failed, when it did. */
  error?: string;
}

/** Runs `argv` for at most `timeoutMs`. */
export type CommandRunner = (argv: string[], timeoutMs: number) => Promise<CommandResult>;

/** The real runner: execa with a timeout, PATH from `env`, nothing else of the agent's environment. */
export function execaCommandRunner(env: Readonly<Record<string, string>>): CommandRunner {
  return async (argv, timeoutMs) => {
    const [file, ...args] = argv;
    try {
      // loaded on first use: only batch jobs run squeue or qstat
      const { execa } = await import('execa');
      const r = await execa(file!, args, { env: { ...env }, extendEnv: false, timeout: timeoutMs, reject: false, stdin: 'ignore' });
      if (r.timedOut) return { exitCode: null, stdout: '', error: `timed out after ${timeoutMs} ms` };
      if (r.failed && r.exitCode === undefined) return { exitCode: null, stdout: '', error: r.shortMessage };
      return { exitCode: r.exitCode ?? null, stdout: String(r.stdout), ...(r.exitCode === 0 ? {} : { error: `exit ${r.exitCode}: ${String(r.stderr).slice(0, 200)}` }) };
    } catch (err) {
      return { exitCode: null, stdout: '', error: (err as Error).message };
    }
  };
}
