/**
 * `vmpilot-server batch-script --system slurm|pbs|sge`: a job script that
 * fetches the agent from the server, checks its sha256, and runs it in batch
 * mode: halt action `exit` (the job ends, the batch system frees the node),
 * cores from the allocation, a lifetime of the job's wall time so that no
 * payload is started that cannot end in time, and a drain before the limit:
 * the agent itself drains `--drain-before` seconds before its deadline on
 * every system (PBS has no signal for it), and Slurm (`--signal=B:USR1@N`)
 * and Grid Engine (`s_rt` → SIGUSR1) also signal it then. The SIGTERM a
 * batch system sends at the limit halts the agent, which stops its payloads
 * within the grace time and reports. PBS resources are asked for in Torque's
 * form (`nodes=1:ppn=N`) or, with `pbs: 'pro'`, PBS Professional's and
 * OpenPBS's (`select=1:ncpus=N`): each refuses the other's.
 * With a CA (`--ca-file`), its certificates are written beside the job's
 * state and are the only CA the download and the agent trust.
 *
 * A pure function of checked options; bootstrap/ holds its output for each
 * system with placeholder values.
 */
import { VERSION } from '../../protocol/version.js';
import { VmpilotError } from '../../shared/errors.js';
import { type RegistrationSecret, checkCaPem, checkChoice, checkInt, checkName, checkPath, checkRegistration, checkServerUrl, hms } from './options.js';
import { FETCH_FUNCTIONS, agentVars, shq, type AgentRef } from './shell.js';

/** The PBS flavours: Torque's `nodes=1:ppn=N`, or PBS Professional's / OpenPBS's `select=1:ncpus=N`. */
export const PBS_FLAVOURS = ['torque', 'pro'] as const;
export type PbsFlavour = (typeof PBS_FLAVOURS)[number];

/** The batch systems a script can be made for. */
export const BATCH_SYSTEMS = ['slurm', 'pbs', 'sge'] as const;
export type BatchSystem = (typeof BATCH_SYSTEMS)[number];

/** What `batch-script` is told. */
export interface BatchScriptOptions extends RegistrationSecret {
  system: string;
  /** The server URL as the batch node reaches it. */
  server: string;
  /** The pilot registration token. */
  token: string | undefined;
  agent: AgentRef;
  /** Cores to ask the batch system for. */
  cores: number;
  /** Wall time to ask for, seconds. */
  walltimeSec: number;
  /** Drain this many seconds before the wall time ends. */
  drainSec: number;
  /** The agent halts after this long without a payload. */
  idleTimeoutSec: number;
  /** Seconds between SIGTERM and SIGKILL of payloads when the agent halts. */
  graceSec: number;
  jobName: string;
  /** Partition (Slurm) or queue (PBS, Grid Engine). */
  queue?: string | undefined;
  /** Account / project to charge. */
  account?: string | undefined;
  /** Grid Engine parallel environment with allocation_rule $pe_slots. */
  sgePe: string;
  /** Where the job's stdout and stderr go (a file path; the system's default when absent). */
  output?: string | undefined;
  /** Agent cache shared by jobs on a node; default $HOME/.cache/vmpilot. */
  cacheDir?: string | undefined;
  /** Where each job's state directory goes (vmpilot-job-<id> inside); default $TMPDIR or /tmp. */
  workDir?: string | undefined;
  /** With `system: 'pbs'`: how resources are asked for (default torque). */
  pbs?: PbsFlavour | undefined;
  /** A CA to trust, and only it, for the download and the agent: the file it came from (for messages) and its PEM text. */
  ca?: { file: string; pem: string } | undefined;
}

/** The defaults of the optional knobs. */
export const BATCH_DEFAULTS = { cores: 1, walltimeSec: 3600, drainSec: 300, idleTimeoutSec: 300, graceSec: 30, jobName: 'vmpilot', sgePe: 'smp' } as const;

/**
 * The drain when `--drain-before` is not given: BATCH_DEFAULTS.drainSec, or
 * a quarter of a wall time too short for it (a drain must leave 60 s of the
 * wall time: 50 s for `--walltime 200`). Pure.
 */
