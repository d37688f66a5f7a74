/**
 * The admin commands: submit, jobs, job, pilots (halt and drain: bulk.ts). Each builds a
 * request from its options, calls the server through AdminClient and prints
 * the result on stdout (`--json` prints exactly what the API returned).
 */
import {
  RequirementError,
  normaliseRequirements,
  type CoreRequest,
  type PayloadHistoryEntry,
  type PayloadView,
  type PilotView,
  type RequirementKey,
  type Requirements,
  type SubmitReply,
  type SubmitRequest,
} from '../../protocol/index.js';
import { CoreRequestError, parseCoreRequest } from '../../protocol/cores.js';
import { paths } from '../../protocol/paths.js';
import { systemClock } from '../../shared/clock.js';
import { isVmpilotError } from '../../shared/errors.js';
import { usageError } from '../run-main.js';
import { AdminClient, type ClientOptions } from './client.js';
import { coreSecSummary, payloadDetail, payloadTable, pilotTable } from './format.js';
import { visibleJson } from './visible.js';

type Out = (text: string) => void;
const stdout: Out = (text) => process.stdout.write(`${text}\n`);

/** A whole number from flag `flag`, within [min, max]; a usage error otherwise. */
export function intOption(flag: string, value: string, min: number, max: number): number {
  const n = /^-?\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw usageError(`${flag} "${value}" must be a whole number from ${min} to ${max}`);
  }
  return n;
}

/** Options of `submit`, as commander gives them. */
export interface SubmitOptions extends ClientOptions {
  cores?: string;
  wholeNode?: boolean;
  memoryMb?: string;
  wall?: string;
  group?: string;
  name?: string;
  priority?: string;
  env: string[];
  /** false with --no-requeue (commander's default is true). */
  requeue?: boolean;
  gpus?: string;
  gpuMemoryMb?: string;
  arch?: string[];
  platform?: string[];
  site?: string[];
  notSite?: string[];
  tag?: string[];
  scratchMb?: string;
}

/** The submit flag of each requirement key (docs/requirements.md). */
export const REQUIREMENT_FLAGS: Readonly<Record<RequirementKey, string>> = {
  gpus: '--gpus',
  gpuMemoryMb: '--gpu-memory-mb',
  arch: '--arch',
  platform: '--platform',
  site: '--site',
  notSite: '--not-site',
  tag: '--tag',
  scratchMb: '--scratch-mb',
};

/**
 * The requirements `submit`'s flags ask for, normalised; null when none.
 * List flags may repeat and hold commas. Throws a usage error naming the flag.
 */
export function requirementsFromFlags(o: Omit<SubmitOptions, keyof ClientOptions>): Requirements | null {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(REQUIREMENT_FLAGS) as RequirementKey[]) {
    const v = o[key];
    if (v !== undefined && !(Array.isArray(v) && v.length === 0)) raw[key] = v;
  }
  if (Object.keys(raw).length === 0) return null;
  try {
    const r = normaliseRequirements(raw);
    return Object.keys(r).length > 0 ? r : null;
  } catch (err) {
    if (!(err instanceof RequirementError)) throw err;
    const flag = REQUIREMENT_FLAGS[err.key as RequirementKey] ?? err.key;
    throw usageError(`${flag} ${JSON.stringify(err.value)}: expected ${err.expected}`, 'docs/requirements.md lists every requirement and its values');
  }
}

/** Turn `submit`'s options into a SubmitRequest; throws usage errors naming the flag. Pure. */
export function submitRequest(command: string[], o: Omit<SubmitOptions, keyof ClientOptions>): SubmitRequest {
  if (command.length === 0) throw usageError('no command to submit', 'put it after --, e.g. submit -- /bin/echo hello');
  const request: SubmitRequest = { command };
  if (o.cores !== undefined && o.wholeNode) throw usageError('--cores and --whole-node cannot be used together');
  if (o.wholeNode) request.cores = { min: 1, max: 1, wholeNode: true };
  if (o.cores !== undefined) {
    let cores: CoreRequest;
    try {
      cores = parseCoreRequest(o.cores);
    } catch (err) {
      if (!(err instanceof CoreRequestError)) throw err;
      // the parser names the value itself ('cores "0": at least 1 core'): say it once, after the flag
      throw usageError(`--cores "${o.cores}"${err.problem}`, 'use N, MIN-MAX or whole, e.g. --cores 4 or --cores 2-8');
    }
    request.cores = cores;
  }
  if (o.memoryMb !== undefined) request.memoryMb = intOption('--memory-mb', o.memoryMb, 1, 64 * 1024 * 1024);
  if (o.wall !== undefined) request.wallSec = intOption('--wall', o.wall, 1, 366 * 24 * 3600);
  if (o.group !== undefined) {
    if (!/^[A-Za-z0-9_.-]{1,100}$/.test(o.group)) throw usageError(`--group "${o.group}" may hold only letters, digits, _ . -`);
    request.group = o.group;
  }
  if (o.name !== undefined) request.name = o.name;
  if (o.priority !== undefined) request.priority = intOption('--priority', o.priority, -1000, 1000);
  if (o.env.length > 0) {
    const env: Record<string, string> = {};
    for (const kv of o.env) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(kv);
      if (!m?.[1]) throw usageError(`--env "${kv}" is not NAME=VALUE`);
      env[m[1]] = m[2] ?? '';
    }
    request.env = env;
  }
  if (o.requeue === false) request.requeue = false;
  const requirements = requirementsFromFlags(o);
  if (requirements) request.requirements = requirements;
  return request;
}

