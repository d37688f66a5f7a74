/**
 * What the director's admin commands print: the endpoints, the instances,
 * one instance, the answers of `instances start|stop` and `endpoint
 * disable|enable`, and `director status` (per endpoint: the demand it saw,
 * the supply it counted, what it started and why not more; per start: the
 * offer chosen, its price and where that came from, and the offers that
 * lost). Pure: the
 * current time is passed in. Cells go through table() (format.ts), so text
 * from a driver or a pilot cannot forge rows or send escape sequences.
 */
import type {
  DirectorStatusReply,
  EndpointDecisionView,
  EndpointSwitchReply,
  EndpointView,
  InstanceCostEntry,
  PlannedStartView,
  InstanceDetailReply,
  InstanceView,
  StartInstancesReply,
  StopInstancesReply,
} from '../../protocol/index.js';
import { duration, table } from './format.js';
import { visible } from './visible.js';

const when = (t: number | null) => (t === null ? '-' : new Date(t).toISOString());
const money = (n: number) => (n === 0 ? '0' : n < 0.01 ? n.toFixed(4) : n.toFixed(2));
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** "yes", "no (endpoint disable)" or "no (config)". */
export function enabledText(e: Pick<EndpointView, 'enabled' | 'enabledInConfig' | 'disabledByOperator'>): string {
  if (e.enabled) return 'yes';
  if (e.disabledByOperator) return 'no (endpoint disable)';
  return 'no (config: enabled: false)';
}

/** "3 (registered 2, booting 1)" or "0". */
export function liveText(e: EndpointView): string {
  const parts = Object.entries(e.live.byState).map(([state, c]) => `${state} ${c.instances}`);
  return parts.length === 0 ? '0' : `${e.live.instances} (${parts.join(', ')})`;
}

/** The table of `endpoints`, with a line per offering backed off under it. */
export function endpointTable(list: EndpointView[], now: number): string {
  if (list.length === 0) return 'no endpoints are configured (serve --config FILE with an endpoints: section; docs/director.md)';
  const rows = list.map((e) => [
    e.name,
    e.driver,
    enabledText(e),
    e.shapes.map((s) => `${s.name}:${s.cores}c/${s.memoryMb}MB/${s.price ?? money(s.costPerHour)}`).join(' '),
    liveText(e),
    `${e.live.cores}/${e.limits.cores}`,
    `${e.limits.instances} inst, ${e.limits.startsPerCycle}/cycle`,
    e.groups === null ? 'all' : e.groups.map((g) => quotaText(g)).join(' '),
  ]);
  const head = table(['NAME', 'DRIVER', 'ENABLED', 'SHAPES', 'LIVE', 'CORES', 'LIMITS', 'GROUPS'], rows);
  const backoff = list.flatMap((e) =>
    e.backoff.map((b) => `backoff: ${e.name}/${b.shape} for ${duration((b.until - now) / 1000)} more (until ${when(b.until)}; ${plural(b.failures, 'failure')} in a row; ${b.kind}: ${visible(b.reason)})`),
  );
  return backoff.length === 0 ? head : `${head}\n\n${backoff.join('\n')}`;
}

function quotaText(g: { group: string; maxInstances: number | null; maxCores: number | null }): string {
  const q = [g.maxInstances === null ? null : `${g.maxInstances} inst`, g.maxCores === null ? null : `${g.maxCores} cores`].filter((x) => x !== null);
  return q.length === 0 ? g.group : `${g.group}(${q.join(',')})`;
}

/** The table of `instances`. AGE is from the request to the deletion (or now). */
export function instanceTable(list: InstanceView[], now: number): string {
  return table(
    ['ID', 'ENDPOINT', 'SHAPE', 'STATE', 'CORES', 'PILOT', 'FOR', 'AGE', 'COST', 'REASON'],
    list.map((i) => [
      String(i.id),
      i.endpoint,
      i.shape,
      i.drainAt !== null && i.state === 'registered' ? 'registered (draining)' : i.state,
      String(i.cores),
      i.pilotId === null ? '-' : String(i.pilotId),
      i.manual ? 'by hand' : (i.forGroup ?? '-'),
      duration(((i.deletedAt ?? now) - i.requestedAt) / 1000),
      money(i.costSoFar),
      i.reason,
    ]),
  );
}