export function defaultDrainSec(walltimeSec: number): number {
  return walltimeSec - BATCH_DEFAULTS.drainSec >= 60 ? BATCH_DEFAULTS.drainSec : Math.max(0, Math.floor(walltimeSec / 4));
}

function header(system: BatchSystem, o: BatchScriptOptions): string[] {
  const wall = hms(o.walltimeSec);
  if (system === 'slurm') {
    return [
      `#SBATCH --job-name=${o.jobName}`,
      '#SBATCH --nodes=1',
      '#SBATCH --ntasks=1',
      `#SBATCH --cpus-per-task=${o.cores}`,
      `#SBATCH --time=${wall}`,
      // SIGUSR1 to the batch shell (the agent: it execs) this long before the limit: drain
      `#SBATCH --signal=B:USR1@${o.drainSec}`,
      ...(o.queue ? [`#SBATCH --partition=${o.queue}`] : []),
      ...(o.account ? [`#SBATCH --account=${o.account}`] : []),
      ...(o.output ? [`#SBATCH --output=${o.output}`] : []),
    ];
  }
  if (system === 'pbs') {
    return [
      `#PBS -N ${o.jobName}`,
      o.pbs === 'pro' ? `#PBS -l select=1:ncpus=${o.cores}` : `#PBS -l nodes=1:ppn=${o.cores}`,
      `#PBS -l walltime=${wall}`,
      '#PBS -j oe',
      ...(o.queue ? [`#PBS -q ${o.queue}`] : []),
      ...(o.account ? [`#PBS -A ${o.account}`] : []),
      ...(o.output ? [`#PBS -o ${o.output}`] : []),
    ];
  }
  return [
    `#$ -N ${o.jobName}`,
    '#$ -S /bin/bash',
    '#$ -cwd',
    '#$ -j y',
    `#$ -pe ${o.sgePe} ${o.cores}`,
    // s_rt sends SIGUSR1 (drain) at the soft limit; h_rt kills at the hard one
    `#$ -l h_rt=${wall},s_rt=${hms(o.walltimeSec - o.drainSec)}`,
    ...(o.queue ? [`#$ -q ${o.queue}`] : []),
    ...(o.account ? [`#$ -A ${o.account}`] : []),
    ...(o.output ? [`#$ -o ${o.output}`] : []),
  ];
}

/** Shell lines that set job_id, cores and lifetime from the allocation. */
function allocation(system: BatchSystem): string {
  if (system === 'slurm') {
    return String.raw`job_id=${'$'}{SLURM_JOB_ID:-$$}
cores=${'$'}{SLURM_CPUS_ON_NODE:-}
# Slurm sets no end-time variable: ask squeue for the time left ([D-]HH:MM:SS, MM:SS or UNLIMITED)
left=$(squeue -h -j "$job_id" -o %L 2>/dev/null || true)
case $left in
*-*:*:*) lifetime=$(( ${'$'}{left%%-*} * 86400 + $(echo "${'$'}{left#*-}" | awk -F: '{print $1*3600+$2*60+$3}') )) ;;
*:*:*) lifetime=$(echo "$left" | awk -F: '{print $1*3600+$2*60+$3}') ;;
*:*) lifetime=$(echo "$left" | awk -F: '{print $1*60+$2}') ;;
esac`;
  }
  if (system === 'pbs') {
    // Slurm's PBS-style qsub (slurm-wlm-torque) sets no PBS_* variables by default: fall back to Slurm's
    return String.raw`job_id=${'$'}{PBS_JOBID:-${'$'}{SLURM_JOB_ID:-$$}}
job_id=${'$'}{job_id%%.*}
cores=${'$'}{PBS_NUM_PPN:-${'$'}{PBS_NP:-${'$'}{NCPUS:-${'$'}{SLURM_CPUS_ON_NODE:-}}}}
if [ -z "$cores" ] && [ -n "${'$'}{PBS_NODEFILE:-}" ] && [ -r "$PBS_NODEFILE" ]; then cores=$(wc -l < "$PBS_NODEFILE"); fi`;
  }
  return String.raw`job_id=${'$'}{JOB_ID:-$$}
cores=${'$'}{NSLOTS:-}`;
}

