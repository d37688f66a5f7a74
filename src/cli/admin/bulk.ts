/**
 * Admin commands on many records at once: `submit --file jobs.yaml` (all
 * payloads queued in one request, all or none), `drain`/`halt` of every pilot
 * matching a filter, `kill` of a payload, and `accounting`.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type {
  AccountingEntry,
  InstanceCostEntry,
  InstructionReply,
  InstructionRequest,
  KillReply,
  PilotState,
  ResubmitReply,
  PilotView,
  SubmitBatchReply,
  SubmitRequest,
} from '../../protocol/index.js';
import { REQUIREMENT_KEYS, RequirementError, normaliseRequirements, type Requirements } from '../../protocol/index.js';
import { paths } from '../../protocol/paths.js';
import { describeError } from '../../shared/errors.js';
import { usageError } from '../run-main.js';
import { AdminClient, type ClientOptions } from './client.js';
import { intOption, submitRequest } from './commands.js';
import { instanceCostTable } from './director-format.js';
import { accountingTables } from './format.js';
import { globMatch } from './glob.js';
import { visibleJson } from './visible.js';

type Out = (text: string) => void;
const stdout: Out = (text) => process.stdout.write(`${text}\n`);

const KEYS = ['command', 'cores', 'memoryMb', 'wallSec', 'group', 'name', 'priority', 'env', 'requeue', 'count', ...REQUIREMENT_KEYS];

/**
 * The payloads of a jobs file: a list of payloads, or `{ defaults, payloads }`.
 * Each payload: `command` (a list, or a string run by /bin/sh -c), `cores`
 * (N, "MIN-MAX" or "whole"), `memoryMb`, `wallSec`, `group`, `name`,
 * `priority`, `env` (a mapping), `requeue` (false: never run it again after
 * the infrastructure ended an attempt), `count` (queue it this many times),
 * and the requirement keys (docs/requirements.md: `gpus`, `gpuMemoryMb`,
 * `arch`, `platform`, `site`, `notSite`, `tag`, `scratchMb`; lists as YAML
 * lists or comma-separated strings). `flags.group` (`submit --file F --group
 * G`) is the group of every payload that names none itself: a payload's own
 * `group` wins, then `--group`, then the file's `defaults`. Pure; throws
 * usage errors naming `payloads[i].field`.
 */
