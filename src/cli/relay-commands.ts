import { Option, type Command } from 'commander';

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `vmpilot relay`: declared here; its module (src/relay/) loads only when it runs. */
export function registerRelayCommand(program: Command): void {
  program
    .command('relay')
    .description('On a login node: carry the pilot protocol between agents on compute nodes (HTTP, or mailboxes on a shared filesystem) and the server, and serve them the agent from a cache.')
    .option('--server <url>', 'the vmpilot server the relay forwards to')
    .option('--listen <host:port>', 'listen for agents here (they run with --server http://HOST:PORT)')
    .option('--tls-cert <pem>', 'speak HTTPS to the agents with this certificate (chain); they trust it with vmpilot run --ca-file')
    .option('--tls-key <pem>', 'the private key of --tls-cert')
    .option('--spool <dir>', 'move the mailboxes in this directory (agents run with --server file:///DIR/NAME)')
    .option('--ca-file <pem>', "CA certificate that signed the server's TLS certificate")
    .option('--relay-token-file <file>', "file holding this relay's own token (env VMPILOT_RELAY_TOKEN_FILE, or the token in VMPILOT_RELAY_TOKEN); see vmpilot-server relay-token")
    // refused with a clear message (relay/options.ts): a token on a command line is visible to every process on the node
    .addOption(new Option('--relay-token <token>').hideHelp())
    .option('--cache-dir <dir>', 'where agent files and artifacts are kept (default $XDG_CACHE_HOME/vmpilot-relay, else ~/.cache/vmpilot-relay)')
    .option('--cache-max-mb <n>', 'keep the cache under this size, removing the least recently used files first (default 4096)')
    .option('--outputs <url>', 'forward PUT /outputs/PATH (agents: --job-outputs http://HOST:PORT/outputs/...) to URL/PATH')
    .option('--artifacts-from <prefix>', 'fetch bootstrap artifacts (agents: vmpilot run --artifacts-via http://HOST:PORT) only from URLs under this prefix (repeatable; default: none)', collect)
    .option('--connections <n>', 'connections to the server for short calls (default 16)')
    .option('--poll-connections <n>', 'connections to the server for match long polls, one per waiting agent (default 1024)')
    .option('--poll-ms <ms>', 'how soon mailboxes are looked into again after a look that moved something (default 200)')
    .option('--poll-max-ms <ms>', 'the longest pause between looks while nothing moves: each quiet look doubles the pause up to this (default 1000)')
    .addOption(new Option('--log-level <level>', 'log level (default info)').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
    .addHelpText(
      'after',
      `
The relay passes each agent's own token on as it is and holds no pilot's
credential; it shows the server its own relay token (header
x-vmpilot-relay-token), so the server records which relay and site a pilot
came through and can refuse relays it does not know (relays in serve
--config). It forwards only the pilot protocol and the agent files, never
the admin routes. Agent files are fetched from the server once, checked
against the server's manifest (sha256 and size), and served from the cache;
each download still asks the server whether the caller's token may have it.

With --spool, the relay moves only the mailboxes of its own account that no
other account may write: run it as the account the pilot jobs run as. One
relay per spool (DIR/.relay.lock); one killed and started again answers
what it had taken "interrupted", and the agents ask again.

Prints "vmpilot relay listening on http://HOST:PORT" (https:// with
--tls-cert) and/or "vmpilot relay
moving mailboxes in DIR" when ready; logs go to stderr. SIGTERM stops it.
docs/hpc.md shows who connects to whom and a Slurm example.

Examples:
  vmpilot relay --listen 0.0.0.0:8081 --server https://pilots.example.org --relay-token-file /etc/vmpilot/relay.token
  vmpilot relay --listen 10.1.0.5:8443 --tls-cert /etc/vmpilot/relay.pem --tls-key /etc/vmpilot/relay.key --server https://pilots.example.org
  vmpilot relay --spool /shared/vmpilot --server https://pilots.example.org --relay-token-file ~/.vmpilot/relay.token
  vmpilot relay --listen 10.1.0.5:8081 --server https://pilots.example.org --outputs https://se.example.org/vmpilot/ \\
    --artifacts-from https://software.example.org/releases/`,
    )
    .action(async (opts: Record<string, unknown>) => {
      const { runRelay } = await import('../relay/main.js');
      await runRelay(opts);
    });
}
