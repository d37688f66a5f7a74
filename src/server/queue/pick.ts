/**
 * The picker: which queued payload a pilot gets for what it offers. Pure, so
 * it is tested on its own and runs inside the store's claim transaction.
 *
 * Order: first the group furthest below its share of recent usage (the
 * decayed core-seconds of `usage.ts`, divided by the group's share: the
 * smallest ratio goes first), then the highest priority, then first in,
 * first out (submission time, then id). A candidate fits when its cores fit
 * the free cores (`coresFor`), its memory (if set) the free memory, and its
 * wall time (if set) the time the pilot has left (if limited), and, while
 * the pilot lends cores held for a large payload (`backfill`), either its
 * wall time (which must be set) that loan's, or its cores the spare ones.
 * A candidate with requirements (docs/requirements.md) fits only a pilot
 * whose capabilities meet them, with enough of its GPUs free; while GPU work
 * this pilot could run is queued, its free GPUs keep the cores that work
 * needs from CPU-only payloads (gpu-cores.ts).
 * The first candidate in that order that fits is handed out, so a group
 * whose payloads do not fit this pilot does not block the others. A group
 * that requires isolation is skipped for a pilot that does not isolate.
 */
import { coresFor } from '../../protocol/cores.js';
import { meetsRequirements, type Capabilities, type FreeResources, type IsolationMode, type MatchRequest } from '../../protocol/index.js';
import type { Candidate, Offer, Picker } from './offer.js';
import { coresKeptForGpus, wantsGpus } from './gpu-cores.js';

/**
 * How many queued payloads of each group one claim looks at, most urgent and
 * oldest first, among those without requirements and again among those with
 * them (the store reads them). Enough for the picker to find one that
 * fits among mixed sizes; a claim then costs the same with 100 or 100,000
 * payloads queued.
 */
export const CANDIDATE_WINDOW = 100;

/** Group shares: group name → share (any positive scale; 70 and 30 mean 70 % and 30 %). */
export type Shares = ReadonlyMap<string, number>;

/** Groups whose payloads go only to pilots that isolate their payloads (`groups.G.requireIsolation`). */
export type IsolationPolicy = ReadonlySet<string>;

/** True when a pilot's registration said it isolates its payloads (absent, from an older agent: it does not). Pure. */
export function isIsolated(isolation: IsolationMode | null | undefined): boolean {
  return isolation !== undefined && isolation !== null && isolation !== 'none';
}

/** True when `c` may go to the pilot of `offer` under `policy`: its group does not require isolation, or the pilot isolates. Pure. */
export function isolationAllows(c: Pick<Candidate, 'group'>, offer: Pick<Offer, 'isolated'>, policy: IsolationPolicy): boolean {
  return offer.isolated === true || !policy.has(c.group);
}

/** True when `c` may go to the pilot of `offer`: the offer names no groups, or names `c`'s. Pure. */
export function groupAllows(c: Pick<Candidate, 'group'>, offer: Pick<Offer, 'groups'>): boolean {
  return !offer.groups || offer.groups.includes(c.group);
}

/** True when the pilot's capabilities, free GPUs and scratch meet `c`'s requirements (none: always). */
function requirementsFit(c: Candidate, offer: Offer): boolean {
  if (!c.requirements) return true;
  return meetsRequirements(c.requirements, offer.capabilities, offer.free ?? { gpus: [], scratchMb: null });
}

/** The cores `c` gets on this offer, or null when it does not fit. */
export function fits(c: Candidate, offer: Offer): number | null {
  if (c.memoryMb !== null && c.memoryMb > offer.freeMemoryMb) return null;
  if (c.wallSec !== null && offer.remainingSec !== null && c.wallSec > offer.remainingSec) return null;
  if (!requirementsFit(c, offer)) return null;
  const loan = offer.backfill;
  // a payload with no wall time, or a longer one than the loan, may take only the spare cores
  if (loan && (c.wallSec === null || c.wallSec > loan.wallSec)) return coresFor(c.cores, Math.min(offer.freeCores, loan.spareCores), offer.totalCores);
  return coresFor(c.cores, offer.freeCores, offer.totalCores);
}

/**
 * What a match request offers, `heldMs` after the server received it, from a
 * pilot with `capabilities` (what it said at register and since): the
 * backfill loan's wall time counts down while the request is held open, so
 * that what is handed out late still ends before the reserved payload can
 * start; its free GPUs are those of its capabilities it lists as free.
 */