export function jobsFromYaml(text: string, file = 'jobs file', flags: { group?: string | undefined } = {}): SubmitRequest[] {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw usageError(`${file} is not valid YAML: ${describeError(err)}`);
  }
  const top = doc as { defaults?: unknown; payloads?: unknown } | unknown[] | null;
  const list = Array.isArray(top) ? top : top && typeof top === 'object' ? (top as { payloads?: unknown }).payloads : undefined;
  const defaults = !Array.isArray(top) && top && typeof top === 'object' ? (top as { defaults?: unknown }).defaults ?? {} : {};
  if (!Array.isArray(list) || list.length === 0) {
    throw usageError(`${file} holds no payloads`, 'write a list of payloads, or "payloads:" with a list (and optional "defaults:")');
  }
  if (typeof defaults !== 'object' || defaults === null || Array.isArray(defaults)) throw usageError(`${file}: defaults must be a mapping`);
  const out: SubmitRequest[] = [];
  list.forEach((item, i) => {
    const where = `${file}: payloads[${i}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw usageError(`${where} must be a mapping with a command`);
    const p: Record<string, unknown> = { ...(defaults as Record<string, unknown>), ...(flags.group === undefined ? {} : { group: flags.group }), ...(item as Record<string, unknown>) };
    const unknown = Object.keys(p).find((k) => !KEYS.includes(k));
    if (unknown) throw usageError(`${where}.${unknown} is not a payload field (known: ${KEYS.join(', ')})`);
    const command =
      typeof p.command === 'string' ? ['/bin/sh', '-c', p.command]
      : Array.isArray(p.command) && p.command.every((a) => typeof a === 'string' || typeof a === 'number') ? p.command.map(String)
      : null;
    if (!command || command.length === 0) throw usageError(`${where}.command must be a string or a list of strings`);
    const str = (k: string) => (p[k] === undefined || p[k] === null ? undefined : String(p[k]));
    const env = p.env === undefined ? [] : envList(p.env, `${where}.env`);
    if (p.requeue !== undefined && typeof p.requeue !== 'boolean') throw usageError(`${where}.requeue must be true or false, not ${JSON.stringify(p.requeue)}`);
    let request: SubmitRequest;
    try {
      const cores = str('cores');
      request = submitRequest(command, {
        ...(cores === 'whole' ? { wholeNode: true } : cores !== undefined ? { cores } : {}),
        ...(str('memoryMb') !== undefined ? { memoryMb: str('memoryMb') } : {}),
        ...(str('wallSec') !== undefined ? { wall: str('wallSec') } : {}),
        ...(str('group') !== undefined ? { group: str('group') } : {}),
        ...(str('name') !== undefined ? { name: str('name') } : {}),
        ...(str('priority') !== undefined ? { priority: str('priority') } : {}),
        ...(p.requeue === false ? { requeue: false } : {}),
        env,
      });
    } catch (err) {
      throw usageError(`${where}: ${describeError(err).replace('--wall', 'wallSec').replace('--memory-mb', 'memoryMb').replace(/--/g, '')}`);
    }
    const requirements = requirementsOf(p, where);
    if (requirements) request.requirements = requirements;
    const count = p.count === undefined ? 1 : intOption(`${where}.count`, String(p.count), 1, 10000);
    for (let n = 0; n < count; n++) out.push(request);
  });
  if (out.length > 10000) throw usageError(`${file} asks for ${out.length} payloads; at most 10000 per file`);
  return out;
}

/** The requirements of one payload entry, normalised; null when it has none. Usage errors name `payloads[i].key`. */
function requirementsOf(p: Record<string, unknown>, where: string): Requirements | null {
  const raw = Object.fromEntries(REQUIREMENT_KEYS.filter((k) => p[k] !== undefined).map((k) => [k, p[k]]));
  if (Object.keys(raw).length === 0) return null;
  try {
    const r = normaliseRequirements(raw);
    return Object.keys(r).length > 0 ? r : null;
  } catch (err) {
    if (err instanceof RequirementError) throw usageError(`${where}.${err.message}`, 'docs/requirements.md lists every requirement and its values');
    throw err;
  }
}

function envList(env: unknown, where: string): string[] {
  if (typeof env !== 'object' || env === null || Array.isArray(env)) throw usageError(`${where} must be a mapping NAME: value`);
  return Object.entries(env as Record<string, unknown>).map(([k, v]) => `${k}=${String(v)}`);
}

/** The flags of one payload that `submit --file` refuses (they would be ignored): the file says these per payload. */
const ONE_PAYLOAD_FLAGS: [keyof FileSubmitOptions, string, string][] = [
  ['cores', '--cores', 'cores'],
  ['wholeNode', '--whole-node', 'cores: whole'],
  ['memoryMb', '--memory-mb', 'memoryMb'],
  ['wall', '--wall', 'wallSec'],
  ['name', '--name', 'name'],
  ['priority', '--priority', 'priority'],
  ['env', '--env', 'env'],
  ['requeue', '--no-requeue', 'requeue: false'],
];

/** The options `submit --file` is given (commander's, with the payload flags it refuses). */
export interface FileSubmitOptions extends ClientOptions {
  json?: boolean;
  group?: string;
  cores?: string;
  wholeNode?: boolean;
  memoryMb?: string;
  wall?: string;
  name?: string;
  priority?: string;
  env?: string[];
  requeue?: boolean;
}

/**
 * `submit --file FILE`: queue every payload of the file, print their ids one
 * per line (or a JSON array). `--group` is the default group of its
 * payloads; the other payload flags are refused, naming the field to write
 * in the file instead.
 */
export async function submitFile(file: string, o: FileSubmitOptions, out: Out = stdout): Promise<void> {
  for (const [key, flag, field] of ONE_PAYLOAD_FLAGS) {
    const v = o[key];
    const given = key === 'requeue' ? v === false : Array.isArray(v) ? v.length > 0 : v !== undefined && v !== false;
    if (given) throw usageError(`${flag} cannot be used with --file: it would not apply to the file's payloads`, `write "${field}" in ${file}, for each payload or under "defaults:"`);
  }
  if (o.group !== undefined && !/^[A-Za-z0-9_.-]{1,100}$/.test(o.group)) throw usageError(`--group "${o.group}" may hold only letters, digits, _ . -`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw usageError(`cannot read --file ${file}: ${describeError(err)}`);
  }
  const payloads = jobsFromYaml(text, file, { group: o.group });
  const reply = await new AdminClient(o).post<SubmitBatchReply>(paths.payloadsBatch, { payloads });
  out(o.json ? JSON.stringify(reply.ids) : reply.ids.join('\n'));
}

