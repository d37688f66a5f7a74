/**
 * No starvation of large payloads. Pure.
 *
 * The server tells the agent the largest waiting request it could serve
 * (`MatchReply.largestWaiting`, designated to this pilot alone). While that
 * payload has waited less than the bound, the agent asks for anything that
 * fits its free cores. Once it has waited longer and needs more cores than
 * are free, the agent holds: no smaller work takes the cores that free up,
 * except work it can lend them to without delaying the reserved payload
 * (backfill.ts; only when the server says it honours `MatchRequest.backfill`).
 * As soon as enough cores are free it asks with `minCores`, so only work at
 * least that large comes.
 *
 * The guarantee. The agent starts holding at most one match wait after the
 * payload has waited the bound (it keeps a match request open even when it
 * holds, with `freeCores: 0` or a loan, so `largestWaiting` stays fresh while
 * all cores are busy, and the server answers within `matchWaitMaxSec`). Then:
 *  - while the shadow time is unknown (a running payload with no wall limit
 *    must end first) or the server does not take `backfill`, nothing new
 *    starts on the held cores: the payload starts once enough of the payloads
 *    running have ended, within the bound plus the longest payload running;
 *  - from the first moment H at which the shadow time S is known (backfill.ts:
 *    each payload counted until its wall clock start + wall limit + stop
 *    grace + reaping margin), every loan ends by S or takes only cores spare
 *    at S, so S never moves later nor becomes unknown. By S the needed cores
 *    are free (each payload's end frees its cores and makes the agent ask
 *    again at once), the agent asks with `minCores` and the payload starts:
 *    by H plus the longest declared wall limit, grace and margin of the
 *    payloads running at H; H is the hold's start unless payloads with no
 *    wall limit had to end first.
 * Both hold provided each payload's wall clock starts within the start slack
 * of its admission, and its process is gone within the margin after its
 * limit (the executor stops it at its wall limit: SIGTERM, grace, SIGKILL).
 */
import { loanFor, type Loan, type RunningPayload } from './backfill.js';

/** The largest request waiting that this agent could serve, and since when it waits (ms epoch). */
export interface WaitingRequest {
  cores: number;
  since: number;
  /** The server honours `MatchRequest.backfill`: held cores may be lent (backfill.ts). */
  backfill?: boolean;
}

/** What to ask the server for now. */
export type OfferDecision =
  | { kind: 'ask'; freeCores: number; minCores: number | null }
  /** Holding for a reserved payload, and lending free cores only as `loan` allows. */
  | { kind: 'lend'; freeCores: number; reserving: number; loan: Loan }
  /** No work now; `reserving`: the cores needed by the reserved payload, when that is why. */
  | { kind: 'hold'; reason: string; reserving?: number };

/** Everything the decision depends on. */
export interface StarvationInputs {
  totalCores: number;
  freeCores: number;
  largestWaiting: WaitingRequest | null;
  now: number;
  /** The bound in seconds (0: reserve at once). */
  boundSec: number;
  /** The payloads held (for the shadow time); absent: nothing is lent. */
  running?: readonly RunningPayload[];
  /** Seconds past a payload's wall limit by which its cores are free (backfill.ts). */
  endMarginSec?: number;
  /** Seconds after admission by which a payload's wall clock has started (backfill.ts). */
  startSlackSec?: number;
}

/** Whether to ask, and for what. Never asks for more cores than are free. */
export function decideOffer(i: StarvationInputs): OfferDecision {
  const free = Math.max(0, Math.min(i.freeCores, i.totalCores));
  if (free <= 0) return { kind: 'hold', reason: 'no free cores' };
  const w = i.largestWaiting;
  if (!w || w.cores > i.totalCores || w.cores < 1) return { kind: 'ask', freeCores: free, minCores: null };
  if (i.now - w.since < i.boundSec * 1000) return { kind: 'ask', freeCores: free, minCores: null };
  if (w.cores > free) {
    const loan =
      w.backfill === true && i.running
        ? loanFor({
            totalCores: i.totalCores,
            usedCores: i.totalCores - free,
            running: i.running,
            need: w.cores,
            now: i.now,
            endMarginSec: i.endMarginSec ?? 0,
            startSlackSec: i.startSlackSec ?? 0,
          })
        : null;
    if (loan) return { kind: 'lend', freeCores: free, reserving: w.cores, loan };
    return { kind: 'hold', reason: `reserving cores for a ${w.cores}-core payload waiting ${Math.floor((i.now - w.since) / 1000)} s`, reserving: w.cores };
  }
  return { kind: 'ask', freeCores: free, minCores: w.cores };
}

/** The WaitingRequest from a match reply's `largestWaiting`, received at `now`. */
export function waitingFromReply(
  field: { cores: number; waitingSec: number; backfill?: boolean } | null | undefined,
  now: number,
  previous: WaitingRequest | null,
): WaitingRequest | null {
  if (field === undefined) return previous;
  if (field === null) return null;
  return { cores: field.cores, since: now - field.waitingSec * 1000, ...(field.backfill === true ? { backfill: true } : {}) };
}
