/**
 * Demand: the queued payloads as the director sees them, in fair-share
 * order, with payloads that need the same merged into one item with a count
 * (so 100,000 queued payloads of a few kinds are a few items, not 100,000).
 *
 * The store hands the queue over already counted (QueuedWork.count: one row
 * per group, priority and need); one row per payload means the same. Within
 * a group and a priority, payloads of one need are one run, placed where its
 * oldest payload is: the director starts machines for the oldest kind of
 * work of a group first (the picker then hands a machine whatever of the
 * group's queue fits it, in the queue's order, anyway).
 *
 * Fair-share order interleaves the groups as the queue will serve them: a
 * weighted fair queue whose virtual time per group starts at the group's
 * recent decayed usage over its share (the picker's ratio, queue/pick.ts)
 * and grows by each payload's cores × wall time (or `defaultWallSec`) over
 * the share. So with shares 70:30 and equal payloads, seven of every ten
 * are atlas's; a limit that stops the director after N starts then gives
 * each group its share of them, not all to the first group. Within a group
 * the queue's own order holds (priority, then first submitted). Groups with
 * share 0 come last. Pure.
 *
 * Each item carries a requirement class (`requirementClass`): a payload
 * that asks only for cores, memory and time is of the default class ("");
 * one with requirements (GPUs, an architecture, a site; docs/requirements.md)
 * is of the class its requirements name (`gpus=1 arch=x86_64-v3`), and the
 * decision starts for each class only the shapes that serve it
 * (placement.ts: today no shape declares capabilities, so none serves a
 * class other than the default, and no machine is started for such work).
 */
import { formatRequirements, noRequirements, type CoreRequest, type Requirements } from '../../protocol/index.js';
import { queueOrder } from '../queue/pick.js';
import { PROBE_GROUP_PREFIX } from './endpoint-test-plan.js';

/** The requirement class of a payload that asks only for cores, memory and time. */
export const DEFAULT_CLASS = '';

/**
 * The requirement class of payloads with requirements `r` (normalised, as
 * stored): DEFAULT_CLASS without any, else the requirements written out in
 * key order (`gpus=1 arch=x86_64-v3`), so payloads that need the same are
 * one class. Pure.
 */
export function requirementClassOf(r: Requirements | null | undefined): string {
  return noRequirements(r) ? DEFAULT_CLASS : formatRequirements(r);
}

/**
 * Queued payloads as the demand needs them: `count` (default 1) payloads of
 * one group and priority that need the same; id and submittedAt are its
 * oldest payload's, which gives the row its place in the queue's order.
 */
export interface QueuedWork {
  /** The id of its (oldest) payload. */
  id: number;
  group: string;
  priority: number;
  cores: CoreRequest;
  memoryMb: number | null;
  wallSec: number | null;
  submittedAt: number;
  /** Its requirements (the store's candidates carry them); they give its class when `requirementClass` is not set. */
  requirements?: Requirements | null;
  /** Default: requirementClassOf(requirements). */
  requirementClass?: string;
  /** How many queued payloads the row stands for (default 1). */
  count?: number;
}

/** The fair queue is exact to one payload for this many payloads of demand. */
export const EXACT_PAYLOADS = 10_000;
/** Past them, a group's turn may take this share of the position's payloads. */
export const TAIL_TURN = 0.01;

/** `count` queued payloads of one group that all need the same. */
export interface DemandItem {
  group: string;
  requirementClass: string;
  /** Cores each needs at least (a range's minimum). */
  cores: number;
  /** Each needs a whole, empty machine. */
  wholeNode: boolean;
  /** Memory each needs, MB (0: not said). */
  memoryMb: number;
  /** Wall time each declared (null: not said). */
  wallSec: number | null;
  count: number;
}

/** How demand is ordered. */
export interface DemandPolicy {
  shares: ReadonlyMap<string, number>;
  defaultShare: number;
  /** The wall time assumed for a payload that declares none, in the fair queue's arithmetic. */
  defaultWallSec: number;
}

type Run = Omit<DemandItem, 'group'>;

const sameNeed = (a: Run, b: Run) =>
  a.cores === b.cores && a.wholeNode === b.wholeNode && a.memoryMb === b.memoryMb && a.wallSec === b.wallSec && a.requirementClass === b.requirementClass;

