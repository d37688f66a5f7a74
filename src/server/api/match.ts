/**
 * The match long poll. In order, each time round:
 * 1. instructions pending for the pilot → answer at once, no payload;
 * 2. a payload assigned to it but not started and not held → hand it again
 *    (the reply that carried it may have been lost);
 * 3. claim a queued payload that fits → answer with it;
 * 4. otherwise wait for a wake-up (work queued, an instruction for this
 *    pilot) until the wait time is up, and go round again.
 * A request whose client has gone (`signal` aborted) is never given a payload;
 * one that a newer request of the same pilot replaced (`replaced` aborted,
 * long-polls.ts) is answered at once with none.
 *
 * Nothing here relies on the store answering synchronously: the ticket is
 * taken before the first look at the store (notifier.ts), and a claim that
 * completes after the client went away leaves the payload assigned and not
 * started, which is exactly a reply lost on the way: the pilot's next match
 * request gets it again (step 2), or the stall sweep requeues it.
 */
import type { MatchReply, MatchRequest, PilotState } from '../../protocol/index.js';
import { groupAllows, isIsolated, isolationAllows, offerOf } from '../queue/pick.js';
import { decideDesignation } from '../queue/reservations.js';
import type { Candidate } from '../queue/offer.js';
import type { ApiContext } from './context.js';

/** Pilot states in which a pilot takes no new work. */
const NO_NEW_WORK: readonly PilotState[] = ['draining', 'halting', 'halted', 'error'];

/** Answer one match request, or null when the client went away before an answer. */
export async function matchFor(
  ctx: ApiContext,
  pilotId: number,
  body: MatchRequest,
  signal: AbortSignal,
  replaced: AbortSignal = new AbortController().signal,
): Promise<MatchReply | null> {
  const { store, clock, notifier } = ctx;
  const receivedAt = clock.now();
  const deadline = receivedAt + Math.min(body.waitSec, ctx.matchWaitMaxSec) * 1000;
  /**
   * The reply, with the large waiting request this pilot should reserve cores
   * for: one designated to it alone (queue/reservations.ts), so that pilots do
   * not all hold cores for the same payload.
   */
  const answer = async (reply: MatchReply): Promise<MatchReply> => {
    const pilot = await store.getPilot(pilotId);
    if (!pilot) return reply;
    const capacity = { totalCores: body.totalCores, memoryMb: pilot.memoryMb, remainingSec: body.remainingSec, capabilities: pilot.capabilities ?? null };
    // a designation lapses when its pilot has not asked for two full match waits
    const staleMs = 2 * (ctx.matchWaitMaxSec + 30) * 1000;
    // designations are soft state: a queue view up to a second old serves every pilot asking meanwhile
    const now = clock.now();
    const candidates = await waitingView(ctx, now);
    // a pilot never reserves cores for a payload it may not be given
    const isolated = { isolated: isIsolated(pilot.isolation) };
    const groups = pilot.groups ?? null;
    // nor for a payload of a group it does not serve (a director instance's pilot serves its endpoint's groups)
    const mine =
      ctx.isolationPolicy.size === 0 && !groups ? candidates
      : candidates.filter((c) => isolationAllows(c, isolated, ctx.isolationPolicy) && groupAllows(c, { groups }));
    // in the store, so that every server process sees the same designations
    const waiting = await store.designate((rows) => decideDesignation(rows, mine, pilotId, capacity, now, staleMs));
    // this server honours MatchRequest.backfill: the pilot may lend the cores it holds for this payload
    return { ...reply, largestWaiting: waiting && { ...waiting, backfill: true } };
  };
  for (;;) {
    // before the first look at the store: a wake-up during any of the awaits below is kept
    const ticket = notifier.ticket(pilotId);
    try {
      await store.touchPilot(pilotId, clock.now());
      const instructions = await store.pendingInstructions(pilotId);
      if (instructions.length > 0) return answer({ payload: null, instructions });
      if (signal.aborted) return null;
      if (replaced.aborted) return answer({ payload: null, instructions: [] });
      const again = await store.redeliverable(pilotId, body.holding);
      if (again) return answer({ payload: again, instructions: [] });
      const pilot = await store.getPilot(pilotId);
      if (signal.aborted) return null;
      if (replaced.aborted) return answer({ payload: null, instructions: [] });
      if (pilot && !NO_NEW_WORK.includes(pilot.state) && !notifier.isClosing) {
        const now = clock.now();
        const offer = { ...offerOf(body, now - receivedAt, pilot.capabilities ?? null), isolated: isIsolated(pilot.isolation), groups: pilot.groups ?? null };
        const claimed = await store.claimPayload(pilotId, offer, ctx.picker, now, ctx.usageHalfLifeSec);
        if (claimed && signal.aborted) {
          // the client left while the claim ran: assigned and not started, it is handed to the pilot's next request (step 2)
          ctx.log.info({ pilotId, payloadId: claimed.id }, 'payload assigned after its match client went away');
          return null;
        }
        // replaced meanwhile: this request is still open, and takes the payload rather than none
        if (claimed) {
          ctx.log.info({ pilotId, payloadId: claimed.id, cores: claimed.cores, group: claimed.group }, 'payload assigned');
          return answer({ payload: claimed, instructions: [] });
        }
      }
      const left = deadline - clock.now();
      if (left <= 0) return answer({ payload: null, instructions: [] });
      const end = await ticket.wait(left, AbortSignal.any([signal, replaced]));
      if (end === 'aborted') return signal.aborted ? null : answer({ payload: null, instructions: await store.pendingInstructions(pilotId) });
      if (end === 'closing' || end === 'timeout') {
        return answer({ payload: null, instructions: await store.pendingInstructions(pilotId) });
      }
    } finally {
      ticket.dispose();
    }
  }
}

/**
 * The queued candidates designations are made from: a view of the queue at
 * most a second old, shared by every match answered meanwhile (a read in
 * flight too, so answers that come together read the queue once).
 */
function waitingView(ctx: ApiContext, now: number): Promise<Candidate[]> {
  const cached = ctx.waitingCache;
  if (cached && now - cached.at < 1000) return cached.candidates;
  const candidates = ctx.store.waitingCandidates();
  const entry = { at: now, candidates };
  ctx.waitingCache = entry;
  // a failed read is not kept: the next answer reads again
  candidates.catch(() => {
    if (ctx.waitingCache === entry) ctx.waitingCache = null;
  });
  return candidates;
}
