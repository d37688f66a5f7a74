import { Option, type Command } from 'commander';

/** Subcommands of `vmpilot`. Options are declared here; actions load their modules lazily. */
export function registerAgentCommands(program: Command): void {
  const run = program
    .command('run')
    .description('Register with a vmpilot server, run payloads on this node, and halt when there is no more work.')
    .option('--server <url>', "server base URL; behind a login node its vmpilot relay's (http://LOGIN:PORT), or a mailbox file:///DIR/NAME that vmpilot relay --spool DIR carries (env VMPILOT_SERVER)")
    .option('--token-file <file>', 'file holding the registration token (env VMPILOT_PILOT_TOKEN_FILE; or the token itself in env VMPILOT_PILOT_TOKEN)')
    // refused with a clear message (config/load.ts): a token on a command line is visible to every process on the node
    .addOption(new Option('--token <token>').hideHelp())
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
    .option('--payload-user <user>', 'when running as root, run every payload as this unprivileged user, name or uid (env VMPILOT_PAYLOAD_USER, default: one vmpilot-slotN account per slot)')
    .addOption(
      new Option('--isolation <how>', 'how payloads are kept from the agent and each other: auto (root: one account per slot; otherwise bwrap, else unshare), bwrap, unshare, or none (env VMPILOT_ISOLATION, default auto)').choices(['auto', 'bwrap', 'unshare', 'none']),
    )
    .option('--starvation <seconds>', 'once a larger payload has waited this long, stop taking smaller work until it fits (env VMPILOT_STARVATION_SEC, default 600)')
    .option('--max-output-mb <mb>', "cap on each payload's stdout and stderr file; older output is dropped (env VMPILOT_MAX_OUTPUT_MB, default 100)")
    .option('--bootstrap <file>', 'bootstrap steps to run once registered: YAML with check, software, env, setup (env VMPILOT_BOOTSTRAP); a failed step halts with 500')
    .addOption(new Option('--spot-notice <cloud>', "on a spot instance, treat the cloud's interruption notice as the deadline: aws (EC2 instance metadata, IMDSv2) or none (env VMPILOT_SPOT_NOTICE, default none)").choices(['aws', 'none']))
    .option('--metadata-url <url>', 'the instance metadata service the spot notice is read from (env VMPILOT_METADATA_URL, default http://169.254.169.254)')
    .option('--drain-before <seconds>', 'take no new work this long before the deadline (a batch job end, MJF shutdowntime, --lifetime) (env VMPILOT_DRAIN_BEFORE_SEC, default: 60 s before the deadline minus --grace)')
    .option('--external-id <id>', "the id the server shows for this pilot, e.g. the cloud instance id (env VMPILOT_EXTERNAL_ID, default: the batch job's id)")
    .option('--label <key=value>', 'a label the server shows for this pilot, e.g. site=CERN-PROD (repeatable; env VMPILOT_LABELS=k=v,k=v)', (v: string, prev?: string[]) => [...(prev ?? []), v])
    .option('--artifacts-via <url>', "fetch the bootstrap's http(s) artifacts through this vmpilot relay's cache, e.g. http://LOGIN:PORT (env VMPILOT_ARTIFACTS_VIA)")
    .addOption(new Option('--log-level <level>', 'log level (env VMPILOT_LOG_LEVEL, default info)').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
    .addHelpText(
      'after',
      `
Every flag can also come from the environment (VMPILOT_*) or a YAML file
(--config, keys in camelCase: server, token, tokenFile, cores, memoryMb,
idleTimeoutSec, halt, stateDir, graceSec, logLevel, lifetimeSec, isolation,
drainBeforeSec, externalId, labels: { site: CERN-PROD }, gpus, gpuMemoryMb,
arch, platform, site, tags, scratchMb).
In a batch job the server shows the job's id (SLURM_JOB_ID, PBS_JOBID, JOB_ID)
and a label batch=slurm|pbs|sge|condor beside the labels given.
Flags win over the environment, the environment over the file. The
registration token never goes on the command line (every process on the node
can read it there): --token-file FILE, VMPILOT_PILOT_TOKEN, or the config file.

The capabilities (arch, platform, GPUs, site, tags, scratch) are matched
against payloads' requirements; each payload asking for GPUs gets its own in
CUDA_VISIBLE_DEVICES, as a slot account and in a sandbox alike
(docs/requirements.md). Labels are only shown: a label site=X matches no
requirement, --site X does.

Payloads cannot read the agent's state, credential or token. As root (a VM)
each runs as its own vmpilot-slotN account (created when missing) in a
cgroup it cannot leave; otherwise (a batch job) in a user and PID namespace
(bwrap, else unshare) that hides the state directory and the agent's /proc.
Where neither works the agent logs "isolation: none" and tells the server,
which can keep payloads of groups that require isolation from it.

Logs are JSON lines on stderr. The state directory holds state.json, one
folder per payload (payloads/<id>/ with stdout, stderr, tmp/) and, at the end,
shutdown_message ("NNN text: reason", e.g. "100 Shutdown as requested: site
downtime"). Exit status: 0 after shutdown codes 100, 200, 300; 14..17 after
400..700; 2 for a bad flag or config value. An agent that cannot start says
why in one plain line on stderr after its log, e.g. "vmpilot: error:
registration refused by URL: the token is not valid for registration (HTTP
401); ... (shutdown code 500, exit status 15)"; the server unreachable until
--orphan-timeout exits 17, a failed bootstrap step 15 (docs/errors.md).
SIGTERM or SIGINT drains, stops payloads (SIGTERM, grace, SIGKILL) and halts
(code 100); SIGUSR1 drains. With --spot-notice aws the agent reads
spot/instance-action from the instance metadata (IMDSv2) with the deadline:
a notice (about two minutes ahead) becomes the deadline, so the agent
drains, stops its payloads a grace before it, and halts (code 100). Payloads stopped by a halt, a signal, the deadline
or the lease fence are reported evicted: the server queues them again. Restarted with the same state directory after a
crash, the agent carries on as the same pilot and re-attaches to its payloads.

Examples:
  VMPILOT_PILOT_TOKEN=... vmpilot run --server http://127.0.0.1:8080 --cores 4
  vmpilot run --server https://pilots.example.org --token-file /etc/vmpilot/token --halt poweroff
  vmpilot run --config /etc/vmpilot/vmpilot.yaml --spot-notice aws --grace 30    # an EC2 spot instance
  vmpilot run --server http://login01:8081 --token-file ~/.vmpilot-token --halt exit   # behind the site's relay
  vmpilot run --server file:///shared/vmpilot/$SLURM_JOB_ID --token-file ~/.vmpilot-token --state-dir $TMPDIR/vmpilot   # no network: a mailbox
  vmpilot run --server https://pilots.example.org --token-file /etc/vmpilot/token --site CERN --tag cvmfs --tag apptainer --gpus 2
  VMPILOT_SERVER=https://pilots.example.org vmpilot run --config /etc/vmpilot.yaml --halt poweroff`,
    )
    .action(async (opts: Record<string, unknown>) => {
      const { runAgent } = await import('../agent/main.js');
      await runAgent(opts);
    });

  const probe = program
    .command('probe')
    .description('Print the cores, memory, disk, load and capabilities (arch, platform, GPUs, site, tags, scratch) this agent would offer, where each value comes from (config, mjf, batch, cgroup, mjf-machine, probe) and why it won, its deadline, and how it would isolate payloads.')
    .option('--json', 'print JSON instead of text')
    .addOption(new Option('--isolation <how>', 'the isolation to try: auto, bwrap, unshare or none (env VMPILOT_ISOLATION, default auto)').choices(['auto', 'bwrap', 'unshare', 'none']))
    .option('--payload-user <user>', 'as root, the one account payloads would run as (env VMPILOT_PAYLOAD_USER)');
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

"isolation" says how payloads would run (slot-users, payload-user, bwrap,
unshare or none) and what would hold their processes ("containment":
cgroup-v1 or cgroup-v2 as root, pid-namespace in a sandbox, uid for slot
accounts without a cgroup; process-tree is the fallback a payload can
leave), with what was tried and why a stronger one could not be had.

Examples:
  vmpilot probe
  vmpilot probe --cores 4 --memory-mb 8000 --json
  NSLOTS=8 JOB_ID=4711 JOBFEATURES=$TMPDIR/jobfeatures.4711 vmpilot probe --json
  vmpilot probe --gpus 2 --gpu-memory-mb 16000 --site CERN --tag cvmfs --json
  vmpilot probe --json --isolation unshare`,
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
