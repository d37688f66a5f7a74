/**
 * `vmpilot`, the agent's command line. It only wires: each subcommand's
 * action loads its module when it runs, so `vmpilot --version` stays fast.
 */
import { Command } from 'commander';
import { VERSION } from '../protocol/version.js';
import { registerAgentCommands } from './agent-commands.js';
import { registerRelayCommand } from './relay-commands.js';
import { runMain } from './run-main.js';

const program = new Command('vmpilot')
  .description("Pilot agent: takes payloads from a vmpilot server and runs them on this node's cores.")
  .version(VERSION, '-V, --version')
  .showHelpAfterError('(add --help for usage)');

program.addHelpText(
  'after',
  `
Examples:
  vmpilot run --server http://127.0.0.1:8080 --token-file ~/.vmpilot-token --cores 4 --halt exit
  vmpilot probe --json
  vmpilot relay --listen 0.0.0.0:8081 --server https://pilots.example.org --relay-token-file /etc/vmpilot/relay.token`,
);

registerAgentCommands(program);
registerRelayCommand(program);
void runMain(program, process.argv);