/** The demand of `queued`, in fair-share order given each group's recent `usage` (decayed core-seconds). */
export function demandFrom(queued: readonly QueuedWork[], usage: ReadonlyMap<string, number>, policy: DemandPolicy): DemandItem[] {
  const runs = groupRuns(queued);

  const shareOf = (g: string) => policy.shares.get(g) ?? policy.defaultShare;
  const fair = [...runs.keys()].filter((g) => shareOf(g) > 0);
  const last = [...runs.keys()].filter((g) => !(shareOf(g) > 0)).sort();
  const out: DemandItem[] = [];
  const emit = (group: string, run: Run, n: number) => {
    const prev = out[out.length - 1];
    if (prev && prev.group === group && sameNeed(prev, run)) prev.count += n;
    else out.push({ group, requirementClass: run.requirementClass, cores: run.cores, wholeNode: run.wholeNode, memoryMb: run.memoryMb, wallSec: run.wallSec, count: n });
  };

  // the weighted fair queue: a small heap of (virtual time, group)
  const heap = new MinHeap<{ v: number; group: string; at: number }>((a, b) => a.v - b.v || (a.group < b.group ? -1 : a.group > b.group ? 1 : 0));
  for (const g of fair) heap.push({ v: (usage.get(g) ?? 0) / shareOf(g), group: g, at: 0 });
  let emitted = 0;
  for (;;) {
    const top = heap.pop();
    if (!top) break;
    const list = runs.get(top.group)!;
    const run = list[top.at]!;
    const unit = (Math.max(1, run.cores) * (run.wallSec ?? policy.defaultWallSec)) / shareOf(top.group);
    const next = heap.peek();
    // as many as keep this group first: up to where its virtual time passes the next group's;
    // past the exact head, a turn of at least TAIL_TURN of the payloads placed so far
    const turn = emitted < EXACT_PAYLOADS ? 1 : Math.ceil(emitted * TAIL_TURN);
    const n = next === undefined ? run.count : Math.min(run.count, Math.max(turn, Math.ceil((next.v - top.v) / Math.max(unit, 1e-9))));
    emit(top.group, run, n);
    emitted += n;
    run.count -= n;
    const at = run.count === 0 ? top.at + 1 : top.at;
    if (at < list.length) heap.push({ v: top.v + n * unit, group: top.group, at });
  }
  for (const g of last) for (const run of runs.get(g)!) emit(g, run, run.count);
  return out;
}

/**
 * Each group's runs, one per priority and need, in the queue's order (a
 * run's place: its oldest payload). The store reads the queue in that order
 * already, so one pass makes the runs while it checks the order per group;
 * only a queue out of order is grouped and sorted first.
 */
function groupRuns(queued: readonly QueuedWork[]): Map<string, Run[]> {
  const groups = new Map<string, { runs: GroupRuns; prev: QueuedWork }>();
  for (const q of queued) {
    // an endpoint test's probe runs on the test's own instance: it is no reason to start another machine
    if (q.group.startsWith(PROBE_GROUP_PREFIX)) continue;
    let g = groups.get(q.group);
    if (!g) groups.set(q.group, (g = { runs: new GroupRuns(), prev: q }));
    else if (queueOrder(g.prev, q) > 0) return sortedRuns(queued);
    g.prev = q;
    g.runs.add(q);
  }
  const runs = new Map<string, Run[]>();
  for (const [group, g] of groups) runs.set(group, g.runs.list);
  return runs;
}

/** groupRuns for a queue out of order: each group's rows sorted first. */
function sortedRuns(queued: readonly QueuedWork[]): Map<string, Run[]> {
  const byGroup = new Map<string, QueuedWork[]>();
  for (const q of queued) {
    if (q.group.startsWith(PROBE_GROUP_PREFIX)) continue;
    const list = byGroup.get(q.group);
    if (list) list.push(q);
    else byGroup.set(q.group, [q]);
  }
  const runs = new Map<string, Run[]>();
  for (const [group, list] of byGroup) {
    list.sort(queueOrder);
    const out = new GroupRuns();
    for (const q of list) out.add(q);
    runs.set(group, out.list);
  }
  return runs;
}

/** One group's runs as its rows come in the queue's order: a row joins the run of its priority and need, or starts one. */
class GroupRuns {
  readonly list: Run[] = [];
  private readonly byKey = new Map<string, Run>();
  private priority = Number.NaN;
  private lastKey: string | null = null;

  add(q: QueuedWork): void {
    const requirementClass = q.requirementClass ?? requirementClassOf(q.requirements);
    const cores = q.cores.wholeNode ? 1 : q.cores.min;
    const memoryMb = q.memoryMb ?? 0;
    const count = q.count ?? 1;
    const key = `${cores}\0${q.cores.wholeNode ? 1 : 0}\0${memoryMb}\0${q.wallSec ?? ''}\0${requirementClass}`;
    // rows come by priority, most urgent first: the runs of a priority are done when the next begins,
    // but for the last one, which the new priority's rows of the same need continue while it is last
    if (q.priority !== this.priority) {
      this.byKey.clear();
      this.priority = q.priority;
    }
    let run = this.byKey.get(key);
    if (run === undefined && key === this.lastKey) this.byKey.set(key, (run = this.list[this.list.length - 1]!));
    if (run) run.count += count;
    else {
      const fresh: Run = { requirementClass, cores, wholeNode: q.cores.wholeNode, memoryMb, wallSec: q.wallSec, count };
      this.byKey.set(key, fresh);
      this.list.push(fresh);
      this.lastKey = key;
    }
  }
}

/** Payloads and cores of a demand. */
export function demandTotals(items: readonly DemandItem[]): { payloads: number; cores: number } {
  let payloads = 0;
  let cores = 0;
  for (const d of items) {
    payloads += d.count;
    cores += d.count * d.cores;
  }
  return { payloads, cores };
}

/** A binary min-heap; small, for the fair queue. */
class MinHeap<T> {
  private readonly a: T[] = [];
  constructor(private readonly less: (x: T, y: T) => number) {}

  push(x: T): void {
    const a = this.a;
    a.push(x);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.less(a[i]!, a[p]!) >= 0) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }

  peek(): T | undefined {
    return this.a[0];
  }

  pop(): T | undefined {
    const a = this.a;
    const top = a[0];
    const end = a.pop();
    if (a.length > 0 && end !== undefined) {
      a[0] = end;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l]!, a[m]!) < 0) m = l;
        if (r < a.length && this.less(a[r]!, a[m]!) < 0) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}