/** One instance in full, for `instance ID`, with its history. */
export function instanceDetail(i: InstanceDetailReply): string {
  const lines = [
    ['id', String(i.id)],
    ['endpoint', i.endpoint],
    ['shape', `${i.shape} (${i.cores} cores, ${i.memoryMb} MB)`],
    ['state', i.state],
    ['reason', i.reason],
    ['key', i.key],
    ['driver id', i.driverId ?? '-'],
    ['pilot', i.pilot ? `${i.pilot.id} (${i.pilot.state})` : i.pilotId === null ? '-' : String(i.pilotId)],
    ['started for', i.manual ? 'by hand (instances start)' : (i.forGroup ?? '-')],
    ['serves', i.groups === null ? 'every group' : i.groups.join(', ')],
    ['cost', `${money(i.costSoFar)} so far at ${money(i.costPerHour)} per hour`],
    ['requested', when(i.requestedAt)],
    ['started', when(i.startedAt)],
    ['booted', when(i.bootedAt)],
    ['registered', when(i.registeredAt)],
    ['drain asked', when(i.drainAt)],
    ['ended', when(i.endedAt)],
    ['deleted', when(i.deletedAt)],
  ];
  const head = table(['FIELD', 'VALUE'], lines).split('\n').slice(1).join('\n');
  const past = i.history.length === 0 ? '' : `\n--- history ---\n${table(['AT', 'STATE', 'REASON'], i.history.map((h) => [when(h.at), h.state, h.reason]))}`;
  return head + past;
}

/** What `instances start` prints: a line per instance recorded. */
export function startText(r: StartInstancesReply): string {
  return r.instances.map((i) => `instance ${i.id}: ${i.endpoint}/${i.shape} ${i.state} (the director creates it now)`).join('\n');
}

/** What `instances stop` prints: a line per id, what was done. */
export function stopText(r: StopInstancesReply): string {
  return r.results.map((x) => `${x.id}: ${x.outcome}: ${visible(x.message)}`).join('\n');
}

/** What `endpoint disable|enable` prints. */
export function switchText(r: EndpointSwitchReply): string {
  if (r.disabledByOperator) return `endpoint ${r.name} disabled: nothing more is started there (kept across restarts; its live instances run on)`;
  return r.enabled ? `endpoint ${r.name} enabled` : `endpoint ${r.name}: no longer disabled by an operator, but its config says enabled: false`;
}

