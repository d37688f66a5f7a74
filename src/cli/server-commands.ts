import { Option, type Command } from 'commander';

const collect = (value: string, previous: string[]) => [...previous, value];

/** The --server and --token options every admin command takes. */
function withClientOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--server <url>', 'server URL').env('VMPILOT_SERVER').default('http://127.0.0.1:8080'))
    .addOption(new Option('--token <token>', 'the admin token').env('VMPILOT_TOKEN'));
}

/** Subcommands of `vmpilot-server`. Options are declared here; actions load lazily. */
export function registerServerCommands(program: Command): void {
  // `submit [options] COMMAND ARGS...`: options after the command belong to it
  program.enablePositionalOptions();

  program
    .command('serve')
    .description('Run the server: pilot registry, task queue and admin API.')
    .option('--listen <host:port>', 'address to listen on (port 0: any free port)', '127.0.0.1:8080')
    .requiredOption('--db <file>', 'SQLite database file (created if missing)')
    .addOption(new Option('--admin-token <token>', 'admin token (else env, else stored, else generated)').env('VMPILOT_ADMIN_TOKEN'))
    .addOption(new Option('--pilot-token <token>', 'pilot registration token (else env, else stored, else generated)').env('VMPILOT_PILOT_TOKEN'))
    .option('--heartbeat-interval <sec>', 'heartbeat interval told to pilots', '60')
    .option('--match-wait-max <sec>', 'longest a match request is held open', '20')
    .option('--log-level <level>', 'log level: trace, debug, info, warn, error', 'info')
    .addHelpText(
      'after',
      `
Prints "vmpilot-server listening on http://HOST:PORT" first, then any token it
generated ("admin token: T", "pilot token: T"), once. Logs go to stderr.

Example:
  vmpilot-server serve --listen 0.0.0.0:8080 --db /var/lib/vmpilot/server.db`,
    )
    .action(async (o: Record<string, string | undefined>) => {
      const { serve } = await import('../server/serve.js');
      const { intOption } = await import('./admin/commands.js');
      await serve({
        listen: o.listen ?? '127.0.0.1:8080',
        db: o.db ?? '',
        tokens: { admin: o.adminToken, pilot: o.pilotToken },
        heartbeatIntervalSec: intOption('--heartbeat-interval', o.heartbeatInterval ?? '60', 1, 86400),
        matchWaitMaxSec: intOption('--match-wait-max', o.matchWaitMax ?? '20', 0, 60),
        logLevel: o.logLevel ?? 'info',
      });
    });

  withClientOptions(program.command('submit'))
    .description('Queue a payload; prints its id.')
    .argument('<command...>', 'the command and its arguments (after --)')
    .option('--cores <N|MIN-MAX>', 'cores: exactly N, or MIN-MAX (as many as are free)')
    .option('--whole-node', 'run alone on an empty node, with all its cores')
    .option('--memory-mb <mb>', 'memory it needs, in MB')
    .option('--wall <seconds>', 'wall time it needs, in seconds')
    .option('--group <group>', 'owner group', 'default')
    .option('--name <name>', 'name (default: the command basename)')
    .option('--priority <p>', 'priority, -1000..1000 (higher first)')
    .option('--env <K=V>', 'environment variable for the payload (repeatable)', collect, [] as string[])
    .passThroughOptions()
    .addHelpText(
      'after',
      `
Example:
  vmpilot-server submit --cores 2-8 --wall 3600 --env EVENTS=1000 -- /opt/sim/run --fast`,
    )
    .action(async (command: string[], o) => {
      const { submit } = await import('./admin/commands.js');
      await submit(command, o);
    });

  withClientOptions(program.command('jobs'))
    .description('List payloads.')
    .option('--state <state>', 'only this state: queued, assigned, running, done, failed, lost')
    .option('--group <group>', 'only this group')
    .option('--pilot <id>', 'only payloads of this pilot')
    .option('--json', 'print a JSON array of payloads')
    .addHelpText('after', '\nExample:\n  vmpilot-server jobs --state running --group atlas')
    .action(async (o) => {
      const { jobs } = await import('./admin/commands.js');
      await jobs(o);
    });

  withClientOptions(program.command('job'))
    .description('Show one payload, with the last lines of its output.')
    .argument('<id>', 'payload id')
    .option('--json', 'print it as JSON')
    .addHelpText('after', '\nExample:\n  vmpilot-server job 42')
    .action(async (id: string, o) => {
      const { job } = await import('./admin/commands.js');
      await job(id, o);
    });

  withClientOptions(program.command('pilots'))
    .description('List pilots.')
    .option('--json', 'print a JSON array of pilots')
    .addHelpText('after', '\nExample:\n  vmpilot-server pilots --json')
    .action(async (o) => {
      const { pilots } = await import('./admin/commands.js');
      await pilots(o);
    });

  withClientOptions(program.command('halt'))
    .description('Tell a pilot to halt; prints the instruction id.')
    .argument('<pilot>', 'pilot id')
    .option('--code <n>', 'shutdown code to halt with (100..999)')
    .option('--reason <text>', 'why')
    .addHelpText('after', '\nExample:\n  vmpilot-server halt 7 --code 100 --reason "site maintenance"')
    .action(async (pilot: string, o) => {
      const { instruct } = await import('./admin/commands.js');
      await instruct(pilot, 'halt', o);
    });

  withClientOptions(program.command('drain'))
    .description('Tell a pilot to take no new work and halt when its payloads end; prints the instruction id.')
    .argument('<pilot>', 'pilot id')
    .option('--reason <text>', 'why')
    .addHelpText('after', '\nExample:\n  vmpilot-server drain 7 --reason "kernel update"')
    .action(async (pilot: string, o) => {
      const { instruct } = await import('./admin/commands.js');
      await instruct(pilot, 'drain', o);
    });
}
