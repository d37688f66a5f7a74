import { Option, type Command } from 'commander';

/** Subcommands of `vmpilot`. Options are declared here; actions load their modules lazily. */
export function registerAgentCommands(program: Command): void {
  const run = program
    .command('run')
    .description('Register with a vmpilot server, run payloads on this node, and halt when there is no more work.')
    .option('--server <url>', 'server base URL (env VMPILOT_SERVER)')
    .option('--token <token>', 'registration token (env VMPILOT_TOKEN)')
    .option('--lifetime <seconds>', 'halt this many seconds after start, e.g. the batch job time limit (env VMPILOT_LIFETIME_SEC)');
  addResourceOptions(run);
  run
    .option('--idle-timeout <seconds>', 'halt with code 300 after this long without a payload; 0 never (env VMPILOT_IDLE_TIMEOUT_SEC, default 300)')
    .option('--halt <action>', 'what to do last: exit, poweroff, or a shell command (env VMPILOT_HALT, default exit)')
    .option('--grace <seconds>', 'seconds between SIGTERM and SIGKILL of payloads when halting (env VMPILOT_GRACE_SEC, default 30)')
    .addOption(new Option('--log-level <level>', 'log level (env VMPILOT_LOG_LEVEL, default info)').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
    .addHelpText(
      'after',
      `
Every flag can also come from the environment (VMPILOT_*) or a YAML file
(--config, keys in camelCase: server, token, cores, memoryMb, idleTimeoutSec,
halt, stateDir, graceSec, logLevel, lifetimeSec). Flags win over the
environment, the environment over the file.

Logs are JSON lines on stderr. The state directory holds state.json, one
folder per payload (payloads/<id>/ with stdout, stderr, tmp/) and, at the end,
shutdown_message ("NNN text"). Exit status: 0 after shutdown codes 100, 200,
300; 14..17 after 400..700; 2 for a bad flag or config value.
SIGTERM or SIGINT halts (code 100); SIGUSR1 drains.

Examples:
  vmpilot run --server http://127.0.0.1:8080 --token "$VMPILOT_TOKEN" --cores 4
  VMPILOT_SERVER=https://pilots.example.org vmpilot run --config /etc/vmpilot.yaml --halt poweroff`,
    )
    .action(async (opts: Record<string, unknown>) => {
      const { runAgent } = await import('../agent/main.js');
      await runAgent(opts);
    });

  const probe = program
    .command('probe')
    .description('Print the cores, memory, disk and load this agent would offer, and where each value comes from.')
    .option('--json', 'print JSON instead of text');
  addResourceOptions(probe);
  probe
    .addHelpText(
      'after',
      `
Examples:
  vmpilot probe
  vmpilot probe --cores 4 --memory-mb 8000 --json`,
    )
    .action(async (opts: Record<string, unknown>) => {
      const { probeCommand } = await import('../agent/main.js');
      await probeCommand(opts);
    });
}

function addResourceOptions(cmd: Command): void {
  cmd
    .option('--cores <n>', 'cores to offer, even more than the host has (env VMPILOT_CORES, default: probed)')
    .option('--memory-mb <mb>', 'memory to offer in MiB (env VMPILOT_MEMORY_MB, default: probed)')
    .option('--state-dir <dir>', 'state directory (env VMPILOT_STATE_DIR, default ./.vmpilot-state)')
    .option('--config <file>', 'YAML config file (env VMPILOT_CONFIG)');
}