/** `director status`: the director, the last cycle, and per endpoint what it saw, counted, started and why not more. */
export function directorStatusText(s: DirectorStatusReply, now: number): string {
  if (s.directorId === null) return 'no director: no endpoints are configured in serve --config (docs/director.md)';
  const out = [`director ${s.directorId}: ${s.running ? 'running' : 'not running'}, a cycle every ${s.everySec ?? '-'} s and after each submit`];
  if (s.standby) out.push(`standing by: the director of ${visible(s.standby.holder)} holds the lease until ${when(s.standby.until)} (one director at a time on one database); the last cycle below is its`);
  const c = s.lastCycle;
  if (!c) return [...out, 'no cycle yet'].join('\n');
  const d = c.decision;
  out.push(
    `last cycle ${when(c.at)} (${duration((now - c.at) / 1000)} ago): ${plural(d.demand.payloads, 'payload')} queued (${d.demand.cores} cores); ${d.onSupply.payloads} fit the supply, ${d.onStarts.payloads} the starts`,
  );
  for (const e of d.endpoints) out.push('', ...endpointDecisionLines(e));
  if (d.starts.length > 0) out.push('', 'starts (the offer chosen, its price, and the offers that lost):', ...startLines(d.starts));
  if (c.actions.length > 0) {
    out.push('', 'actions:');
    for (const a of c.actions) out.push(`  ${a.kind} ${a.endpoint}${a.instanceId === null ? '' : ` #${a.instanceId}`}: ${visible(a.detail)}${a.error === null ? '' : ` FAILED: ${visible(a.error)}`}`);
  }
  if (c.unmanaged.length > 0) out.push('', `left alone (their endpoints are no longer configured): ${c.unmanaged.join(', ')}`);
  return out.join('\n');
}

const perCoreHour = (n: number) => `${n.toFixed(4)} per core-hour`;

/**
 * The starts of a decision in `director status`, alike ones (same offer,
 * group, price and losers) on one line: the offer, its price per hour and
 * per core-hour with where it came from, then each offer that lost and why.
 */
export function startLines(starts: readonly PlannedStartView[]): string[] {
  const alike = new Map<string, { s: PlannedStartView; n: number; payloads: number }>();
  for (const s of starts) {
    const k = JSON.stringify([s.endpoint, s.shape, s.forGroup, s.costPerHour, s.priceFrom, s.priceDetail, s.lost]);
    const a = alike.get(k);
    if (a) {
      a.n++;
      a.payloads += s.payloads;
    } else alike.set(k, { s, n: 1, payloads: s.payloads });
  }
  const out: string[] = [];
  for (const { s, n, payloads } of alike.values()) {
    const price = `${money(s.costPerHour)}/h, ${perCoreHour(s.pricePerCoreHour ?? s.costPerHour / Math.max(1, s.cores))}`;
    const from = s.priceFrom === undefined ? '' : ` (${s.priceFrom}${s.priceDetail ? `: ${visible(s.priceDetail)}` : ''})`;
    out.push(`  ${n} × ${s.endpoint}/${s.shape} for ${s.forGroup} (${plural(payloads, 'payload')}): ${price}${from}`);
    const lost = s.lost ?? [];
    lost.forEach((l, i) => {
      const price = l.pricePerCoreHour === null ? '' : ` (${perCoreHour(l.pricePerCoreHour)})`;
      out.push(`    ${i === 0 ? 'lost: ' : '      '}${l.endpoint}${l.shape === null ? '' : `/${l.shape}`}: ${l.reason}: ${visible(l.detail)}${price}`);
    });
  }
  return out;
}

/** One endpoint's lines in `director status`. */
export function endpointDecisionLines(e: EndpointDecisionView): string[] {
  const started = e.started.length === 0 ? 'nothing' : e.started.map((s) => `${s.instances} × ${s.shape} (${s.cores} cores, for ${plural(s.payloads, 'payload')})`).join(', ');
  const why = e.notMore.length === 0 ? ['all it usefully could'] : e.notMore.map((r) => `${r.reason}: ${visible(r.detail)} (${plural(r.payloads, 'payload')})`);
  return [
    `${e.endpoint}${e.enabled ? '' : ' (disabled)'}`,
    `  demand seen:     ${plural(e.demand.payloads, 'payload')}, ${e.demand.cores} cores`,
    `  supply counted:  ${e.supply.freeCores} free cores, ${e.supply.comingCores} cores coming, ${plural(e.supply.machines, 'machine')}`,
    `  live:            ${plural(e.live.instances, 'instance')}, ${e.live.cores} cores`,
    `  started:         ${started}`,
    `  why not more:    ${why[0]}`,
    ...why.slice(1).map((w) => `                   ${w}`),
  ];
}

/** `accounting --instances`: per group the instances were started for and endpoint, their instance-hours, core-hours and cost, with a total. */
export function instanceCostTable(rows: readonly InstanceCostEntry[]): string {
  if (rows.length === 0) return 'no instances have been started';
  const h = (n: number) => n.toFixed(2);
  const sum = (k: 'instances' | 'instanceHours' | 'coreHours' | 'cost') => rows.reduce((n, r) => n + r[k], 0);
  return table(
    ['GROUP', 'ENDPOINT', 'INSTANCES', 'INSTANCE-HOURS', 'CORE-HOURS', 'COST'],
    [
      ...rows.map((r) => [r.group, r.endpoint, String(r.instances), h(r.instanceHours), h(r.coreHours), money(r.cost)]),
      ['(all)', '', String(sum('instances')), h(sum('instanceHours')), h(sum('coreHours')), money(sum('cost'))],
    ],
  );
}
