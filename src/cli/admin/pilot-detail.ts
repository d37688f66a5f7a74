/**
 * `vmpilot-server pilot ID`: one pilot in full: what it registered with
 * (batch job or instance id, labels, the relay it came through, isolation,
 * capabilities), the cores the server
 * assigned to it, its last contact and its last heartbeat's figures (load,
 * CPU, memory, disk, Machine/Job Features), its state history, every
 * instruction sent to it with its acknowledgement, and its payloads. The
 * text is a pure function of what the server returned (`pilotDetailText`);
 * `--json` prints that as one object. Everything the pilot said of itself
 * (hostname, external id, labels, features, messages) and every instruction's
 * reason is shown with its control characters escaped (visible.ts).
 */
import type { HeartbeatRequest, Instruction, InstructionView, PayloadView, PilotHistoryEntry, PilotView } from '../../protocol/index.js';
import { paths } from '../../protocol/paths.js';
import { systemClock } from '../../shared/clock.js';
import { isVmpilotError } from '../../shared/errors.js';
import { AdminClient, type ClientOptions } from './client.js';
import { intOption, listing } from './commands.js';
import { capabilitiesText, contactText, duration, labelsText, payloadTable, relayText, table } from './format.js';
import { visibleJson } from './visible.js';

type Out = (text: string) => void;
const stdout: Out = (text) => process.stdout.write(`${text}\n`);

/** What `pilot ID` shows, as the server gave it (null: a server older than that route). */
export interface PilotDetail {
  pilot: PilotView;
  history: PilotHistoryEntry[] | null;
  instructions: InstructionView[] | null;
  payloads: PayloadView[];
}

/** `pilot ID`: the pilot, its history, instructions and payloads; `--json` prints them as one object. */
export async function pilot(id: string, o: ClientOptions & { json?: boolean }, out: Out = stdout): Promise<void> {
  const n = intOption('ID', id, 1, Number.MAX_SAFE_INTEGER);
  const client = new AdminClient(o);
  const view = await client.get<PilotView>(paths.pilot(n));
  // a server older than a route answers 404 for it: show the pilot without that part
  const optional = <T>(p: Promise<T>) =>
    p.catch((err: unknown) => {
      if (isVmpilotError(err, 'VMP_NOT_FOUND')) return null;
      throw err;
    });
  const [history, instructions, payloads] = await Promise.all([
    optional(client.get<PilotHistoryEntry[]>(paths.pilotHistory(n))),
    optional(client.get<InstructionView[]>(paths.instructions(n))),
    // every payload it ran, page by page: a busy pilot has more than one page
    listing<PayloadView>(client, paths.payloads, new URLSearchParams({ pilot: String(n) })),
  ]);
  const detail: PilotDetail = { pilot: view, history, instructions, payloads };
  out(o.json ? visibleJson(detail) : pilotDetailText(detail, systemClock.now()));
}

const when = (t: number | null | undefined) => (t === null || t === undefined ? '-' : new Date(t).toISOString());
const ago = (t: number, now: number) => `${duration((now - t) / 1000)} ago`;

/** Field/value lines without a header row. */
function fields(rows: string[][]): string {
  return table(['FIELD', 'VALUE'], rows).split('\n').slice(1).join('\n');
}

/** What an instruction asked, in a few words: "drain: kernel update", "halt 100: downtime", "kill-payload 42". */
export function instructionText(i: Instruction): string {
  const why = 'reason' in i && i.reason ? `: ${i.reason}` : '';
  switch (i.type) {
    case 'halt':
      return `halt ${i.code ?? 100}${why}`;
    case 'kill-payload':
      return `kill-payload ${i.payloadId}${why}`;
    case 'set':
      return `set${i.heartbeatIntervalSec === undefined ? '' : ` heartbeatIntervalSec=${i.heartbeatIntervalSec}`}${i.idleTimeoutSec === undefined ? '' : ` idleTimeoutSec=${i.idleTimeoutSec}`}`;
    default:
      return `${i.type}${why}`;
  }
}