/** Check every option; throws VMP_USAGE naming the first bad one. */
export function checkBatchOptions(o: BatchScriptOptions): BatchSystem {
  const system = checkChoice('--system', o.system, BATCH_SYSTEMS);
  checkServerUrl('--server', o.server);
  checkRegistration(o);
  checkInt('--cores', o.cores, 1, 4096);
  checkInt('--walltime', o.walltimeSec, 120, 366 * 86400);
  checkInt('--drain-before', o.drainSec, 0, o.walltimeSec - 60);
  checkInt('--idle-timeout', o.idleTimeoutSec, 0, 30 * 86400);
  checkInt('--grace', o.graceSec, 0, 3600);
  checkName('--job-name', o.jobName);
  checkName('--sge-pe', o.sgePe);
  if (o.queue !== undefined) checkName('--queue', o.queue);
  if (o.account !== undefined) checkName('--account', o.account);
  if (o.output !== undefined) checkPath('--output', o.output);
  if (o.cacheDir !== undefined) checkPath('--cache-dir', o.cacheDir);
  if (o.workDir !== undefined) checkPath('--work-dir', o.workDir);
  if (o.pbs !== undefined) {
    checkChoice('--pbs', o.pbs, PBS_FLAVOURS);
    if (system !== 'pbs') throw new VmpilotError('VMP_USAGE', `--pbs ${o.pbs}: only with --system pbs`);
  }
  if (o.ca !== undefined) checkCaPem('--ca-file', o.ca.file, o.ca.pem);
  return system;
}

/** The job script, from checked options. */
export function batchScript(o: BatchScriptOptions): string {
  const system = checkBatchOptions(o);
  const server = checkServerUrl('--server', o.server);
  const run = o.agent.kind === 'bundle' ? 'node "$VMPILOT_AGENT"' : '"$VMPILOT_AGENT"';
  // the CA goes beside the job's state before anything is fetched; curl, wget, python3 and the agent read VMPILOT_CA_FILE
  const ca = o.ca
    ? `cat > "$work/ca.pem" <<'VMPILOT_CA'\n${checkCaPem('--ca-file', o.ca.file, o.ca.pem)}VMPILOT_CA\nexport VMPILOT_CA_FILE="$work/ca.pem"\n`
    : '';
  return `#!/bin/bash
${header(system, o).join('\n')}
#
# vmpilot pilot job for ${system}, made by vmpilot-server batch-script ${VERSION}.
# Fetches the agent from the server, checks its sha256 before running it, and
# runs it until there is no more work: it exits 0 when it halted normally,
# 15 on a bootstrap or environment problem (shutdown code 500).
set -eu
${agentVars(server, o.agent)}
export VMPILOT_PILOT_TOKEN=${shq(checkRegistration(o))}
walltime=${o.walltimeSec}
lifetime=$walltime
${allocation(system)}
cache=${o.cacheDir ? shq(o.cacheDir) : '"${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/vmpilot"'}
work=${o.workDir ? `${shq(o.workDir)}/vmpilot-job-$job_id` : '"${TMPDIR:-/tmp}/vmpilot-job-$job_id"'}

${FETCH_FUNCTIONS}

mkdir -p "$work" || vmpilot_fail "cannot create $work"
${ca}vmpilot_check_node
vmpilot_install_agent "$cache"
cd "$work"
echo "vmpilot job $job_id: agent $VMPILOT_AGENT, cores \${cores:-probed}, lifetime \${lifetime}s" >&2
exec ${run} run --server "$VMPILOT_SERVER" --halt exit --state-dir "$work/state" \\
  --idle-timeout ${o.idleTimeoutSec} --grace ${o.graceSec} --lifetime "$lifetime" --drain-before ${o.drainSec} \${cores:+--cores "$cores"}
`;
}
