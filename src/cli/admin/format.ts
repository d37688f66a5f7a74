/**
 * Readable tables of payloads and pilots for the admin commands. Pure: the
 * current time is passed in. Every cell, and the output tail, is shown with
 * its control characters made visible (visible.ts): a hostname or a message
 * from a pilot cannot forge rows or send the terminal escape sequences.
 */
import { formatCoreRequest, formatRequirements, type AccountingEntry, type Capabilities, type PayloadHistoryEntry, type PayloadView, type PilotView } from '../../protocol/index.js';
import { visible, visibleLines } from './visible.js';

/** Lay out rows under headers, columns padded to their widest cell; control characters in cells shown as escapes. */
export function table(headers: string[], rows: string[][]): string {
  const safe = rows.map((r) => r.map(visible));
  const widths = headers.map((h, i) => Math.max(h.length, ...safe.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(headers), ...safe.map(line)].join('\n');
}

/** A duration in seconds as "45s", "12m05s", "3h02m" or "2d04h", rounded to the second (4.98 → "5s"). */
export function duration(sec: number): string {
  const s = Math.max(0, Math.round(sec));
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

/** The payload table of `jobs`. States it does not know (a newer server's) are shown as they are. */
export function payloadTable(payloads: PayloadView[], now: number): string {
  return table(
    ['ID', 'NAME', 'GROUP', 'STATE', 'CORES', 'PILOT', 'EXIT', 'WALL', 'ATTEMPTS'],
    payloads.map((p) => [
      String(p.id),
      p.name,
      p.group,
      p.state,
      `${formatCoreRequest(p.cores)}/${p.allocatedCores ?? '-'}`,
      p.pilotId === null ? '-' : String(p.pilotId),
      p.exitCode !== null ? String(p.exitCode) : (p.signal ?? '-'),
      wallTime(p, now),
      attemptsText(p),
    ]),
  );
}

/** "2", or "2 (1 evicted)" when the infrastructure ended some of them. */
/** "1234.5 s, 87 % of 2 cores over its wall time", or '-' when its pilot reported none. */
function usedText(p: PayloadView): string {
  if (p.cpuSec === null || p.cpuSec === undefined) return '-';
  const cores = p.allocatedCores === null ? '' : ` of ${p.allocatedCores} ${p.allocatedCores === 1 ? 'core' : 'cores'}`;
  return p.cpuEfficiency === null || p.cpuEfficiency === undefined ? `${p.cpuSec.toFixed(1)} s (a run too short for its efficiency)` : `${p.cpuSec.toFixed(1)} s, ${Math.round(p.cpuEfficiency * 100)} %${cores} over its wall time`;
}

function attemptsText(p: PayloadView): string {
  const evicted = p.evictions ?? 0;
  return evicted > 0 ? `${p.attempts} (${evicted} evicted)` : String(p.attempts);
}

/**
 * The line under `jobs`' table: core-seconds of the payloads listed by how
 * their attempts ended: the run that ended each as done, failed or
 * cancelled, and every attempt the infrastructure ended (evicted or lost).
 */
export function coreSecSummary(payloads: PayloadView[]): string {
  const sum = { done: 0, failed: 0, cancelled: 0, evicted: 0 };
  let evictions = 0;
  for (const p of payloads) {
    if (p.state === 'done' || p.state === 'failed' || p.state === 'cancelled') sum[p.state] += p.coreSec ?? 0;
    sum.evicted += p.evictedCoreSec ?? 0;
    evictions += p.evictions ?? 0;
  }
  const attempts = evictions === 1 ? '1 attempt' : `${evictions} attempts`;
  return `core-seconds: done ${sum.done.toFixed(1)}, failed ${sum.failed.toFixed(1)}, cancelled ${sum.cancelled.toFixed(1)}, evicted ${sum.evicted.toFixed(1)} (${attempts})`;
}

/** The pilot table of `pilots`. */
export function pilotTable(pilots: PilotView[], now: number): string {
  return table(
    ['ID', 'HOSTNAME', 'STATE', 'CORES', 'EXTERNAL-ID', 'LABELS', 'ISOLATION', 'VIA', 'CONTACT', 'SHUTDOWN'],
    pilots.map((p) => [
      String(p.id),
      p.hostname,
      p.state,
      // the cores of the payloads the server assigned to it (not only what its last heartbeat said)
      `${p.coresUsed}/${p.cores}`,
      p.externalId ?? '-',
      labelsText(p.labels),
      // an agent that did not say (older than isolation) isolates nothing
      p.isolation ?? 'none',
      // the relay it registered through (site/name), or - when it came directly
      relayText(p),
      contactText(p, now),
      p.shutdownCode === null ? '-' : `${p.shutdownCode} ${p.shutdownMessage ?? ''}`.trim(),
    ]),
  );
}

/** "batch=slurm,site=CERN-PROD", or "-". */
export function labelsText(labels: Record<string, string> | undefined): string {
  const list = Object.entries(labels ?? {}).map(([k, v]) => `${k}=${v}`);
  return list.length === 0 ? '-' : list.join(',');
}

/** The relay a pilot registered through as "site/name", or "-" when it came directly. */
export function relayText(p: PilotView): string {
  return p.relay ? `${p.relay.site}/${p.relay.name}` : '-';
}

/** What a pilot said it is and has, in one line ("x86_64-v3 el9 site=CERN-PROD tags=cvmfs gpus=2 scratch=38000MiB"), or "-". */
export function capabilitiesText(c: Capabilities | null | undefined): string {
  if (!c) return '-';
  const parts = [
    c.arch ? `${c.arch}${c.cpuLevel ? `-v${c.cpuLevel}` : ''}` : null,
    c.platform ?? null,
    c.site ? `site=${c.site}` : null,
    c.tags && c.tags.length > 0 ? `tags=${c.tags.join(',')}` : null,
    c.gpus && c.gpus.length > 0 ? `gpus=${c.gpus.length}` : null,
    c.scratchMb !== null && c.scratchMb !== undefined ? `scratch=${c.scratchMb}MiB` : null,
  ].filter((x): x is string => x !== null);
  return parts.length === 0 ? '-' : parts.join(' ');
}

/** How long ago the server last heard from the pilot: registration, heartbeat, match or reports (an older server: its heartbeat). */
export function contactText(p: PilotView, now: number): string {
  const at = p.lastContactAt ?? p.lastHeartbeatAt ?? p.registeredAt;
  return `${duration((now - at) / 1000)} ago`;
}

/** One payload in full, for `job`, with its history when the server gave it. */
export function payloadDetail(p: PayloadView, now: number, history: PayloadHistoryEntry[] | null = null): string {
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
    ['attempts', attemptsText(p)],
    ['requeue', p.requeue === false ? 'no (submitted with --no-requeue)' : 'yes'],
    ['evicted core-s', (p.evictedCoreSec ?? 0).toFixed(1)],
    ['submitted', when(p.submittedAt)],
    ['started', when(p.startedAt)],
    ['ended', when(p.endedAt)],
    ['wall time', wallTime(p, now)],
    ['cpu', usedText(p)],
    ['memory peak', p.peakRssMb === null || p.peakRssMb === undefined ? '-' : `${Math.round(p.peakRssMb)} MB`],
    ['exit code', p.exitCode === null ? '-' : String(p.exitCode)],
    ['signal', p.signal ?? '-'],
    ['message', p.message ?? '-'],
    // only a queued payload that no live pilot can run has one
    ...(typeof p.waiting === 'string' ? [['waiting', p.waiting]] : []),
  ];
  const head = table(['FIELD', 'VALUE'], lines).split('\n').slice(1).join('\n');
  const past =
    history && history.length > 0
      ? `\n--- history ---\n${table(
          ['AT', 'STATE', 'PILOT', 'REASON'],
          history.map((h) => [when(h.at), h.state, h.pilotId === null ? '-' : String(h.pilotId), h.reason]),
        )}`
      : '';
  const tail = p.outputTail ? `\n--- output (last lines) ---\n${visibleLines(p.outputTail.replace(/\n$/, ''))}` : '';
  return head + past + tail;
}

/** The totals `accounting` shows for a set of rows. */
interface Totals {
  coreSec: number;
  doneCoreSec: number;
  failedCoreSec: number;
  cancelledCoreSec: number;
  evictedCoreSec: number;
  wallSec: number;
  done: number;
  failed: number;
  cancelled: number;
  evicted: number;
}

const ZERO: Totals = { coreSec: 0, doneCoreSec: 0, failedCoreSec: 0, cancelledCoreSec: 0, evictedCoreSec: 0, wallSec: 0, done: 0, failed: 0, cancelled: 0, evicted: 0 };

/** Sum accounting rows by one key (fields an older server does not send count 0). */
function sumBy(rows: AccountingEntry[], key: (r: AccountingEntry) => string): [string, Totals][] {
  const by = new Map<string, Totals>();
  for (const r of rows) {
    const s = by.get(key(r)) ?? { ...ZERO };
    for (const k of Object.keys(ZERO) as (keyof Totals)[]) s[k] += r[k] ?? 0;
    by.set(key(r), s);
  }
  return [...by.entries()].sort(([a], [b]) => a.localeCompare(b, undefined, { numeric: true }));
}

/**
 * The three tables of `accounting`: by group, by pilot, by day. CORE-SEC is
 * every core-second used; DONE-SEC, FAILED-SEC, CANCELLED-SEC and
 * EVICTED-SEC split it by how each attempt ended; DONE, FAILED and
 * CANCELLED count payloads, EVICTED the attempts the infrastructure ended.
 */
export function accountingTables(rows: AccountingEntry[]): string {
  if (rows.length === 0) return 'nothing has been accounted yet';
  const f = (n: number) => n.toFixed(1);
  const section = (title: string, key: string, list: [string, Totals][]) =>
    `${title}\n${table(
      [key, 'CORE-SEC', 'DONE-SEC', 'FAILED-SEC', 'CANCELLED-SEC', 'EVICTED-SEC', 'WALL-SEC', 'DONE', 'FAILED', 'CANCELLED', 'EVICTED'],
      list.map(([k, s]) => [
        k,
        f(s.coreSec),
        f(s.doneCoreSec),
        f(s.failedCoreSec),
        f(s.cancelledCoreSec),
        f(s.evictedCoreSec),
        f(s.wallSec),
        String(s.done),
        String(s.failed),
        String(s.cancelled),
        String(s.evicted),
      ]),
    )}`;
  return [
    section('By group', 'GROUP', sumBy(rows, (r) => r.group)),
    section('By pilot', 'PILOT', sumBy(rows, (r) => String(r.pilotId))),
    section('By day', 'DAY', sumBy(rows, (r) => r.day)),
  ].join('\n\n');
}
