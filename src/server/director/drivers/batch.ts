/**
 * The `slurm`, `pbs` and `sge` drivers: each instance is one batch job, the
 * script of `vmpilot-server batch-script` with the instance's own
 * credential, submitted with sbatch or qsub on this host or on a login node
 * through ssh (commands.ts). The job's name is the instance's key, which is
 * how the driver finds its jobs (`squeue`/`qstat`, filtered to names with
 * this endpoint's prefix), and what makes a create idempotent: a create
 * whose key already names a job the system knows (finished ones too, while
 * it remembers them) returns that job.
 *
 * `list` shows pending and running jobs only: a finished job holds nothing,
 * and the system forgets it minutes later anyway. `delete` is scancel/qdel;
 * a job that had already finished is not an error.
 */
import type { Clock } from '../../../shared/clock.js';
import { VmpilotError } from '../../../shared/errors.js';
import { batchScript } from '../../delivery/batch-script.js';
import type { AgentRef } from '../../delivery/shell.js';
import type { BatchSettings } from '../driver-settings.js';
import type { CreateRequest, Driver, DriverResource } from '../ports.js';
import { type BatchJob, parseQstatFull, parseQstatXml, parseSqueue, parseSubmitted } from './batch-parse.js';
import { type CommandRunner, commandError } from './commands.js';

/** What a batch driver is made of. */
export interface BatchDriverOptions {
  settings: BatchSettings;
  /** The prefix of this endpoint's keys (credential.ts resourcePrefix). */
  prefix: string;
  /** The agent file the job fetches (from the server's manifest). */
  agent: AgentRef;
  commands: CommandRunner;
  clock: Clock;
  /** How long `delete` waits for a cancelled job to leave the system's running states (default 120 s). */
  deleteWaitMs?: number;
}

/** Where job scripts are written on the cluster when settings.workDir is not given. */
const DEFAULT_JOBS_DIR = '.vmpilot-jobs';

/** A batch system as a driver. */
export class BatchDriver implements Driver {
  readonly kind: string;

  constructor(private readonly o: BatchDriverOptions) {
    this.kind = o.settings.kind;
  }

  async create(request: CreateRequest): Promise<DriverResource> {
    if (!request.key.startsWith(this.o.prefix)) throw new VmpilotError('VMP_INTERNAL', `key ${request.key} is not this endpoint's (${this.o.prefix}…)`);
    const known = (await this.jobs(true)).find((j) => j.name === request.key);
    if (known) return this.resource(known);
    const s = this.o.settings;
    const b = request.bootstrap;
    const script = batchScript({
      system: s.kind,
      server: b.serverUrl,
      token: undefined,
      instanceCredential: b.credential,
      agent: this.o.agent,
      cores: request.cores,
      walltimeSec: request.lifetimeSec,
      drainSec: Math.max(0, Math.min(s.drainBeforeSec, request.lifetimeSec - 60)),
      idleTimeoutSec: b.idleTimeoutSec,
      graceSec: b.graceSec,
      jobName: request.key,
      queue: s.queue ?? undefined,
      account: s.account ?? undefined,
      sgePe: s.sgePe,
      output: s.output ?? undefined,
      cacheDir: s.cacheDir ?? undefined,
      workDir: s.workDir ?? undefined,
    });
    const argv = this.submitArgv(request.key);
    const r = await this.o.commands.run(argv, { input: script });
    if (r.exitCode !== 0) throw commandError(this.o.commands.where, [s.kind === 'slurm' ? 'sbatch' : 'qsub'], r);
    const id = parseSubmitted(s.kind, r.stdout);
    if (!id) throw new VmpilotError('VMP_DRIVER', `${s.kind === 'slurm' ? 'sbatch' : 'qsub'} on ${this.o.commands.where} printed no job id: ${r.stdout.trim().slice(0, 200) || '(nothing)'}`);
    return { id, key: request.key, state: 'pending', createdAt: this.o.clock.now(), detail: 'submitted' };
  }

  async list(): Promise<DriverResource[]> {
    return (await this.jobs(false)).filter((j) => j.state !== 'ended').map((j) => this.resource(j));
  }

  async describe(id: string): Promise<DriverResource | null> {
    const job = (await this.jobs(true)).find((j) => j.id === id);
    return job ? this.resource(job) : null;
  }

  async delete(id: string): Promise<void> {
    const argv = this.o.settings.kind === 'slurm' ? ['scancel', id] : ['qdel', id];
    const r = await this.o.commands.run(argv);
    const gone = async () => {
      const still = (await this.jobs(true)).find((j) => j.id === id);
      return !still || still.state === 'ended';
    };
    // already finished or unknown: nothing to remove
    if (r.exitCode !== 0 && !(await gone())) throw commandError(this.o.commands.where, argv, r);
    // a cancelled job is still completing while its processes are stopped: done only once it is not
    const until = this.o.clock.now() + (this.o.deleteWaitMs ?? 120_000);
    while (!(await gone())) {
      if (this.o.clock.now() >= until) throw new VmpilotError('VMP_DRIVER', `${this.kind} job ${id} on ${this.o.commands.where} still runs ${(this.o.deleteWaitMs ?? 120_000) / 1000} s after ${argv[0]}`);
      await this.o.clock.sleep(500);
    }
  }

  async close(): Promise<void> {
    await this.o.commands.close();
  }

  /** The command that submits a script given on stdin, from the jobs directory. */
  private submitArgv(key: string): string[] {
    const s = this.o.settings;
    if (s.kind === 'slurm') return ['sbatch', '--parsable', `--job-name=${key}`, `--comment=vmpilot:${key}`, ...s.submitArgs];
    // qsub from a script file (Slurm's PBS-style qsub does not read stdin), in the jobs directory
    // (Grid Engine's -cwd puts the job's output there)
    const dir = s.workDir ? `${s.workDir}/jobs` : '';
    return [
      'sh', '-c',
      `set -e; d=\${1:-\${HOME:-/tmp}/${DEFAULT_JOBS_DIR}}; k=$2; shift 2; mkdir -p "$d"; cd "$d"; cat > "$k.sh"; exec "$@" "$k.sh"`,
      'vmpilot-submit', dir, key, 'qsub', '-N', key, ...s.submitArgs,
    ];
  }

  /** This endpoint's jobs the system lists; finished ones too when `all` (Slurm keeps them a few minutes). */
  private async jobs(all: boolean): Promise<BatchJob[]> {
    const kind = this.o.settings.kind;
    const argv =
      kind === 'slurm' ? ['squeue', '-h', '--me', ...(all ? ['-t', 'all'] : []), '-o', '%i|%j|%T|%V']
      : kind === 'pbs' ? ['qstat', '-f']
      : ['qstat', '-xml'];
    const r = await this.o.commands.run(argv);
    // Torque's qstat may exit 153 (unknown job) when there are none; Grid Engine and Slurm exit 0
    if (r.exitCode !== 0 && !(kind === 'pbs' && r.exitCode === 153 && r.stdout.trim() === '')) throw commandError(this.o.commands.where, argv, r);
    const jobs = kind === 'slurm' ? parseSqueue(r.stdout) : kind === 'pbs' ? parseQstatFull(r.stdout) : parseQstatXml(r.stdout);
    return jobs.filter((j) => j.name.startsWith(this.o.prefix));
  }

  private resource(j: BatchJob): DriverResource {
    return { id: j.id, key: j.name, state: j.state, createdAt: j.submittedAt, detail: `${this.o.settings.kind} job ${j.id} ${j.native}` };
  }
}