/** Which pilots a drain or halt goes to: one id, or every live pilot matching the filters. */
export interface PilotSelection {
  all?: boolean;
  state?: string;
  host?: string;
}

const LIVE: PilotState[] = ['submitted', 'booting', 'running', 'draining', 'halting', 'stalled', 'error'];

/**
 * The pilots `sel` selects from `pilots` (never a halted one): `--host` is a
 * glob over the whole host name (glob.ts: `*`, `?`, case-insensitive; never
 * slow, whatever the pattern or the name). Pure; throws usage errors.
 */
export function selectPilots(pilots: PilotView[], sel: PilotSelection): PilotView[] {
  checkSelection(sel);
  const host = sel.host;
  return pilots.filter(
    (p) => p.state !== 'halted' && (sel.state === undefined || p.state === sel.state) && (host === undefined || globMatch(host, p.hostname)),
  );
}

function checkSelection(sel: PilotSelection): void {
  if (sel.state !== undefined && !LIVE.includes(sel.state as PilotState)) {
    throw usageError(`--state "${sel.state}" must be one of ${LIVE.join(', ')}`);
  }
  if (sel.host !== undefined && (sel.host.length === 0 || sel.host.length > 255)) {
    throw usageError(`--host "${sel.host}" must be a glob of 1 to 255 characters, e.g. '*.cern.ch'`);
  }
}

/**
 * `drain`/`halt` with PILOT or with --all/--state/--host: send the
 * instruction to each selected pilot; prints "PILOT INSTRUCTION" per line.
 */
export async function instructMany(
  pilot: string | undefined,
  kind: 'halt' | 'drain',
  o: ClientOptions & PilotSelection & { code?: string; reason?: string },
  out: Out = stdout,
): Promise<void> {
  const filtered = o.all || o.state !== undefined || o.host !== undefined;
  if (pilot !== undefined && filtered) throw usageError(`give a PILOT id or --all/--state/--host, not both`);
  if (pilot === undefined && !filtered) throw usageError(`${kind} needs a PILOT id, or --all, --state S or --host GLOB`);
  checkSelection(o);
  const client = new AdminClient(o);
  // only live pilots, page by page (the server filters by state; the host glob is matched here)
  const live = `${paths.pilots}?state=${o.state ?? LIVE.join(',')}&limit=500`;
  const ids =
    pilot !== undefined
      ? [intOption('PILOT', pilot, 1, Number.MAX_SAFE_INTEGER)]
      : selectPilots(await client.getPages<PilotView>(live), o)
          .map((p) => p.id)
          .sort((a, b) => a - b);
  const body: InstructionRequest =
    kind === 'halt'
      ? {
          type: 'halt',
          ...(o.code !== undefined ? { code: intOption('--code', o.code, 100, 999) } : {}),
          ...(o.reason !== undefined ? { reason: o.reason } : {}),
        }
      : { type: 'drain', ...(o.reason !== undefined ? { reason: o.reason } : {}) };
  for (const id of ids) {
    const reply = await client.post<InstructionReply>(paths.instructions(id), body);
    out(pilot !== undefined ? String(reply.instruction.id) : `${id} ${reply.instruction.id}`);
    // a drain is kept until the halt: the server answers a second one with the first, and sends nothing
    if (reply.existing) process.stderr.write(`pilot ${id} already has drain instruction ${reply.instruction.id}; nothing new sent\n`);
  }
  if (ids.length === 0) process.stderr.write(`no live pilot matches; nothing sent\n`);
}

