/**
 * Backfill while cores are held for a reserved payload (EASY backfilling,
 * Lifka 1995). Pure.
 *
 * While the agent holds cores for the large payload designated to it
 * (starvation.ts), the cores free now would idle until enough others free up.
 * From the running payloads' wall clocks and wall limits the agent computes
 * the shadow time: the earliest moment at which the reserved payload's cores
 * are sure to be free. Until then it lends the free cores, but only to work
 * that
 *  - declares a wall time that ends it by the shadow time, or
 *  - fits in the cores that stay spare even at the shadow time (free then
 *    beyond what the reserved payload needs), whatever its wall time.
 *
 * When a running payload's cores are sure to be free (its end bound): when
 * its wall clock started (or, not started yet, its admission plus
 * `startSlackSec`), plus its wall limit (the executor stops it then), plus
 * `endMarginSec` (the stop grace from SIGTERM to SIGKILL, and reaping). A
 * payload with no wall limit, one past its end bound, or cores the agent
 * counts as used but cannot place, has no known end: it counts as running
 * for ever, so no backfill relies on it ending. A payload with no declared
 * wall time is never lent cores the reserved payload needs.
 *
 * Why the shadow time never moves later (the guarantee, stated in
 * starvation.ts): a payload lent cores at `now` by its wall time has an end
 * bound of at most now + startSlackSec + wallSec + endMarginSec ≤ shadow, so
 * the cores free at the shadow time do not change; one lent spare cores
 * takes at most the spare, so at least `need` stay free then. Payloads
 * ending only free cores. So the shadow time computed after any sequence of
 * such loans and endings is never later than the one before.
 */
import type { Assignment } from '../../protocol/index.js';

/** A payload this agent holds, as backfill sees it. */
export interface RunningPayload {
  cores: number;
  /** Its declared wall time (seconds), or null: no limit, an unknown end. */
  wallSec: number | null;
  /** When its wall clock started (ms epoch; the executor stops it wallSec later), or null: not started yet. */
  wallFrom: number | null;
  /** When the agent admitted it (ms epoch). */
  admittedAt: number;
}

/** What the shadow time and the loan depend on. */
export interface BackfillInputs {
  totalCores: number;
  /** Cores allocated to held payloads (running or starting). */
  usedCores: number;
  running: readonly RunningPayload[];
  /** Cores the reserved payload needs here. */
  need: number;
  now: number;
  /** Seconds past a payload's wall limit by which its cores are sure to be free (stop grace, reaping). */
  endMarginSec: number;
  /** Seconds after admission by which a payload's wall clock has surely started (spawn). */
  startSlackSec: number;
}

/** When the reserved payload's cores are sure to be free, and how many more are free then. */
export interface Shadow {
  /** ms epoch; `now` when enough cores are free already. */
  at: number;
  /** Cores free at `at` beyond `need`. */
  spareCores: number;
}

/** What may be lent now: work that ends within `wallSec`, or that fits in `spareCores`. */
export interface Loan {
  /** The longest declared wall time of work that may take any free core (0: none). */
  wallSec: number;
  /** Cores (at most the free ones) that work of any wall time, or none declared, may take. */
  spareCores: number;
  /** The shadow time it is computed for (ms epoch). */
  shadowAt: number;
}

/** When `r`'s cores are sure to be free (ms epoch), or null when unknown. */
export function endBound(r: RunningPayload, endMarginSec: number, startSlackSec: number): number | null {
  if (r.wallSec === null) return null;
  const from = r.wallFrom ?? r.admittedAt + startSlackSec * 1000;
  return from + (r.wallSec + endMarginSec) * 1000;
}

/**
 * The shadow time for `need` cores: the earliest moment at which, counting
 * each held payload as running until its end bound (for ever when unknown),
 * at least `need` cores are free. Null when that never happens (a payload
 * with no known end must end first) or `need` exceeds the node.
 */
export function shadowTime(i: BackfillInputs): Shadow | null {
  if (i.need > i.totalCores) return null;
  let free = i.totalCores - i.usedCores;
  if (free >= i.need) return { at: i.now, spareCores: free - i.need };
  const ends: { at: number; cores: number }[] = [];
  let placed = 0;
  for (const r of i.running) {
    const at = endBound(r, i.endMarginSec, i.startSlackSec);
    placed += r.cores;
    // past its bound and still held: the bound did not hold, its end is unknown
    if (at !== null && at > i.now) ends.push({ at, cores: r.cores });
  }
  // cores counted as used that no held payload accounts for end at an unknown time
  if (placed > i.usedCores) return null;
  ends.sort((a, b) => a.at - b.at);
  for (let k = 0; k < ends.length; ) {
    const at = ends[k]!.at;
    while (k < ends.length && ends[k]!.at === at) free += ends[k++]!.cores;
    if (free >= i.need) return { at, spareCores: free - i.need };
  }
  return null;
}

/**
 * What may be lent now while holding for `need` cores, or null when nothing
 * may (no core free, no known shadow time, no time before it and no spare).
 * Never lends more cores than are free.
 */
export function loanFor(i: BackfillInputs): Loan | null {
  const free = Math.min(i.totalCores, i.totalCores - i.usedCores);
  if (free <= 0) return null;
  const shadow = shadowTime(i);
  if (!shadow) return null;
  const wallSec = Math.floor((shadow.at - i.now) / 1000 - i.endMarginSec - i.startSlackSec);
  const spareCores = Math.min(free, shadow.spareCores);
  if (wallSec < 1 && spareCores < 1) return null;
  return { wallSec: Math.max(0, wallSec), spareCores: Math.max(0, spareCores), shadowAt: shadow.at };
}

/** Whether a payload of `cores` and declared `wallSec` fits `loan` (the rule the server applies too). */
export function fitsLoan(cores: number, wallSec: number | null, loan: Pick<Loan, 'wallSec' | 'spareCores'>): boolean {
  return (wallSec !== null && wallSec <= loan.wallSec) || cores <= loan.spareCores;
}

/** Why `a` may not take the cores held for the reserved payload, or null when it fits `loan`. */
export function loanRefusal(a: Pick<Assignment, 'cores' | 'wallSec'>, loan: Pick<Loan, 'wallSec' | 'spareCores'>): string | null {
  if (fitsLoan(a.cores, a.wallSec, loan)) return null;
  const wall = a.wallSec === null ? 'no declared wall time' : `a wall time of ${a.wallSec} s`;
  return `not started: cores are held for a reserved payload; ${a.cores} cores with ${wall} would delay it (lendable: ${loan.spareCores} cores, or work of at most ${loan.wallSec} s)`;
}
