/**
 * `vmpilot-server`: the server (`serve`) and the admin commands that talk to
 * it over HTTP. It only wires: each subcommand's action loads its module when
 * it runs.
 */
import { Command } from 'commander';
import { VERSION } from '../protocol/version.js';
import { registerEndpointTestCommand } from './admin/endpoint-command.js';
import { registerDirectorCommands } from './director-commands.js';
import { registerRelayTokenCommand } from './relay-token-command.js';
import { registerServerCommands } from './server-commands.js';
import { runMain } from './run-main.js';

const program = new Command('vmpilot-server')
  .description('The vmpilot server: pilot registry, task queue and instructions; and its admin commands.')
  .version(VERSION, '-V, --version')
  .showHelpAfterError('(add --help for usage)');

program.addHelpText(
  'after',
  `
Examples:
  vmpilot-server serve --listen 127.0.0.1:8080 --db /var/lib/vmpilot/server.db
  vmpilot-server submit --cores 4 -- /usr/bin/my-analysis --events 1000
  vmpilot-server jobs --json`,
);

registerServerCommands(program);
registerDirectorCommands(program); // endpoints, endpoint, instances, instance, director (docs/director.md)
registerRelayTokenCommand(program);
registerEndpointTestCommand(program); // endpoint test NAME
void runMain(program, process.argv);