/** `kill ID`: cancel a queued payload, or tell its pilot to kill it (it then ends cancelled). */
export async function kill(id: string, o: ClientOptions & { reason?: string; json?: boolean }, out: Out = stdout): Promise<void> {
  const payloadId = intOption('ID', id, 1, Number.MAX_SAFE_INTEGER);
  const reply = await new AdminClient(o).post<KillReply>(paths.payloadKill(payloadId), o.reason ? { reason: o.reason } : {});
  if (o.json) return out(visibleJson(reply));
  out(
    reply.instruction
      ? `payload ${payloadId}: kill-payload instruction ${reply.instruction.id} sent to its pilot; it ends cancelled once stopped`
      : `payload ${payloadId}: cancelled before it ran`,
  );
}

/** `resubmit ID`: queue an ended payload again as a new payload with the same request. */
export async function resubmit(id: string, o: ClientOptions & { json?: boolean }, out: Out = stdout): Promise<void> {
  const payloadId = intOption('ID', id, 1, Number.MAX_SAFE_INTEGER);
  const reply = await new AdminClient(o).post<ResubmitReply>(paths.payloadResubmit(payloadId), {});
  out(o.json ? visibleJson(reply) : `payload ${payloadId} resubmitted as payload ${reply.id}`);
}

/** What is wrong with `text` as a calendar day YYYY-MM-DD (month 1 to 12, a day that month has), or null. Pure. */
export function dayProblem(text: string): string | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!m) return 'is not a day YYYY-MM-DD';
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (month < 1 || month > 12) return `has no month ${m[2]} (months are 01 to 12)`;
  const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day < 1 || day > days) return `has no day ${m[3]}: ${year}-${m[2]} has ${days} days`;
  return null;
}

/** `accounting`: core-seconds, wall seconds, done and failed by group, pilot and day; with `--instances`, what the director's instances cost per group. */
export async function accounting(
  o: ClientOptions & { from?: string; to?: string; group?: string; json?: boolean; instances?: boolean },
  out: Out = stdout,
): Promise<void> {
  if (o.instances) {
    const other = (['from', 'to', 'group'] as const).find((k) => o[k] !== undefined);
    if (other) throw usageError(`--instances gives the instances' totals since the start; it takes no --${other}`, 'leave it out, or run accounting without --instances for the payloads by day');
    const rows = await new AdminClient(o).get<InstanceCostEntry[]>(paths.accountingInstances);
    out(o.json ? visibleJson(rows) : instanceCostTable(rows));
    return;
  }
  const q = new URLSearchParams();
  for (const k of ['from', 'to'] as const) {
    const v = o[k];
    if (v === undefined) continue;
    const bad = dayProblem(v);
    if (bad) throw usageError(`--${k} "${v}" ${bad}`, 'give a day as YYYY-MM-DD, e.g. --from 2025-01-31');
    q.set(k, v);
  }
  if (o.from !== undefined && o.to !== undefined && o.to < o.from) throw usageError(`--to "${o.to}" is before --from "${o.from}"`);
  if (o.group) q.set('group', o.group);
  const rows = await new AdminClient(o).get<AccountingEntry[]>(`${paths.accounting}${q.size ? `?${q.toString()}` : ''}`);
  out(o.json ? visibleJson(rows) : accountingTables(rows));
}
