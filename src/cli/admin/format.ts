/**
 * Readable tables of payloads and pilots for the admin commands. Pure: the
 * current time is passed in.
 */
import { formatCoreRequest, formatRequirements, type PayloadView, type PilotView } from '../../protocol/index.js';

/** Lay out rows under headers, columns padded to their widest cell. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** A duration in seconds as "45s", "12m05s", "3h02m" or "2d04h". */
export function duration(sec: number): string {
  const s = Math.max(0, Math.floor(sec));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, '0')}h`;
}

/** How long a payload has run (so far, when it still runs), or "-". */
export function wallTime(p: PayloadView, now: number): string {
  if (p.startedAt === null) return '-';
  return duration(((p.endedAt ?? now) - p.startedAt) / 1000);
}

/** The payload table of `jobs`. */
export function payloadTable(payloads: PayloadView[], now: number): string {
  return table(
    ['ID', 'NAME', 'GROUP', 'STATE', 'CORES', 'PILOT', 'EXIT', 'WALL'],
    payloads.map((p) => [
      String(p.id),
      p.name,
      p.group,
      p.state,
      `${formatCoreRequest(p.cores)}/${p.allocatedCores ?? '-'}`,
      p.pilotId === null ? '-' : String(p.pilotId),
      p.exitCode !== null ? String(p.exitCode) : (p.signal ?? '-'),
      wallTime(p, now),
    ]),
  );
}

/** The pilot table of `pilots`. */
export function pilotTable(pilots: PilotView[], now: number): string {
  return table(
    ['ID', 'HOSTNAME', 'STATE', 'CORES', 'HEARTBEAT', 'SHUTDOWN'],
    pilots.map((p) => [
      String(p.id),
      p.hostname,
      p.state,
      `${p.coresUsed}/${p.cores}`,
      p.lastHeartbeatAt === null ? 'never' : `${duration((now - p.lastHeartbeatAt) / 1000)} ago`,
      p.shutdownCode === null ? '-' : `${p.shutdownCode} ${p.shutdownMessage ?? ''}`.trim(),
    ]),
  );
}

/** One payload in full, for `job`. */
export function payloadDetail(p: PayloadView, now: number): string {
  const when = (t: number | null) => (t === null ? '-' : new Date(t).toISOString());
  const lines = [
    ['id', String(p.id)],
    ['name', p.name],
    ['group', p.group],
    ['state', p.state],
    ['command', p.command.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ')],
    ['cores', `${formatCoreRequest(p.cores)} requested, ${p.allocatedCores ?? '-'} allocated`],
    ['memory', p.memoryMb === null ? '-' : `${p.memoryMb} MB`],
    ['wall limit', p.wallSec === null ? '-' : duration(p.wallSec)],
    ['requires', formatRequirements(p.requirements)],
    ['priority', String(p.priority)],
    ['pilot', p.pilotId === null ? '-' : String(p.pilotId)],
    ['attempts', String(p.attempts)],
    ['submitted', when(p.submittedAt)],
    ['started', when(p.startedAt)],
    ['ended', when(p.endedAt)],
    ['wall time', wallTime(p, now)],
    ['exit code', p.exitCode === null ? '-' : String(p.exitCode)],
    ['signal', p.signal ?? '-'],
    ['message', p.message ?? '-'],
    // only a queued payload that no live pilot can run has one
    ...(typeof p.waiting === 'string' ? [['waiting', p.waiting]] : []),
  ];
  const head = table(['FIELD', 'VALUE'], lines).split('\n').slice(1).join('\n');
  const tail = p.outputTail ? `\n--- output (last lines) ---\n${p.outputTail.replace(/\n$/, '')}` : '';
  return head + tail;
}

/** Sum accounting rows by one key. */
function sumBy<T extends { coreSec: number; wallSec: number; done: number; failed: number }>(rows: T[], key: (r: T) => string) {
  const by = new Map<string, { coreSec: number; wallSec: number; done: number; failed: number }>();
  for (const r of rows) {
    const s = by.get(key(r)) ?? { coreSec: 0, wallSec: 0, done: 0, failed: 0 };
    s.coreSec += r.coreSec;
    s.wallSec += r.wallSec;
    s.done += r.done;
    s.failed += r.failed;
    by.set(key(r), s);
  }
  return [...by.entries()].sort(([a], [b]) => a.localeCompare(b, undefined, { numeric: true }));
}

/** The three tables of `accounting`: by group, by pilot, by day. */
export function accountingTables(rows: { day: string; group: string; pilotId: number; coreSec: number; wallSec: number; done: number; failed: number }[]): string {
  if (rows.length === 0) return 'nothing has been accounted yet';
  const section = (title: string, key: string, list: ReturnType<typeof sumBy>) =>
    `${title}\n${table(
      [key, 'CORE-SEC', 'WALL-SEC', 'DONE', 'FAILED'],
      list.map(([k, s]) => [k, s.coreSec.toFixed(1), s.wallSec.toFixed(1), String(s.done), String(s.failed)]),
    )}`;
  return [
    section('By group', 'GROUP', sumBy(rows, (r) => r.group)),
    section('By pilot', 'PILOT', sumBy(rows, (r) => String(r.pilotId))),
    section('By day', 'DAY', sumBy(rows, (r) => r.day)),
  ].join('\n\n');
}
