/**
 * Who belongs to a payload's process tree. Pure.
 *
 * A process is classified once, when the watch first sees it, and keeps its
 * owner for as long as its pid lives (even after it detached into its own
 * group or session and was re-parented to init). A new process belongs to a
 * tree when its process group is the tree's leader, when its parent belongs
 * to the tree, or (checked last, since it costs a read of its environment)
 * when it carries the tree's marker in its environment, which catches a
 * double fork that happened between two samples. Everything else is foreign
 * and never read again, so a sample costs a directory listing plus one small
 * read per member, however busy the node is.
 */

/** One process as /proc/<pid>/stat describes it. */
export interface ProcInfo {
  pid: number;
  ppid: number;
  pgid: number;
  /** One-letter state: R, S, D, Z (zombie)… */
  state: string;
  /** Resident set size in KiB. */
  rssKb: number;
  /** User + system CPU time in clock ticks. */
  cpuTicks: number;
  /** CPU time of its children it has waited for, in clock ticks. */
  childTicks: number;
  /** Start time in clock ticks since boot: tells a reused pid from the process seen before. */
  startTicks: number;
}

/** Linux's USER_HZ and page size on every platform vmpilot supports. */
export const CLOCK_TICKS = 100;
const PAGE_KB = 4;

/** Parse /proc/<pid>/stat text (the command may contain spaces and parentheses). */
export function parseStat(text: string): ProcInfo | null {
  const close = text.lastIndexOf(')');
  const pid = Number.parseInt(text, 10);
  if (close < 0 || !Number.isInteger(pid)) return null;
  const f = text.slice(close + 2).trim().split(' ');
  if (f.length < 22) return null;
  // f[0] is field 3 (state): field n is f[n - 3] (man 5 proc)
  const n = (i: number) => Number(f[i - 3]);
  return {
    pid,
    ppid: n(4),
    pgid: n(5),
    state: f[0]!,
    rssKb: Math.max(0, n(24)) * PAGE_KB,
    cpuTicks: n(14) + n(15),
    childTicks: n(16) + n(17),
    startTicks: n(22),
  };
}

/**
 * The owners of processes seen for the first time: `T` for a member of a
 * tree, null for a foreign process. `ownerOf` gives the owner of a process
 * classified before (undefined: not known), `leaders` the trees by leader
 * pid, `markerOwner` reads a process's environment for a tree's marker (only
 * called for processes neither their group nor their parent places).
 */
export function classifyNew<T>(
  fresh: readonly ProcInfo[],
  ownerOf: (pid: number) => T | null | undefined,
  leaders: ReadonlyMap<number, T>,
  markerOwner: (pid: number) => T | null,
): Map<number, T | null> {
  const got = new Map<number, T | null>();
  const owner = (pid: number) => (got.has(pid) ? got.get(pid) : ownerOf(pid));
  // parents may be new too: repeat until nothing more is placed
  const placeByFamily = () => {
    for (let grew = true; grew; ) {
      grew = false;
      for (const p of fresh) {
        if (got.has(p.pid)) continue;
        const t = leaders.get(p.pgid) ?? (p.ppid > 1 ? owner(p.ppid) : null);
        if (t) {
          got.set(p.pid, t);
          grew = true;
        }
      }
    }
  };
  placeByFamily();
  let marked = false;
  for (const p of fresh) {
    if (got.has(p.pid)) continue;
    const t = markerOwner(p.pid);
    if (t) {
      got.set(p.pid, t);
      marked = true;
    }
  }
  if (marked) placeByFamily();
  for (const p of fresh) if (!got.has(p.pid)) got.set(p.pid, null);
  return got;
}