/** `submit`: prints the new payload's id (`--json`: a JSON array of it, as `submit --file` prints its ids). */
export async function submit(command: string[], o: SubmitOptions & { json?: boolean }, out: Out = stdout): Promise<void> {
  const body = submitRequest(command, o);
  const reply = await new AdminClient(o).post<SubmitReply>(paths.payloads, body);
  out(o.json ? JSON.stringify([reply.id]) : String(reply.id));
}

/** Options of `jobs`, as commander gives them. */
export interface JobsOptions extends ClientOptions {
  state?: string;
  group?: string;
  pilot?: string;
  limit?: string;
  json?: boolean;
}

const PILOT_STATES = ['submitted', 'booting', 'running', 'draining', 'halting', 'halted', 'stalled', 'error'];

/** The most rows a listing page holds (the server's PAGE_MAX): the CLI asks for full pages. */
const PAGE = 500;

/**
 * Every row of a listing, or the newest `max`, read page by page (each page
 * named by the one before's Link header); in id order, oldest first, as the
 * tables have always been.
 */
export async function listing<T extends { id: number }>(client: AdminClient, path: string, q: URLSearchParams, max = Infinity): Promise<T[]> {
  q.set('limit', String(Math.min(PAGE, max)));
  const rows = await client.getPages<T>(`${path}?${q.toString()}`, max);
  return rows.sort((a, b) => a.id - b.id);
}

/** The number `--limit` asks for, or Infinity without it. */
function limitOption(o: { limit?: string }): number {
  return o.limit === undefined ? Infinity : intOption('--limit', o.limit, 1, Number.MAX_SAFE_INTEGER);
}

/** `jobs`: a table of payloads and their core-seconds by outcome, or their JSON array (control characters escaped). */
export async function jobs(o: JobsOptions, out: Out = stdout): Promise<void> {
  const q = new URLSearchParams();
  if (o.state) q.set('state', o.state);
  if (o.group) q.set('group', o.group);
  if (o.pilot) q.set('pilot', String(intOption('--pilot', o.pilot, 1, Number.MAX_SAFE_INTEGER)));
  const list = await listing<PayloadView>(new AdminClient(o), paths.payloads, q, limitOption(o));
  if (o.json) return out(visibleJson(list));
  const table = payloadTable(list, systemClock.now());
  out(list.length === 0 ? table : `${table}\n\n${coreSecSummary(list)}`);
}

/** `job ID`: one payload with its history and output tail. */
export async function job(id: string, o: ClientOptions & { json?: boolean }, out: Out = stdout): Promise<void> {
  const n = intOption('ID', id, 1, Number.MAX_SAFE_INTEGER);
  const client = new AdminClient(o);
  const p = await client.get<PayloadView>(paths.payload(n));
  if (o.json) return out(visibleJson(p));
  // a server older than the history route answers 404: show the payload without it
  const history = await client.get<PayloadHistoryEntry[]>(paths.payloadHistory(n)).catch((err: unknown) => {
    if (isVmpilotError(err, 'VMP_NOT_FOUND')) return null;
    throw err;
  });
  out(payloadDetail(p, systemClock.now(), history));
}

/** `pilots`: a table of pilots, or their JSON array (control characters escaped). */
export async function pilots(o: ClientOptions & { json?: boolean; state?: string; limit?: string }, out: Out = stdout): Promise<void> {
  const q = new URLSearchParams();
  if (o.state !== undefined) {
    const bad = o.state.split(',').find((s) => !PILOT_STATES.includes(s));
    if (bad !== undefined) throw usageError(`--state "${o.state}": "${bad}" is not a pilot state (${PILOT_STATES.join(', ')})`);
    q.set('state', o.state);
  }
  const list = await listing<PilotView>(new AdminClient(o), paths.pilots, q, limitOption(o));
  out(o.json ? visibleJson(list) : pilotTable(list, systemClock.now()));
}