export function offerOf(body: MatchRequest, heldMs = 0, capabilities: Capabilities | null = null): Offer {
  return {
    capabilities,
    free: freeOf(body, capabilities),
    freeCores: body.freeCores,
    totalCores: body.totalCores,
    freeMemoryMb: body.freeMemoryMb,
    remainingSec: body.remainingSec,
    ...(body.minCores !== undefined ? { minCores: body.minCores } : {}),
    ...(body.backfill !== undefined
      ? { backfill: { wallSec: Math.max(0, body.backfill.wallSec - Math.ceil(Math.max(0, heldMs) / 1000)), spareCores: body.backfill.spareCores } }
      : {}),
  };
}

/** The pilot's GPUs that the request lists free (unknown ids are ignored), and its scratch free. */
function freeOf(body: MatchRequest, capabilities: Capabilities | null): FreeResources {
  const ids = new Set(body.freeGpus ?? []);
  return { gpus: (capabilities?.gpus ?? []).filter((g) => ids.has(g.id)), scratchMb: body.freeScratchMb ?? null };
}

/** Priority descending, then submission time, then id: the order within a group. */
export function queueOrder(a: Candidate, b: Candidate): number {
  return b.priority - a.priority || a.submittedAt - b.submittedAt || a.id - b.id;
}

/**
 * How far a group is from its share: its fraction of all recent usage over
 * its fraction of all shares (of the groups named in `shares` or seen now).
 * Below 1 means below its share; the smallest goes first.
 */
export function shareRatios(groups: Iterable<string>, usage: ReadonlyMap<string, number>, shares: Shares, defaultShare: number): Map<string, number> {
  const all = new Set<string>([...shares.keys(), ...groups]);
  const shareOf = (g: string) => shares.get(g) ?? defaultShare;
  let totalShare = 0;
  let totalUse = 0;
  for (const g of all) {
    totalShare += shareOf(g);
    totalUse += usage.get(g) ?? 0;
  }
  const ratios = new Map<string, number>();
  for (const g of all) {
    const target = totalShare > 0 ? shareOf(g) / totalShare : 0;
    const used = totalUse > 0 ? (usage.get(g) ?? 0) / totalUse : 0;
    ratios.set(g, target > 0 ? used / target : Number.POSITIVE_INFINITY);
  }
  return ratios;
}

/** How the picker treats GPU nodes. */
export interface PickerOptions {
  /** Keep a GPU node's cores for queued GPU work (gpu-cores.ts); default true. False: first fit (the packing simulator's baseline). */
  keepGpuCores?: boolean;
}

/**
 * A fair-share picker for these shares; groups not named get `defaultShare`.
 * Payloads of the groups in `isolation` go only to offers of pilots that
 * isolate their payloads (nor do a GPU node's cores wait for such GPU work
 * on a pilot that does not); an offer that names its groups gets payloads
 * of those only (nor do its GPU cores wait for another group's work).
 */
export function fairSharePicker(
  shares: Shares = new Map(),
  defaultShare = 1,
  isolation: IsolationPolicy = new Set(),
  options: PickerOptions = {},
): Picker {
  const keepGpuCores = options.keepGpuCores ?? true;
  return (candidates, offer, usage = new Map()) => {
    const ratios = shareRatios(new Set(candidates.map((c) => c.group)), usage, shares, defaultShare);
    const ratio = (g: string) => ratios.get(g) ?? Number.POSITIVE_INFINITY;
    const ordered = [...candidates].sort((a, b) => ratio(a.group) - ratio(b.group) || queueOrder(a, b));
    const allowed = ordered.filter((c) => isolationAllows(c, offer, isolation) && groupAllows(c, offer));
    const kept = keepGpuCores ? coresKeptForGpus(allowed, offer, (c, o) => fits(c, o) !== null) : 0;
    const cpuOffer = kept > 0 ? { ...offer, freeCores: offer.freeCores - kept } : offer;
    for (const c of allowed) {
      const cores = fits(c, wantsGpus(c) ? offer : cpuOffer);
      if (cores !== null && cores >= Math.max(1, offer.minCores ?? 1) && cores <= offer.freeCores) return { id: c.id, cores };
    }
    return null;
  };
}

/** The picker with no shares configured: every group weighs the same. */
export const pick: Picker = fairSharePicker();

/** What a pilot could run if it were empty: its total cores and memory, the time it has left, and what it is and has. */
export interface PilotCapacity {
  totalCores: number;
  memoryMb: number;
  remainingSec: number | null;
  capabilities?: Capabilities | null;
}
