import { Option, type Command } from 'commander';
import { registerDeliveryCommands } from './delivery-commands.js';

const collect = (value: string, previous: string[]) => [...previous, value];
/** A repeatable flag with no default shown: absent until given. */
const collectAny = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

/** The --server and --token options every admin command takes. */
export function withClientOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--server <url>', 'server URL').env('VMPILOT_SERVER').default('http://127.0.0.1:8080'))
    .addOption(new Option('--token <token>', 'the admin token (prefer --token-file or VMPILOT_TOKEN: a command line is seen by ps)').env('VMPILOT_TOKEN'))
    .addOption(new Option('--token-file <file>', 'a file whose first line is the admin token (wins over --token)').env('VMPILOT_TOKEN_FILE'))
    .addOption(new Option('--ca-file <pem>', 'CA certificate to trust for an https server').env('VMPILOT_CA_FILE'));
}

/** Subcommands of `vmpilot-server`. Options are declared here; actions load lazily. */
export function registerServerCommands(program: Command): void {
  // `submit [options] COMMAND ARGS...`: options after the command belong to it
  program.enablePositionalOptions();

  program
    .command('serve')
    .description('Run the server: pilot registry, task queue and admin API.')
    .option('--listen <host:port>', 'address to listen on (port 0: any free port)', '127.0.0.1:8080')
    .addOption(
      new Option('--db <file|url>', 'SQLite database file (created if missing), or a PostgreSQL database: postgres://USER@HOST/DB')
        .env('VMPILOT_DB')
        .makeOptionMandatory(),
    )
    .option('--db-pool <n>', 'with PostgreSQL: at most this many connections from this server', '10')
    .option('--db-wakeups <mode>', 'with PostgreSQL: how a submit wakes match requests on the other servers: listen (LISTEN/NOTIFY, default) or poll (PgBouncer transaction pooling)')
    .option('--db-poll-ms <ms>', 'with PostgreSQL: wake every match request this often, a fallback with listen (default 5000) and the only wake-up with poll (default 1000)')
    .addOption(new Option('--admin-token <token>', 'admin token (else env, else stored, else generated)').env('VMPILOT_ADMIN_TOKEN'))
    .addOption(new Option('--pilot-token <token>', 'pilot registration token (else env, else stored, else generated)').env('VMPILOT_PILOT_TOKEN'))
    .option('--heartbeat-interval <sec>', 'heartbeat interval told to pilots', '60')
    .option('--match-wait-max <sec>', 'longest a match request is held open', '20')
    .option('--log-level <level>', 'log level: trace, debug, info, warn, error', 'info')
    .option('--config <file>', 'YAML: groups (share, requireIsolation), usageHalfLifeSec, stallAfterSec, maxAttempts, credentialTtlSec, limits, endpoints, directorCycleSec')
    .option('--tls-cert <pem>', 'serve HTTPS with this certificate (chain)')
    .option('--tls-key <pem>', 'the private key of --tls-cert')
    .option('--stall-after <sec>', 'a pilot silent this long becomes stalled (default 600, or the config file)')
    .addHelpText(
      'after',
      `
Prints "vmpilot-server listening on http://HOST:PORT" (https:// with TLS)
first, then any token it generated ("admin token: T", "pilot token: T"),
once. Logs go to stderr. The dashboard is at / (sign in with the admin
token); Prometheus metrics at /metrics (admin token as bearer).

With "endpoints:" in --config (docs/director.md) the server runs the
director: every directorCycleSec (5) and soon after each submit it starts
machines for queued work and discards them when idle; see "endpoints",
"instances" and "director status".

In --config, "groups: { atlas: { share: 70, requireIsolation: true } }"
gives atlas's payloads only to pilots that isolate them (their registration
says an isolation other than none; see "pilots").

--config also takes "limits:" (defaults shown; 0 turns a rate or cap off):
  limits:
    labelBytes: 4096                # a registration's labels, bytes of JSON
    registerBurstPerToken: 2000     # registrations at once per registration token,
    registerPerSecPerToken: 50      #   then this many a second (beyond: 429)
    registerBurstPerAddress: 1000   # the same per source address
    registerPerSecPerAddress: 50
    longPollsPerPilot: 2            # open match requests per pilot (a new one answers the oldest)
    longPollsTotal: 100000          # in all (beyond: 429)
    requestTimeoutSec: 30           # a whole request (headers and body) must arrive within this
    headersTimeoutSec: 10           # its headers within this
    keepAliveSec: 72                # an idle connection closes after this

--db (or VMPILOT_DB) takes a SQLite file, the embedded default, or a
postgres:// (postgresql://) URL: the PostgreSQL store, which several
servers can share (docs/scale-out.md). The schema is created or migrated
on start, once however many servers start together. Servers on one
database wake each other's match requests with LISTEN/NOTIFY (one more
connection each) and every --db-poll-ms as a fallback; behind PgBouncer in
transaction pooling, where LISTEN does not work, give --db-wakeups poll on
every server.

Examples:
  vmpilot-server serve --listen 0.0.0.0:8443 --db /var/lib/vmpilot/server.db \\
    --tls-cert /etc/vmpilot/cert.pem --tls-key /etc/vmpilot/key.pem --config /etc/vmpilot/server.yaml
  VMPILOT_DB=postgres://vmpilot@db.example.org/vmpilot vmpilot-server serve --listen 0.0.0.0:8080 --db-pool 20
  vmpilot-server serve --listen 0.0.0.0:8080 --db postgres://vmpilot@pgbouncer.example.org:6432/vmpilot \\
    --db-wakeups poll --db-poll-ms 1000`,
    )
    .action(async (o: Record<string, string | undefined>) => {
      const { serve } = await import('../server/serve.js');
      const { intOption } = await import('./admin/commands.js');
      const { agentBaseEnv } = await import('../server/director/wiring.js');
      await serve({
        listen: o.listen ?? '127.0.0.1:8080',
        db: o.db ?? '',
        dbPoolSize: intOption('--db-pool', o.dbPool ?? '10', 1, 1000),
        dbWakeups: o.dbWakeups,
        dbPollMs: o.dbPollMs === undefined ? undefined : intOption('--db-poll-ms', o.dbPollMs, 100, 600_000),
        tokens: { admin: o.adminToken, pilot: o.pilotToken },
        heartbeatIntervalSec: intOption('--heartbeat-interval', o.heartbeatInterval ?? '60', 1, 86400),
        matchWaitMaxSec: intOption('--match-wait-max', o.matchWaitMax ?? '20', 0, 60),
        logLevel: o.logLevel ?? 'info',
        configFile: o.config,
        tlsCert: o.tlsCert,
        tlsKey: o.tlsKey,
        stallAfterSec: o.stallAfter === undefined ? undefined : intOption('--stall-after', o.stallAfter, 1, 30 * 86400),
        // the director's local agents get PATH, HOME and LANG only: none of the server's secrets
        agentEnv: agentBaseEnv(process.env),
      });
    });

  program
    .command('migrate')
    .description('Move an installation from its SQLite file to an empty PostgreSQL database: every record with its id, in one transaction.')
    .requiredOption('--from <sqlite:FILE>', 'the SQLite file of the installation (stop its server first)')
    .requiredOption('--to <postgres://…>', 'an empty PostgreSQL database (its schema is created); a password is better in PGPASSWORD or ~/.pgpass than here')
    .option('--json', 'print what was copied ({ tables: [{ name, rows }], derived }) as JSON')
    .addHelpText(
      'after',
      `
Stop the server that uses the SQLite file, migrate, then start the servers
with --db set to the PostgreSQL URL (docs/scale-out.md). Pilots keep their
credentials and report numbers, so running agents carry on when the server
comes back. The SQLite file is only read, and must be at this version's
schema (a server of this version opened it). On any error nothing is kept
in PostgreSQL (exit status 3 for a database that is not empty, 4 for the
database errors).

Example:
  PGPASSWORD=… vmpilot-server migrate --from sqlite:/var/lib/vmpilot/server.db --to postgres://vmpilot@db.example.org/vmpilot`,
    )
    .action(async (o: { from: string; to: string; json?: boolean }) => {
      const { migrateCommand } = await import('./migrate-command.js');
      await migrateCommand(o);
    });

  withClientOptions(program.command('submit'))
    .description('Queue a payload (or every payload of a YAML file); prints the ids.')
    .argument('[command...]', 'the command and its arguments (after --)')
    .option('--file <jobs.yaml>', 'queue every payload of this YAML file, all or none')
    .option('--json', 'print the ids as a JSON array (one id: [4])')
    .option('--cores <N|MIN-MAX>', 'cores: exactly N, or MIN-MAX (as many as are free)')
    .option('--whole-node', 'run alone on an empty node, with all its cores')
    .option('--memory-mb <mb>', 'memory it needs, in MB')
    .option('--wall <seconds>', 'wall time it needs, in seconds')
    .option('--group <group>', 'owner group (default: default); with --file, the group of every payload that names none')
    .option('--name <name>', 'name (default: the command basename)')
    .option('--priority <p>', 'priority, -1000..1000 (higher first)')
    .option('--env <K=V>', 'environment variable for the payload (repeatable)', collect, [] as string[])
    .option('--no-requeue', 'never run it again after the infrastructure stopped it (a halt, SIGTERM, the deadline, a lost pilot): it fails instead')
    .option('--gpus <n>', 'GPUs it needs, each its own (CUDA_VISIBLE_DEVICES)')
    .option('--gpu-memory-mb <mb>', 'memory each of its GPUs must have, MiB (with --gpus)')
    .option('--arch <arch>', 'architecture, any of (repeatable or A,B): x86_64, x86_64-v3 (that level or higher), aarch64', collectAny)
    .option('--platform <p>', 'OS platform, any of (repeatable or A,B): el9, debian12, el>=9', collectAny)
    .option('--site <site>', 'run only at one of these sites (repeatable or A,B)', collectAny)
    .option('--not-site <site>', 'never run at these sites (repeatable or A,B)', collectAny)
    .option('--tag <tag>', 'run only where the node has this tag (repeatable: every one)', collectAny)
    .option('--scratch-mb <mb>', 'scratch disk it needs, MiB')
    .passThroughOptions()
    .addHelpText(
      'after',
      `
A payload stopped by the infrastructure (its pilot halted, SIGTERMed, at its
deadline, cut off from the server, or lost) goes back to the queue and runs
again, up to the server's maxAttempts (default 3) in all; --no-requeue makes
it fail instead, for work that must not run twice.

Requirements (docs/requirements.md) are matched against what each pilot
says its node is and has; \`job ID\` says why no live pilot can run a
queued payload ("waiting: no live pilot has a GPU").

Examples:
  vmpilot-server submit --cores 2-8 --wall 3600 --env EVENTS=1000 -- /opt/sim/run --fast
  vmpilot-server submit --no-requeue -- /opt/db/migrate --apply
  vmpilot-server submit --gpus 1 --gpu-memory-mb 16000 --arch x86_64-v3 --platform 'el>=9' -- ./train.sh
  vmpilot-server submit --site CERN,RAL --not-site DESY --tag cvmfs --scratch-mb 20000 -- ./reco.sh
  vmpilot-server submit --file jobs.yaml

jobs.yaml: a list of payloads, or "defaults:" and "payloads:"; each payload has
command (list, or string for /bin/sh -c), and optionally cores (N, MIN-MAX or
whole), memoryMb, wallSec, group, name, priority, env, requeue (false as
--no-requeue), count, and the requirements gpus, gpuMemoryMb, arch, platform,
site, notSite, tag, scratchMb:
  defaults: { group: atlas, wallSec: 3600 }
  payloads:
    - { command: [/opt/sim/run, --fast], cores: 2-8, count: 100 }
    - { command: "reco.sh > out.txt", cores: whole, group: cms }
    - { command: [./train.sh], gpus: 2, arch: x86_64-v3, site: [CERN, RAL] }`,
    )
    .action(async (command: string[], o) => {
      if (o.file !== undefined) {
        if (command.length > 0) throw new (await import('../shared/errors.js')).VmpilotError('VMP_USAGE', 'give --file or a command, not both');
        const { submitFile } = await import('./admin/bulk.js');
        return submitFile(o.file, o);
      }
      const { submit } = await import('./admin/commands.js');
      await submit(command, o);
    });

  withClientOptions(program.command('jobs'))
    .description('List payloads (every one, oldest first; --limit N: the newest N).')
    .option('--state <state>', 'only this state: queued, assigned, running, done, failed, cancelled')
    .option('--group <group>', 'only this group')
    .option('--pilot <id>', 'only payloads of this pilot')
    .option('--limit <n>', 'only the newest N')
    .option('--json', 'print a JSON array of payloads')
    .addHelpText(
      'after',
      `
Under the table: the core-seconds of the payloads listed, by how they ended
(done, failed: their own exit, signal or limit; cancelled: killed) and those
of attempts the infrastructure ended (evicted). ATTEMPTS says how many of a
payload's attempts were evicted.

The server hands the list out in pages of at most 500, newest first; this reads
them all (or enough for --limit). Text from pilots is shown with control characters
escaped (\\e, \\n, \\x07, ...).

Example:
  vmpilot-server jobs --state running --group atlas --limit 50`,
    )
    .action(async (o) => {
      const { jobs } = await import('./admin/commands.js');
      await jobs(o);
    });

  withClientOptions(program.command('job'))
    .description('Show one payload, with its history (queued, assigned, evicted, ...) and the last lines of its output.')
    .argument('<id>', 'payload id')
    .option('--json', 'print it as JSON')
    .addHelpText('after', '\nExample:\n  vmpilot-server job 42')
    .action(async (id: string, o) => {
      const { job } = await import('./admin/commands.js');
      await job(id, o);
    });

  withClientOptions(program.command('pilots'))
    .description('List pilots (every one, oldest first; --limit N: the newest N).')
    .option('--state <states>', 'only these states, comma-separated (running,draining,stalled,...)')
    .option('--limit <n>', 'only the newest N')
    .option('--json', 'print a JSON array of pilots')
    .addHelpText(
      'after',
      `
CORES is the cores of the payloads the server assigned to the pilot (up to
date at once, not only at its next heartbeat) of the cores it offers.
EXTERNAL-ID is its batch job id or cloud instance id, LABELS what it
registered with (batch=slurm, site=...). CONTACT is how long ago the server
last heard from it: its registration, a heartbeat, a match or a report.
"pilot ID" shows one pilot in full.

Read page by page from the server (at most 500 a page, newest first).
Hostnames, external ids, labels and messages from pilots are shown with
control characters escaped (\\e, \\n, \\x07, ...), so a pilot cannot forge
rows or set the terminal title.

Examples:
  vmpilot-server pilots
  vmpilot-server pilots --state running,draining
  vmpilot-server pilots --limit 20 --json`,
    )
    .action(async (o) => {
      const { pilots } = await import('./admin/commands.js');
      await pilots(o);
    });

  withClientOptions(program.command('pilot'))
    .description('Show one pilot: what it registered with, its last heartbeat (load, memory, disk, MJF), history, instructions and their acknowledgements, payloads.')
    .argument('<id>', 'pilot id')
    .option('--json', 'print { pilot, history, instructions, payloads } as JSON')
    .addHelpText('after', '\nExamples:\n  vmpilot-server pilot 3\n  vmpilot-server pilot 3 --json | jq .pilot.lastHeartbeat.load')
    .action(async (id: string, o) => {
      const { pilot } = await import('./admin/pilot-detail.js');
      await pilot(id, o);
    });

  const selection = (cmd: Command) =>
    cmd
      .option('--all', 'every live pilot')
      .option('--state <state>', 'every pilot in this state (running, draining, stalled, ...)')
      .option('--host <glob>', "every live pilot whose whole hostname matches this glob: * any characters, ? one (e.g. '*.cern.ch'; case-insensitive; not a regular expression)");

  selection(withClientOptions(program.command('halt')))
    .description('Tell a pilot (or every pilot matching a filter) to halt; prints the instruction id(s).')
    .argument('[pilot]', 'pilot id')
    .option('--code <n>', 'shutdown code to halt with (100..999)')
    .option('--reason <text>', 'why')
    .addHelpText(
      'after',
      '\nOne pilot prints its instruction id; a filter prints "PILOT INSTRUCTION" per pilot.\n--host is a glob matched against the whole hostname, in time bounded by the lengths\nof the two (no backtracking), so no hostname a pilot reports can make it hang.\n\nExamples:\n  vmpilot-server halt 7 --code 100 --reason "site maintenance"\n  vmpilot-server halt --host \'vm-*.cern.ch\'',
    )
    .action(async (pilot: string | undefined, o) => {
      const { instructMany } = await import('./admin/bulk.js');
      await instructMany(pilot, 'halt', o);
    });

  selection(withClientOptions(program.command('drain')))
    .description('Tell a pilot (or every pilot matching a filter) to take no new work and halt when its payloads end.')
    .argument('[pilot]', 'pilot id')
    .option('--reason <text>', 'why')
    .addHelpText(
      'after',
      '\nA drain is kept until the pilot halts: draining a pilot that already has a drain\n(not yet acknowledged, or acknowledged and still draining) sends nothing new and\nprints that instruction\'s id, saying so on stderr.\n\nExamples:\n  vmpilot-server drain 7 --reason "kernel update"\n  vmpilot-server drain --state running\n  vmpilot-server drain --host \'wn-??.example.org\'',
    )
    .action(async (pilot: string | undefined, o) => {
      const { instructMany } = await import('./admin/bulk.js');
      await instructMany(pilot, 'drain', o);
    });

  withClientOptions(program.command('kill'))
    .description('Kill a payload: it ends cancelled (a queued one at once; a running one when its pilot has stopped it).')
    .argument('<id>', 'payload id')
    .option('--reason <text>', 'why')
    .option('--json', 'print the reply as JSON')
    .addHelpText('after', '\nExample:\n  vmpilot-server kill 42 --reason "wrong input"')
    .action(async (id: string, o) => {
      const { kill } = await import('./admin/bulk.js');
      await kill(id, o);
    });

  withClientOptions(program.command('resubmit'))
    .description('Queue an ended payload (done, failed or cancelled) again: a new payload with the same request; the original stays as it ended.')
    .argument('<id>', 'payload id')
    .option('--json', 'print the reply ({ id, resubmitOf }) as JSON')
    .addHelpText('after', '\nExit status 3 when the payload has not ended yet (wait for it, or kill it first).\n\nExample:\n  vmpilot-server resubmit 42')
    .action(async (id: string, o) => {
      const { resubmit } = await import('./admin/bulk.js');
      await resubmit(id, o);
    });

  withClientOptions(program.command('accounting'))
    .description("Core-seconds (by how attempts ended), wall seconds, payloads done, failed, cancelled, by group, pilot and day (UTC); with --instances, the director's instances' hours and cost per group.")
    .option('--from <day>', 'first day, YYYY-MM-DD')
    .option('--to <day>', 'last day, YYYY-MM-DD')
    .option('--group <group>', 'only this group')
    .option('--instances', "what the director's instances cost instead: per group they were started for and endpoint, instance-hours, core-hours and cost (costPerHour × hours) since the start; instances started by hand under (by hand)")
    .option('--json', 'print the rows (day, group, pilotId, coreSec, wallSec, done, failed, cancelled, evicted, doneCoreSec, ...) as JSON; with --instances (group, endpoint, instances, instanceHours, coreHours, cost)')
    .addHelpText(
      'after',
      `
CORE-SEC is every core-second used; DONE-SEC, FAILED-SEC, CANCELLED-SEC and
EVICTED-SEC split it by how each attempt ended (evicted: stopped by the
infrastructure or lost with its pilot, not the payload's doing). DONE, FAILED
and CANCELLED count payloads; EVICTED counts attempts. Fair share counts all
of it: the cores were used.

--instances: an instance counts from when its driver accepted it (else when
it was requested) to when it was deleted, ended, or now, at the price it
was started at.

Example:
  vmpilot-server accounting --from 2025-01-01 --json
  vmpilot-server accounting --instances`,
    )
    .action(async (o) => {
      const { accounting } = await import('./admin/bulk.js');
      await accounting(o);
    });
  registerDeliveryCommands(program); // user-data, batch-script (issue 5)
}
