/**
 * The director's admin commands (docs/director.md): `endpoints`, `endpoint
 * disable|enable NAME`, `instances` (and `instances start|stop`), `instance
 * ID`, `director status`. Options are declared here; actions load lazily.
 * `endpoint` is a command of subcommands, so more (e.g. `endpoint test`)
 * slot in beside disable and enable, whichever registers first making it.
 */
import type { Command } from 'commander';
import { withClientOptions } from './server-commands.js';

/** The `endpoint` command of `program`, made when it is not there yet (whichever registers first makes it). */
function endpointCommand(program: Command): Command {
  return program.commands.find((c) => c.name() === 'endpoint') ?? program.command('endpoint').description("Act on one of the director's endpoints (serve --config endpoints:).");
}

/** Register the director's commands on `program`. */
export function registerDirectorCommands(program: Command): void {
  withClientOptions(program.command('endpoints'))
    .description("List the director's endpoints: driver, enabled, shapes, live instances by state and cores, limits, groups with quotas, offerings backed off.")
    .option('--json', 'print a JSON array of endpoints')
    .addHelpText(
      'after',
      `
ENABLED is "no (endpoint disable)" while an operator has it disabled, "no
(config: enabled: false)" when the config file says so. Under the table,
each offering (endpoint/shape) the failure memory backs off: until when,
and why (driver errors, boot or registration timeouts, fizzles).

Example:
  vmpilot-server endpoints --json`,
    )
    .action(async (o) => {
      const { endpoints } = await import('./admin/director.js');
      await endpoints(o);
    });

  const endpoint = endpointCommand(program);
  endpoint.addHelpText('after', '\nExamples:\n  vmpilot-server endpoint disable hpc\n  vmpilot-server endpoint enable hpc');
  withClientOptions(endpoint.command('disable'))
    .description('Start nothing more on an endpoint (kept across restarts); its live instances run on and are discarded as usual.')
    .argument('<name>', 'endpoint name')
    .option('--json', 'print the reply as JSON')
    .addHelpText('after', '\nExample:\n  vmpilot-server endpoint disable hpc')
    .action(async (name: string, o) => {
      const { endpointSwitch } = await import('./admin/director.js');
      await endpointSwitch(name, true, o);
    });
  withClientOptions(endpoint.command('enable'))
    .description('Start from an endpoint again after endpoint disable.')
    .argument('<name>', 'endpoint name')
    .option('--json', 'print the reply as JSON')
    .addHelpText('after', '\nExample:\n  vmpilot-server endpoint enable hpc')
    .action(async (name: string, o) => {
      const { endpointSwitch } = await import('./admin/director.js');
      await endpointSwitch(name, false, o);
    });

  const instances = withClientOptions(program.command('instances'))
    .description('List the machines the director started (every one, oldest first; --limit N: the newest N); start or stop some by hand.')
    .option('--state <states>', 'only these states, comma-separated: requested, starting, booting, registered, halted, failed, deleted')
    .option('--endpoint <name>', 'only this endpoint')
    .option('--limit <n>', 'only the newest N')
    .option('--json', 'print a JSON array of instances')
    .addHelpText(
      'after',
      `
FOR is the group whose queued work it was started for ("by hand": instances
start). COST is its price per hour times the hours from its start to its
deletion (or now). "instance ID" shows one with its history.

Examples:
  vmpilot-server instances --state registered,booting --endpoint hpc
  vmpilot-server instances start --endpoint hpc --count 2
  vmpilot-server instances stop 12 13`,
    )
    .action(async (o) => {
      const { instances: list } = await import('./admin/director.js');
      await list(o);
    });
  withClientOptions(instances.command('start'))
    .description('Start instances on an endpoint whatever the demand (to pre-warm, or to try a site); discarded by the same rules when idle.')
    .option('--endpoint <name>', 'the endpoint (required)')
    .option('--shape <name>', "the shape (default: the endpoint's first)")
    .option('--count <n>', 'how many (default 1)')
    .option('--json', 'print the instances recorded as JSON')
    .addHelpText('after', '\nRefused, with the reason and nothing started, past the endpoint\'s limits or while it is disabled.\n\nExample:\n  vmpilot-server instances start --endpoint laptop --shape small --count 2')
    .action(async (o) => {
      const { instancesStart } = await import('./admin/director.js');
      await instancesStart(o);
    });
  withClientOptions(instances.command('stop'))
    .description('Drain, then discard instances: a registered one drains its pilot and is deleted when it halts; one still coming is discarded at once.')
    .argument('<ids...>', 'instance ids')
    .option('--json', 'print the results as JSON')
    .addHelpText(
      'after',
      `
A pilot that has not halted the endpoint's drainGraceSec after the drain is
terminated with its machine. Halted, failed and deleted instances are
reported as already ended; an id that names no instance makes the command
fail (exit 3) after the others are handled.

Example:
  vmpilot-server instances stop 12 13`,
    )
    .action(async (ids: string[], o) => {
      const { instancesStop } = await import('./admin/director.js');
      await instancesStop(ids, o);
    });

  withClientOptions(program.command('instance'))
    .description('Show one instance: state, driver id, pilot, cost so far, and its history.')
    .argument('<id>', 'instance id')
    .option('--json', 'print it as JSON')
    .addHelpText('after', '\nExample:\n  vmpilot-server instance 12')
    .action(async (id: string, o) => {
      const { instance } = await import('./admin/director.js');
      await instance(id, o);
    });

  const director = program.command('director').description("The director's state.");
  director.addHelpText('after', '\nExample:\n  vmpilot-server director status');
  withClientOptions(director.command('status'))
    .description('The last cycle: per endpoint the demand it saw, the supply it counted, what it started and why not more (reason and detail); per start the offer chosen, its price per core-hour and where it came from, and the offers that lost; its actions and their errors.')
    .option('--json', 'print the status as JSON (the last cycle record whole)')
    .addHelpText(
      'after',
      `
Reasons (docs/director.md): disabled, no-demand, no-fitting-shape, backoff,
price, limit, quota, cheaper-elsewhere. A start's price comes from
configured (costPerHour), price-file or driver (ec2: the spot price
history or onDemandPrices); an offer that lost is dearer or held back.

Example:
  vmpilot-server director status --json`,
    )
    .action(async (o) => {
      const { directorStatus } = await import('./admin/director.js');
      await directorStatus(o);
    });
}