/** The figures of a heartbeat: what the pilot said of itself then. Pure. */
export function heartbeatLines(b: HeartbeatRequest, now: number): string[][] {
  const rows: string[][] = [
    ['sent', `${when(b.at)} (${ago(b.at, now)})`],
    ['agent state', b.state],
    ['uptime', duration(b.uptimeSec)],
    ['cores', `${b.cores.used} used, ${b.cores.free} free of ${b.cores.total}`],
  ];
  if (b.load) rows.push(['load', b.load.map((l) => l.toFixed(2)).join(' ')]);
  if (b.cpuUse !== undefined) rows.push(['cpu use', `${b.cpuUse.toFixed(2)} cores`]);
  rows.push(['memory', `${b.memoryMb.used} of ${b.memoryMb.total} MB used`]);
  if (b.diskFreeMb !== undefined) rows.push(['disk free', `${b.diskFreeMb} MB`]);
  if (b.deadline !== undefined) rows.push(['deadline', when(b.deadline)]);
  const running = b.payloads.map((p) => `${p.id} (${p.state}, ${p.cores} cores${p.rssMb === undefined ? '' : `, ${p.rssMb} MB`})`);
  rows.push(['payloads', running.length === 0 ? '-' : running.join(', ')]);
  return rows;
}

/** `pilot ID` as text. Pure: the current time is passed in. */
export function pilotDetailText(d: PilotDetail, now: number): string {
  const p = d.pilot;
  const beat = p.lastHeartbeat ?? null;
  const reported = p.coresReported ?? beat?.cores.used ?? null;
  const parts = [
    fields([
      ['id', String(p.id)],
      ['hostname', p.hostname],
      ['state', p.state],
      ['external id', p.externalId ?? '-'],
      ['labels', labelsText(p.labels)],
      ['via', relayText(p)],
      ['version', p.version],
      ['isolation', p.isolation ?? 'none'],
      ['capabilities', capabilitiesText(p.capabilities)],
      ['cores', `${p.coresUsed} of ${p.cores} assigned by the server${reported === null ? '' : `; ${reported} in use at the last heartbeat`}`],
      ['memory', `${p.memoryMb} MB`],
      ['registered', when(p.registeredAt)],
      ['last contact', `${when(p.lastContactAt ?? p.lastHeartbeatAt ?? p.registeredAt)} (${contactText(p, now)})`],
      ['last heartbeat', p.lastHeartbeatAt === null ? 'none yet' : `${when(p.lastHeartbeatAt)} (${ago(p.lastHeartbeatAt, now)})`],
      ['deadline', when(p.deadline)],
      ['shutdown', p.shutdownCode === null ? '-' : `${p.shutdownCode} ${p.shutdownMessage ?? ''}`.trim()],
    ]),
  ];
  if (beat) {
    parts.push(`--- last heartbeat ---\n${fields(heartbeatLines(beat, now))}`);
    const features = Object.entries(beat.features ?? {});
    if (features.length > 0) parts.push(`--- machine/job features (last heartbeat) ---\n${table(['KEY', 'VALUE'], features.map(([k, v]) => [k, String(v)]))}`);
  }
  if (d.history && d.history.length > 0) {
    parts.push(`--- history ---\n${table(['AT', 'STATE', 'REASON'], d.history.map((h) => [when(h.at), h.state, h.reason]))}`);
  }
  if (d.instructions && d.instructions.length > 0) {
    parts.push(
      `--- instructions ---\n${table(
        ['ID', 'INSTRUCTION', 'SENT', 'DONE', 'OK', 'MESSAGE'],
        d.instructions.map((i) => [
          String(i.instruction.id),
          instructionText(i.instruction),
          when(i.createdAt),
          i.doneAt === null ? 'not yet' : when(i.doneAt),
          i.ok === null ? '-' : i.ok ? 'yes' : 'no',
          i.message ?? '-',
        ]),
      )}`,
    );
  }
  parts.push(d.payloads.length === 0 ? '--- payloads ---\nnone' : `--- payloads ---\n${payloadTable(d.payloads, now)}`);
  return parts.join('\n');
}
