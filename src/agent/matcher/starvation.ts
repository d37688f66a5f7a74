/**
 * No starvation of large payloads. Pure.
 *
 * The server tells the agent the largest waiting request it could serve
 * (`MatchReply.largestWaiting`). While that payload has waited less than the
 * bound, the agent asks for anything that fits its free cores. Once it has
 * waited longer and needs more cores than are free, the agent stops asking
 * (so no smaller work fills the cores that free up); as soon as enough cores
 * are free it asks with `minCores`, so only work at least that large comes.
 * The large payload thus starts within the bound plus the longest running
 * payload, however much small work keeps arriving. That holds whatever the
 * bound, because the agent keeps a match request open even when it holds
 * (with `freeCores: 0`, matcher.ts), so `largestWaiting` stays fresh while all
 * cores are busy; the server answers such a request at the latest after the
 * match wait (`matchWaitMaxSec`), which adds at most that much staleness.
 */

/** The largest request waiting that this agent could serve, and since when it waits (ms epoch). */
export interface WaitingRequest {
  cores: number;
  since: number;
}

/** What to ask the server for now. */
export type OfferDecision =
  | { kind: 'ask'; freeCores: number; minCores: number | null }
  | { kind: 'hold'; reason: string };

/** Everything the decision depends on. */
export interface StarvationInputs {
  totalCores: number;
  freeCores: number;
  largestWaiting: WaitingRequest | null;
  now: number;
  /** The bound in seconds (0: reserve at once). */
  boundSec: number;
}

/** Whether to ask, and for what. Never asks for more cores than are free. */
export function decideOffer(i: StarvationInputs): OfferDecision {
  const free = Math.max(0, Math.min(i.freeCores, i.totalCores));
  if (free <= 0) return { kind: 'hold', reason: 'no free cores' };
  const w = i.largestWaiting;
  if (!w || w.cores > i.totalCores || w.cores < 1) return { kind: 'ask', freeCores: free, minCores: null };
  if (i.now - w.since < i.boundSec * 1000) return { kind: 'ask', freeCores: free, minCores: null };
  if (w.cores > free) return { kind: 'hold', reason: `reserving cores for a ${w.cores}-core payload waiting ${Math.floor((i.now - w.since) / 1000)} s` };
  return { kind: 'ask', freeCores: free, minCores: w.cores };
}

/** The WaitingRequest from a match reply's `largestWaiting`, received at `now`. */
export function waitingFromReply(field: { cores: number; waitingSec: number } | null | undefined, now: number, previous: WaitingRequest | null): WaitingRequest | null {
  if (field === undefined) return previous;
  if (field === null) return null;
  return { cores: field.cores, since: now - field.waitingSec * 1000 };
}
