/**
 * Reading what the batch systems say: the job id sbatch or qsub prints, and
 * the jobs squeue, `qstat -f` (PBS, Torque) and `qstat -xml` (Grid Engine)
 * list, reduced to id, name, state and submission time. Pure, so each format
 * is tested on text the real commands print.
 */
import type { DriverResource } from '../ports.js';

/** One job as a batch system lists it. */
export interface BatchJob {
  id: string;
  name: string;
  state: DriverResource['state'];
  /** The system's own state word. */
  native: string;
  submittedAt: number | null;
}

/** The job id in what `sbatch --parsable` (`123` or `123;cluster`) or qsub (`123.server`, `Your job 123 ("x") has been submitted`) printed. */
export function parseSubmitted(system: 'slurm' | 'pbs' | 'sge', stdout: string): string | null {
  const text = stdout.trim();
  if (system === 'slurm') return /^(\d+)(;\S+)?$/m.exec(text)?.[1] ?? null;
  if (system === 'sge') return /Your job(?:-array)? (\d+)/.exec(text)?.[1] ?? /^(\d+)$/m.exec(text)?.[1] ?? null;
  return /^(\d+(?:\.[A-Za-z0-9._-]+)?)$/m.exec(text)?.[1] ?? null;
}

const SLURM_PENDING = new Set(['PENDING', 'CONFIGURING', 'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED', 'RESV_DEL_HOLD', 'SPECIAL_EXIT']);
const SLURM_RUNNING = new Set(['RUNNING', 'COMPLETING', 'SUSPENDED', 'STOPPED', 'SIGNALING', 'STAGE_OUT', 'RESIZING']);

/** The state of a Slurm state word. */
export function slurmState(word: string): DriverResource['state'] {
  if (SLURM_PENDING.has(word)) return 'pending';
  if (SLURM_RUNNING.has(word)) return 'running';
  return 'ended';
}

/** Lines of `squeue -h -t all -o '%i|%j|%T|%V'`. */
export function parseSqueue(stdout: string): BatchJob[] {
  const out: BatchJob[] = [];
  for (const line of stdout.split('\n')) {
    const [id, name, state, submitted] = line.trim().split('|');
    if (!id || !name || !state) continue;
    out.push({ id, name, state: slurmState(state), native: state, submittedAt: timeOf(submitted) });
  }
  return out;
}

/** The state of a PBS/Torque job_state letter. */
export function pbsState(letter: string): DriverResource['state'] {
  if ('QHWTM'.includes(letter)) return 'pending';
  if ('REBSU'.includes(letter)) return 'running';
  return 'ended';
}

/** `qstat -f` (PBS Pro, Torque, Slurm's PBS wrapper): blocks starting "Job Id: ID" with "Key = value" lines. */
export function parseQstatFull(stdout: string): BatchJob[] {
  const out: BatchJob[] = [];
  for (const block of stdout.split(/^(?=Job Id:)/m)) {
    const id = /^Job Id:\s*(\S+)/.exec(block)?.[1];
    if (!id) continue;
    const attr = (k: string) => new RegExp(`^\\s*${k}\\s*=\\s*(.*)$`, 'm').exec(block)?.[1]?.trim();
    const name = attr('Job_Name');
    const state = attr('job_state');
    if (!name || !state) continue;
    out.push({ id, name, state: pbsState(state), native: state, submittedAt: timeOf(attr('qtime') ?? attr('ctime')) });
  }
  return out;
}

/** The state of a Grid Engine state string (qw, hqw, r, t, Rr, s, dr, Eqw, …). */
export function sgeState(code: string): DriverResource['state'] {
  if (code.includes('E') || code.includes('d') || code.includes('z')) return 'ended';
  if (code.includes('r') || code.includes('t') || code.includes('s') || code.includes('S') || code.includes('T')) return 'running';
  return 'pending';
}

/** `qstat -xml`: <job_list> elements with JB_job_number, JB_name, state and a start or submission time. */
export function parseQstatXml(stdout: string): BatchJob[] {
  const out: BatchJob[] = [];
  for (const m of stdout.matchAll(/<job_list\b[^>]*>([\s\S]*?)<\/job_list>/g)) {
    const body = m[1]!;
    const tag = (t: string) => new RegExp(`<${t}>([^<]*)</${t}>`).exec(body)?.[1]?.trim();
    const id = tag('JB_job_number');
    const name = tag('JB_name');
    const state = tag('state');
    if (!id || !name || !state) continue;
    out.push({ id, name: unescapeXml(name), state: sgeState(state), native: state, submittedAt: timeOf(tag('JB_submission_time') ?? tag('JAT_start_time')) });
  }
  return out;
}

function unescapeXml(s: string): string {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}

/** A time the batch systems print (ISO without zone: local time, as they mean it), or null. */
function timeOf(text: string | undefined): number | null {
  if (!text || text === 'N/A' || text === 'Unknown') return null;
  const t = Date.parse(text);
  return Number.isFinite(t) ? t : null;
}
