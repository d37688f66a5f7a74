import { Option, type Command } from 'commander';

/** Subcommands of `vmpilot`. Options are declared here; actions load their modules lazily. */
export function registerAgentCommands(program: Command): void {
  const run = program
    .command('run')
    .description('Register with a vmpilot server, run payloads on this node, and halt when there is no more work.')
    .option('--server <url>', 'server base URL (env VMPILOT_SERVER)')
    .option('--token <token>', 'registration token (env VMPILOT_TOKEN)')
    .option('--ca-file <pem>', "CA certificate that signed the server's TLS certificate, also trusted for bootstrap downloads (env VMPILOT_CA_FILE)")
    .option('--lifetime <seconds>', 'halt this many seconds after start, e.g. the batch job time limit (env VMPILOT_LIFETIME_SEC)');
  addResourceOptions(run);
  addCapabilityOptions(run);
  run
    .option('--idle-timeout <seconds>', 'halt with code 300 once the server has had no payload for it this long (time it did not answer does not count); 0 never (env VMPILOT_IDLE_TIMEOUT_SEC, default 300)')
    .option('--halt <action>', 'what to do last: exit, poweroff, or a shell command (env VMPILOT_HALT, default exit)')
    .option('--grace <seconds>', 'seconds between SIGTERM and SIGKILL of payloads when halting (env VMPILOT_GRACE_SEC, default 30)')
    .option('--min-lifetime <seconds>', 'never halt for idleness before this many seconds after start (env VMPILOT_MIN_LIFETIME_SEC, default 0)')
    .option('--orphan-timeout <seconds>', 'halt with code 700 after this long without reaching the server while nothing runs; 0 never (env VMPILOT_ORPHAN_TIMEOUT_SEC, default 3600)')
    .option('--drain-file <path>', 'drain while this file (or <state-dir>/drain) exists (env VMPILOT_DRAIN_FILE, default /var/lib/vmpilot/drain)')
    .option('--job-outputs <dir|url>', 'keep a heartbeat file and leave shutdown_message here: a directory or an http(s) URL to PUT to (env JOBOUTPUTS)')
    .option('--payload-user <user>', 'when running as root, run payloads as this unprivileged user, name or uid (env VMPILOT_PAYLOAD_USER, default: the agent user)')
    .option('--starvation <seconds>', 'once a larger payload has waited this long, stop taking smaller work until it fits (env VMPILOT_STARVATION_SEC, default 600)')
    .option('--max-output-mb <mb>', "cap on each payload's stdout and stderr file; older output is dropped (env VMPILOT_MAX_OUTPUT_MB, default 100)")
    .option('--bootstrap <file>', 'bootstrap steps to run once registered: YAML with check, software, env, setup (env VMPILOT_BOOTSTRAP); a failed step halts with 500')
    .addOption(new Option('--log-level <level>', 'log level (env VMPILOT_LOG_LEVEL, default info)').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
    .addHelpText(
      'after',
      `
Every flag can also come from the environment (VMPILOT_*) or a YAML file
(--config, keys in camelCase: server, token, cores, memoryMb, idleTimeoutSec,
halt, stateDir, graceSec, logLevel, lifetimeSec, gpus, gpuMemoryMb, arch,
platform, site, tags, scratchMb). Flags win over the environment, the
environment over the file. The capabilities (arch, platform, GPUs, site,
tags, scratch) are matched against payloads' requirements; each payload
asking for GPUs gets its own in CUDA_VISIBLE_DEVICES (docs/requirements.md).

Logs are JSON lines on stderr. The state directory holds state.json, one
folder per payload (payloads/<id>/ with stdout, stderr, tmp/) and, at the end,
shutdown_message ("NNN text"). Exit status: 0 after shutdown codes 100, 200,
300; 14..17 after 400..700; 2 for a bad flag or config value.
SIGTERM or SIGINT drains, stops payloads (SIGTERM, grace, SIGKILL) and halts
(code 100); SIGUSR1 drains. Restarted with the same state directory after a
crash, the agent carries on as the same pilot and re-attaches to its payloads.

Examples:
  vmpilot run --server http://127.0.0.1:8080 --token "$VMPILOT_TOKEN" --cores 4
  vmpilot run --server https://pilots.example.org --site CERN --tag cvmfs --tag apptainer --gpus 2
  VMPILOT_SERVER=https://pilots.example.org vmpilot run --config /etc/vmpilot.yaml --halt poweroff`,
    )
    .action(async (opts: Record<string, unknown>) => {
      const { runAgent } = await import('../agent/main.js');
      await runAgent(opts);
    });

  const probe = program
    .command('probe')
    .description('Print the cores, memory, disk, load and capabilities (arch, platform, GPUs, site, tags, scratch) this agent would offer, where each value comes from (config, mjf, batch, cgroup, mjf-machine, probe) and why it won, and its deadline.')
    .option('--json', 'print JSON instead of text');
  addResourceOptions(probe);
  addCapabilityOptions(probe);
  probe
    .addHelpText(
      'after',
      `
The job's own allocation (its Job Features' allocated_cpu, the batch
system's NSLOTS, SLURM_CPUS_ON_NODE, NCPUS or HTCondor slot) wins over
machine-wide counts (total_cpu, log_cores, jobslots). In --json each value
has "candidates", "origins" and "reason". GPUs come from --gpus, else the
job's CUDA_VISIBLE_DEVICES, SLURM_STEP_GPUS, SLURM_JOB_GPUS or
GPU_DEVICE_ORDINAL, else nvidia-smi, /proc/driver/nvidia or the PCI devices
in /sys; "capabilities.gpus.tried" says what each probe found
(docs/requirements.md).

Examples:
  vmpilot probe
  vmpilot probe --cores 4 --memory-mb 8000 --json
  vmpilot probe --gpus 2 --gpu-memory-mb 16000 --site CERN --tag cvmfs --json
  NSLOTS=8 JOB_ID=4711 JOBFEATURES=$TMPDIR/jobfeatures.4711 vmpilot probe --json`,
    )
    .action(async (opts: Record<string, unknown>) => {
      const { probeCommand } = await import('../agent/probe/commands.js');
      await probeCommand(opts);
    });

  const mjf = program
    .command('mjf')
    .description('Print the Machine/Job Features this agent reads ($MACHINEFEATURES, $JOBFEATURES), where from, and its deadline.')
    .option('--json', 'print JSON instead of text')
    .option('--lifetime <seconds>', 'the configured maximum lifetime, one of the deadline limits (env VMPILOT_LIFETIME_SEC)');
  addResourceOptions(mjf);
  mjf
    .addHelpText(
      'after',
      `
Each of $MACHINEFEATURES and $JOBFEATURES (or --machine-features,
--job-features) is a directory or an http(s) base URL holding one file per
key (HSF-TN-2016-02). Missing keys are normal; bad values are listed as
problems and ignored. A key that cannot be read now but that the agent of
--state-dir last read well (<state-dir>/mjf-read.json) shows that value,
marked stale: it is what that agent goes by. The deadline is the earliest
of jobstart_secs + wall_limit_secs, shutdowntime_job, shutdowntime, the
batch job's end and --lifetime. docs/mjf.md lists every key.

Examples:
  vmpilot mjf
  MACHINEFEATURES=/etc/machinefeatures JOBFEATURES=http://169.254.169.254/jobfeatures vmpilot mjf --json
  vmpilot mjf --json --state-dir /var/lib/vmpilot     # beside a running agent: its stale values too`,
    )
    .action(async (opts: Record<string, unknown>) => {
      const { mjfCommand } = await import('../agent/probe/commands.js');
      await mjfCommand(opts);
    });
}

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

/** What the node is and has beyond cores and memory, declared by the operator (docs/requirements.md). */
function addCapabilityOptions(cmd: Command): void {
  cmd
    .option('--gpus <n>', 'GPUs to offer, each to one payload at a time; 0 none (env VMPILOT_GPUS, default: the allocation, else probed)')
    .option('--gpu-memory-mb <mb>', 'memory of each GPU offered, MiB (env VMPILOT_GPU_MEMORY_MB, default: probed)')
    .option('--arch <arch>', 'architecture to declare, e.g. x86_64-v3 or aarch64 (env VMPILOT_ARCH, default: from /proc/cpuinfo)')
    .option('--platform <p>', 'OS platform to declare, e.g. el9 (env VMPILOT_PLATFORM, default: from os-release)')
    .option('--site <site>', 'the site this node is at (env VMPILOT_SITE)')
    .option('--tag <tag>', 'a tag this node has, repeatable (env VMPILOT_TAGS, comma-separated)', collect)
    .option('--scratch-mb <mb>', "scratch disk to offer, MiB (env VMPILOT_SCRATCH_MB, default: the site's scratch_limit_bytes, else the disk free)");
}

function addResourceOptions(cmd: Command): void {
  cmd
    .option('--cores <n>', 'cores to offer, even more than the host has (env VMPILOT_CORES, default: probed)')
    .option('--memory-mb <mb>', 'memory to offer in MiB (env VMPILOT_MEMORY_MB, default: probed)')
    .option('--machine-features <dir|url>', 'Machine Features directory or http(s) base URL (env MACHINEFEATURES)')
    .option('--job-features <dir|url>', 'Job Features directory or http(s) base URL (env JOBFEATURES)')
    .option('--state-dir <dir>', 'state directory (env VMPILOT_STATE_DIR, default ./.vmpilot-state)')
    .option('--config <file>', 'YAML config file (env VMPILOT_CONFIG)');
}
