import { CommanderError, type Command } from 'commander';
import { VmpilotError, describeError, exitStatusForError } from '../shared/errors.js';

/**
 * Run a commander program and turn failures into one clear line on stderr
 * and a stable exit status: 2 usage or config, 3 the server said no or could
 * not be reached, 4 local environment, 5 a check that ran and
 * failed (endpoint test), 1 anything else. A stack trace is
 * printed only for internal errors, or with VMPILOT_DEBUG=1.
 */
export async function runMain(program: Command, argv: string[]): Promise<void> {
  const name = program.name();
  quietOnClosedStdout();
  // Subcommands copied commander's settings when they were created: set these on every one.
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const command of all(program)) {
    command.exitOverride();
    // commander's own errors ("error: unknown option '--x'") read like ours: "vmpilot-server: error: ..."
    command.configureOutput({ outputError: (text, write) => write(text.startsWith('error:') ? `${name}: ${text}` : text) });
  }
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has already printed help, the version, or its own error line
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    const status = exitStatusForError(err);
    const hint = err instanceof VmpilotError && typeof err.details.hint === 'string' ? `\n  ${err.details.hint}` : '';
    process.stderr.write(`${name}: error: ${describeError(err)}${hint}\n`);
    if (process.env.VMPILOT_DEBUG === '1' || !(err instanceof VmpilotError) || err.code === 'VMP_INTERNAL') {
      if (err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    }
    process.exitCode = status;
  }
}

/**
 * A reader that closed our stdout (`vmpilot-server --help | head -3`) ends
 * the output, not the program with a stack trace: the rest of what would
 * have been printed is dropped and the command finishes with its own status.
 * Any other stdout error is said in one line.
 */
function quietOnClosedStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') return;
    process.stderr.write(`cannot write to stdout: ${err.message}\n`);
    process.exitCode = 1;
  });
}

/** A usage error: what was wrong with which flag, and what to do instead. */
export function usageError(message: string, hint?: string): VmpilotError {
  return new VmpilotError('VMP_USAGE', message, hint ? { details: { hint } } : {});
}
