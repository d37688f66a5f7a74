import type { Command } from 'commander';

/** Subcommands of `vmpilot-server`. Options are declared here; actions load lazily. */
export function registerServerCommands(program: Command): void {
  void program;
}
