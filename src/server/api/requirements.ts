/**
 * Requirements at the API: a submitted payload's requirements are
 * normalised before they are stored (a bad value is a 400 naming the field,
 * the value and what was expected, and nothing is queued), and a queued
 * payload's view says why no live pilot can run it.
 */
import { RequirementError, noRequirements, normaliseRequirements, type PayloadView, type PilotState, type SubmitRequest } from '../../protocol/index.js';
import { VmpilotError } from '../../shared/errors.js';
import { isIsolated, isolationAllows, type IsolationPolicy } from '../queue/pick.js';
import { waitingReason } from '../queue/waiting.js';
import type { Store } from '../store/store.js';

/** Pilots that take new work (or will once booted): those a queued payload waits for. */
const TAKING_WORK: readonly PilotState[] = ['submitted', 'booting', 'running'];

/**
 * `request` with its requirements normalised (left out when it asks for
 * nothing); `where` names it in an error (`body`, `body.payloads[3]`).
 * Throws VMP_BAD_REQUEST naming the key, the value and what was expected.
 */
export function normaliseSubmit(request: SubmitRequest, where: string): SubmitRequest {
  if (request.requirements === undefined) return request;
  let requirements;
  try {
    requirements = normaliseRequirements(request.requirements);
  } catch (err) {
    if (err instanceof RequirementError) throw new VmpilotError('VMP_BAD_REQUEST', `${where}.requirements.${err.message}`);
    throw err;
  }
  const normalised: SubmitRequest = { ...request, requirements };
  if (noRequirements(requirements)) delete normalised.requirements;
  return normalised;
}

/**
 * The payload's view with `waiting` set when it is queued: why no live
 * pilot can run it, or null. A payload of a group in `isolation` counts
 * only pilots that isolate their payloads; a pilot restricted to some groups
 * (a director instance's) counts only for those.
 */
export async function withWaiting(store: Store, view: PayloadView, isolation: IsolationPolicy = new Set()): Promise<PayloadView> {
  if (view.state !== 'queued') return view;
  // oldest first, as the reason lists them (listings come newest first)
  const pilots = (await store.listPilots({ states: TAKING_WORK })).reverse();
  const runners = pilots.map((p) => ({
    label: `pilot ${p.id}`,
    cores: p.cores,
    memoryMb: p.memoryMb,
    capabilities: p.capabilities,
    isolated: isIsolated(p.isolation),
    groups: p.groups ?? null,
  }));
  const requiresIsolation = !isolationAllows(view, { isolated: false }, isolation);
  return { ...view, waiting: waitingReason({ ...view, requiresIsolation }, runners) };
}
