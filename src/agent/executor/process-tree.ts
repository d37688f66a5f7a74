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
/** The stat fields read: ppid, pgrp, utime, stime, cutime, cstime, starttime, rss (man 5 proc). */
const STAT_FIELDS = [4, 5, 14, 15, 16, 17, 22, 24];

/**
 * Parse /proc/<pid>/stat text (the command may contain spaces and
 * parentheses). It reads the fields in place rather than splitting the line:
 * the watch parses every member's line every second, and an idle agent
 * should allocate next to nothing.
 */
export function parseStat(text: string): ProcInfo | null {
  const close = text.lastIndexOf(')');
  const pid = Number.parseInt(text, 10);
  if (close < 0 || !Number.isInteger(pid)) return null;
  // field 3 (state) starts two characters after the ')' (man 5 proc numbers fields from 1)
  const want = STAT_FIELDS;
  const got: number[] = [];
  let field = 3;
  let i = close + 2;
  const state = text.charAt(i);
  while (got.length < want.length && i < text.length) {
    // i is at the start of `field`
    const parse = want[got.length] === field;
    let value = 0;
    let negative = false;
    for (; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 32 || c === 10) break;
      if (!parse) continue;
      if (c === 45) negative = true;
      else if (c >= 48 && c <= 57) value = value * 10 + (c - 48);
      else return null;
    }
    if (parse) got.push(negative ? -value : value);
    field++;
    i++;
  }
  if (got.length < want.length || state === '' || state === ' ') return null;
  const [ppid, pgid, utime, stime, cutime, cstime, start, rss] = got as [number, number, number, number, number, number, number, number];
  return { pid, ppid, pgid, state, rssKb: Math.max(0, rss) * PAGE_KB, cpuTicks: utime + stime, childTicks: cutime + cstime, startTicks: start };
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
