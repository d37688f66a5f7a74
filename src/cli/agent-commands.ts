import type { Command } from 'commander';

/** Subcommands of `vmpilot`. Options are declared here; actions load lazily. */
export function registerAgentCommands(program: Command): void {
  void program;
}
