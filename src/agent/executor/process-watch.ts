/**
 * One watch over /proc for all of a runner's payloads. `refresh()` lists the
 * pids, classifies the new ones once (process-tree.ts: member of a tree, or
 * foreign), reads the stat line of each member only, and hands every tree
 * its members' figures. With 16 payloads a refresh reads the directory and
 * about 32 small files, not every process on the node 16 times.
 *
 *   add(tree) before the spawn (its marker is known) ──▶ started(tree, pid) ──▶ members follow
 *   leader, group, children, marker, cgroup ──▶ remove(tree)
 *   a pid that ends leaves its tree; a pid reused by another process (new start time) is new
 */
import type { MemoryCgroup } from './memory-cgroup.js';
import { listPids, readEnvironValue, readStat } from './proc.js';
import { CLOCK_TICKS, classifyNew, type ProcInfo } from './process-tree.js';

/** The environment variable that marks every process of one payload's tree. */
export const TREE_MARKER = 'VMPILOT_TREE';

/** One payload's tree: who is in it now, what it used. */
export class WatchedTree {
  /** Live members at the last refresh, with their figures. */
  readonly members = new Map<number, ProcInfo>();
  /** Last seen CPU ticks of each member (own + waited-for children) and its parent. */
  private readonly ticks = new Map<number, { ticks: number; ppid: number }>();
  /** Ticks of members that ended where no member's accounting will show them. */
  private lostTicks = 0;
  private peakKb = 0;
  /** The tree's RSS at the last refresh (KiB). */
  rssKb = 0;

  /** The payload's first process (0 until it started). */
  leader = 0;

  constructor(
    /** The value of TREE_MARKER in its members' environment. */
    readonly marker: string,
    readonly cgroup: MemoryCgroup | null,
  ) {}

  /** Members that can still run (zombies have ended and only wait to be reaped). */
  get living(): number[] {
    return [...this.members.values()].filter((p) => p.state !== 'Z').map((p) => p.pid);
  }

  /** Refreshes this tree has taken figures from (the first is at its start). */
  private updates = 0;

  /** True once a refresh after its start saw it: before that, its CPU and memory figures are only what it had at its first instant. */
  get sampled(): boolean {
    return this.updates >= 2;
  }

  /** Take the figures of a refresh. */
  update(): void {
    this.updates += 1;
    // An ended member's time shows in its parent's child ticks when the parent is a member
    // that waited for it; otherwise (re-parented, or the leader itself) it is kept here.
    for (const [pid, t] of this.ticks) {
      if (this.members.has(pid)) continue;
      this.ticks.delete(pid);
      if (pid === this.leader || !this.members.has(t.ppid)) this.lostTicks += t.ticks;
    }
    let rssKb = 0;
    for (const p of this.members.values()) {
      rssKb += p.rssKb;
      this.ticks.set(p.pid, { ticks: p.cpuTicks + p.childTicks, ppid: p.ppid });
    }
    this.rssKb = rssKb;
    this.peakKb = Math.max(this.peakKb, rssKb);
  }

  /** CPU seconds of the whole tree so far. */
  get cpuSec(): number {
    let t = this.lostTicks;
    for (const v of this.ticks.values()) t += v.ticks;
    return Math.round((t / CLOCK_TICKS) * 100) / 100;
  }

  /** The largest RSS seen (MiB), or the cgroup's peak when larger. */
  get peakRssMb(): number {
    return this.peakWith(this.cgroup?.peakBytes() ?? null);
  }

  /** The larger of the RSS seen and the cgroup's peak `cgBytes` (null: none known), MiB. */
  private peakWith(cgBytes: number | null): number {
    return Math.round(Math.max(this.peakKb / 1024, cgBytes === null ? 0 : cgBytes / (1024 * 1024)));
  }

  /**
   * What its end report can say it used: CPU seconds once a refresh after
   * its start saw it (a payload that ended sooner was never measured, and 0
   * would be a false figure), peak memory then too, or from its cgroup, which
   * counts from the start whatever the refreshes saw.
   */
  get used(): { cpuSec?: number; peakRssMb?: number } {
    const cg = this.cgroup?.peakBytes() ?? null;
    const peak = this.sampled || cg !== null ? { peakRssMb: this.peakWith(cg) } : {};
    return this.sampled ? { cpuSec: this.cpuSec, ...peak } : peak;
  }
}

/** Owner of a pid: its tree or null (foreign), and its start time (to tell a reused pid). */
interface Owner {
  tree: WatchedTree | null;
  startTicks: number;
}

/** The watch over every tree of one runner. */
export class ProcessWatch {
  private readonly owners = new Map<number, Owner>();
  private readonly trees = new Set<WatchedTree>();
  /** Started trees by leader pid. */
  private readonly leaders = new Map<number, WatchedTree>();
  private readonly byMarker = new Map<string, WatchedTree>();

  constructor(private readonly procRoot = '/proc') {}

  /** Follow `tree`, before its leader is spawned: a process carrying its marker is its member from then on. */
  add(tree: WatchedTree): void {
    this.trees.add(tree);
    this.byMarker.set(tree.marker, tree);
  }

  /** The tree's leader is `pid`: a member whatever it looked like before. */
  started(tree: WatchedTree, pid: number): void {
    tree.leader = pid;
    this.leaders.set(pid, tree);
    this.claim(pid, tree);
    this.refresh();
  }

  /** Stop following `tree`; processes it leaves behind become foreign. */
  remove(tree: WatchedTree): void {
    this.trees.delete(tree);
    if (this.leaders.get(tree.leader) === tree) this.leaders.delete(tree.leader);
    this.byMarker.delete(tree.marker);
    for (const o of this.owners.values()) if (o.tree === tree) o.tree = null;
  }

  /** Re-read /proc: every tree's members and figures as of now. */
  refresh(): void {
    const live = listPids(this.procRoot);
    const seen = new Set(live);
    for (const pid of this.owners.keys()) if (!seen.has(pid)) this.owners.delete(pid);
    for (const tree of this.trees) for (const pid of tree.cgroup?.pids() ?? []) if (seen.has(pid)) this.claim(pid, tree);

    const fresh: ProcInfo[] = [];
    for (const tree of this.trees) tree.members.clear();
    for (const pid of live) {
      const owner = this.owners.get(pid);
      if (owner && owner.tree === null) continue; // foreign: never read again
      const info = readStat(this.procRoot, pid);
      if (!info) continue;
      if (!owner || owner.startTicks !== info.startTicks) {
        if (owner) this.owners.delete(pid); // the pid was reused
        fresh.push(info);
        continue;
      }
      owner.tree!.members.set(pid, info);
    }
    const placed = classifyNew(
      fresh,
      (pid) => this.owners.get(pid)?.tree,
      this.leaders,
      (pid) => {
        const value = readEnvironValue(this.procRoot, pid, TREE_MARKER);
        return value === null ? null : (this.byMarker.get(value) ?? null);
      },
    );
    for (const info of fresh) {
      const tree = placed.get(info.pid) ?? null;
      this.owners.set(info.pid, { tree, startTicks: info.startTicks });
      tree?.members.set(info.pid, info);
    }
    for (const tree of this.trees) tree.update();
  }

  /** Make `pid` a member of `tree` (its leader, or a pid its cgroup holds). */
  private claim(pid: number, tree: WatchedTree): void {
    const owner = this.owners.get(pid);
    if (owner?.tree === tree) return;
    const info = readStat(this.procRoot, pid);
    if (info) this.owners.set(pid, { tree, startTicks: info.startTicks });
  }
}
