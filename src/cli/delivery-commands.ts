import { Option, type Command } from 'commander';

const collect = (value: string, previous: string[]) => [...previous, value];

/** Options both generators share: where the agent comes from and the token it shows. */
function withAgentOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--server <url>', 'the server URL as the node reaches it')
    .addOption(new Option('--pilot-token <token>', 'the pilot registration token').env('VMPILOT_PILOT_TOKEN'))
    .option('--manifest <file>', 'agent manifest to pin the checksum from (default: agent-manifest.json beside this program)')
    .option('--agent-sha256 <hex>', 'pin this sha256 of the uncompressed agent instead of reading a manifest')
    .option('--agent-file <name>', 'with --agent-sha256: the file under /v1/agent/ (default vmpilot-linux-x64)')
    .option('--idle-timeout <sec>', 'the agent halts after this long without a payload (default 300)')
    .option('--grace <sec>', 'seconds between SIGTERM and SIGKILL of payloads when halting (default 30)')
    .option('--ca-file <pem>', "the CA that signed the server's TLS certificate (a private CA, or an IGTF bundle): embedded, and the only CA the download and the agent trust");
}

/** `vmpilot-server user-data` and `batch-script`: print what starts an agent on a VM or in a batch job. */
export function registerDeliveryCommands(program: Command): void {
  withAgentOptions(program.command('user-data'))
    .description('Print #cloud-config user-data that fetches, verifies and starts the agent on a standard image and powers the VM off when it halts.')
    .option('--cores <n>', 'cores to offer (default: probed)')
    .option('--lifetime <sec>', 'halt this long after boot (default: no limit)')
    .option('--halt <action>', 'exit, poweroff or a shell command (default poweroff)')
    .option('--package <name>', 'Debian package for cloud-init to install first, e.g. curl (repeatable)', collect, [] as string[])
    .option('--ssh-key <key>', 'SSH public key for the default user (repeatable)', collect, [] as string[])
    .addHelpText(
      'after',
      `
The checksum of the agent is pinned from the manifest when the user-data is
made; the VM refuses any other file. The token is written mode 0600, for
root only; the agent runs as root and each payload as an unprivileged
account of its own, which cannot read it (docs/security.md). With --ca-file
the CA goes to /etc/vmpilot/ca.pem: the fetch (curl, wget or python3) and
the agent (caFile) trust it and no other. The fetch says what it downloads
and its size, then its progress (in the journal and on the console).

Examples:
  VMPILOT_PILOT_TOKEN=... vmpilot-server user-data --server https://pilots.example.org --idle-timeout 600 > user-data.yaml
  VMPILOT_PILOT_TOKEN=... vmpilot-server user-data --server https://pilots.example.org --ca-file /etc/grid-security/certificates/MyCA.pem > user-data.yaml`,
    )
    .action(async (o) => {
      const { userDataCommand } = await import('../server/delivery/commands.js');
      await userDataCommand(o);
    });

  withAgentOptions(program.command('batch-script'))
    .description('Print a Slurm, PBS or Grid Engine job script that fetches, verifies and runs the agent in batch mode.')
    .requiredOption('--system <name>', 'slurm, pbs or sge')
    .addOption(new Option('--agent <kind>', 'executable (no Node.js needed) or bundle (needs node 20+)').choices(['executable', 'bundle']))
    .option('--cores <n>', 'cores to ask for (default 1)')
    .option('--walltime <sec>', 'wall time to ask for, seconds (default 3600)')
    .option('--drain-before <sec>', 'drain this long before the wall time ends (default 300, or a quarter of a --walltime under 360)')
    .addOption(new Option('--pbs <flavour>', "with --system pbs: torque asks for nodes=1:ppn=N (default; also Slurm's qsub), pro for select=1:ncpus=N (PBS Professional, OpenPBS)").choices(['torque', 'pro']))
    .option('--job-name <name>', 'job name (default vmpilot)')
    .option('--queue <name>', 'partition (Slurm) or queue')
    .option('--account <name>', 'account or project to charge')
    .option('--sge-pe <name>', 'Grid Engine parallel environment with allocation_rule $pe_slots (default smp)')
    .option('--output <path>', "the job's output file (absolute path)")
    .option('--cache-dir <path>', 'agent cache shared by jobs on a node (default ~/.cache/vmpilot)')
    .option('--work-dir <path>', "where each job's state directory vmpilot-job-<id> goes (default $TMPDIR, else /tmp)")
    .addHelpText(
      'after',
      `
The job exits 0 when the agent halted normally (no more work, drained,
halted by an administrator) and 15 on a bootstrap problem. The token is in
the script (anybody who can read the script can register pilots); the job
hands it to curl, wget, python3 and the agent without a command line, and
payloads run in a sandbox that hides it where the node allows
(docs/security.md).

The agent drains --drain-before seconds before its deadline on every system
(Slurm and Grid Engine also signal it then); a --walltime too short for the
default 300 s gets a quarter of it, said on stderr. PBS resources are
nodes=1:ppn=N (Torque) unless --pbs pro (select=1:ncpus=N): each system
refuses the other's form. With --ca-file the CA's certificates are written
beside the job's state; the download and the agent trust them and no other.
The download says its size, then a line at 25, 50, 75 and 100 % in the job's
output (a progress line on a terminal).

Examples:
  vmpilot-server batch-script --system slurm --server https://pilots.example.org --cores 8 --walltime 86400 > pilot.sh && sbatch pilot.sh
  vmpilot-server batch-script --system sge --server http://login01:8080 --cores 4 --sge-pe smp > pilot.sh && qsub pilot.sh
  vmpilot-server batch-script --system pbs --pbs pro --server https://pilots.example.org --ca-file ca.pem --cores 8 > pilot.sh && qsub pilot.sh`,
    )
    .action(async (o) => {
      const { batchScriptCommand } = await import('../server/delivery/commands.js');
      await batchScriptCommand(o);
    });
}
