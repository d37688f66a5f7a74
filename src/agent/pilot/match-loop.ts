/**
 * The match loop: one open long-poll for work at a time, asked with the
 * cores, memory and time free now (aborted and asked again when they
 * change), and `take`, which admits, releases or refuses what the server
 * hands out (matcher/matcher.ts decides). Before each request and each
 * admission the deadline is looked at again (pilot/deadline-watch.ts), so
 * neither goes by a deadline the site has since moved.
 *
 *   ask (nextMatchRequest) ──null──▶ sleep until something changes
 *     └──▶ match ──payload──▶ take: start | release | refuse | ignore a redelivery
 *                ├─nothing─▶ short pause, ask again
 *                └─failed──▶ back off (capped low, control/retry.ts), deliver the
 *                            reports that waited first (pilot/reconnect.ts), ask again
 *
 * `holding` lists every payload the server must not hand back: those held,
 * those released, those with reports still undelivered, and those the
 * server handed out again after they started here (its record lags, or
 * someone else reported under this pilot's name). A redelivery is also
 * followed by a pause, so no answer of the server can make the loop spin.
 */
import { LIMITS, type Assignment } from '../../protocol/index.js';
import { describeError } from '../../shared/errors.js';
import { retryDelayMs } from '../control/retry.js';
import { payloadDir } from '../executor/payload-runner.js';
import type { RunningPayload } from '../matcher/backfill.js';
import { admit, nextMatchRequest, remainingSec, reservationNow, type Admission, type MatchInputs } from '../matcher/matcher.js';
import { freeGpus, freeScratchMb, place, type NodeNow } from '../matcher/requirements.js';
import { waitingFromReply } from '../matcher/starvation.js';
import { HOUR, type PilotCore } from './core.js';
import { refreshDeadline } from './deadline-watch.js';
import { matchWaitSec } from './lifecycle-loop.js';
import { handBackPending } from './payload-books.js';
import { reportsFirst } from './reconnect.js';

/** Pause after an empty match reply, so a server that answers at once cannot make us spin. */
const EMPTY_MATCH_PAUSE_MS = 200;
/** How often the match loop looks whether fenced payloads' end reports are delivered. */
const FENCE_REPORT_POLL_MS = 500;
/** How many released (and how many redelivered) payload ids the match request keeps listing in `holding`. */
const MAX_RELEASING = 256;

/** Add `id` to `set`, dropping the oldest beyond `max` (`holding` is bounded). */
function remember(set: Set<number>, id: number, max: number): void {
  set.delete(id);
  set.add(id);
  if (set.size > max) set.delete(set.values().next().value!);
}

/** The ids the match request lists in `holding`, each once, at most LIMITS.cores of them (the schema's bound). */
export function holdingNow(p: PilotCore): number[] {
  const ids = new Set<number>([...p.payloads.ids, ...p.releasing, ...p.redelivered]);
  for (const r of p.outbox.pending) if ('payloadId' in r) ids.add(r.payloadId);
  return [...ids].slice(0, LIMITS.cores);
}

/** What the match request and the admission of a payload depend on, now. */
export function matchInputs(p: PilotCore): MatchInputs {
  const node = nodeNow(p);
  const running: RunningPayload[] = [];
  for (const id of p.payloads.ids) {
    const rec = p.keeper.state.running[String(id)];
    // no record (not expected): its cores count as used with an unknown end, so nothing is lent against them
    if (!rec?.assignment) continue;
    running.push({ cores: rec.cores, wallSec: rec.assignment.wallSec, wallFrom: p.payloads.wallFrom(id), admittedAt: rec.startedAt });
  }
  return {
    totalCores: p.totalCores,
    usedCores: p.payloads.usedCores,
    freeMemoryMb: p.freeMemoryMb(),
    state: p.effectiveState,
    now: p.deps.clock.now(),
    deadline: p.deadline,
    graceSec: p.res.graceSec(),
    holding: holdingNow(p),
    waitMaxSec: matchWaitSec(p),
    largestWaiting: p.largestWaiting,
    starvationSec: p.deps.config.starvationSec,
    running,
    freeGpus: node.free.gpus.map((g) => g.id),
    freeScratchMb: node.free.scratchMb,
  };
}

/** What the node is and has free now: GPUs no payload record holds, scratch no held payload declared. */
export function nodeNow(p: PilotCore): NodeNow {
  const records = Object.values(p.keeper.state.running);
  return {
    capabilities: p.res.capabilities(),
    free: { gpus: freeGpus(p.res.gpuDevices(), records.map((r) => r.gpus)), scratchMb: freeScratchMb(p.res.scratchMb(), records.map((r) => r.assignment)) },
  };
}

/** Ask for work until the pilot stops its loops. */
export async function matchLoop(p: PilotCore): Promise<void> {
  const { clock, config, probe } = p.deps;
  const random = p.deps.random ?? Math.random;
  let failures = 0;
  /** The reservation last logged: an operator sees why cores idle, and what they are lent to. */
  let reserving = '';
  while (!p.stopLoops.signal.aborted) {
    // the remaining time asked with is the one of the deadline now
    await refreshDeadline(p);
    const v = p.wake.version;
    if (p.identityFault !== null) {
      // registering anew (pilot/identity-fault.ts): nothing to ask for until it has a new identity
      await p.wake.wait(v, HOUR);
      continue;
    }
    if (p.fence.reportsPending || handBackPending(p)) {
      // the server must have the fenced (or, after a restart, given back) payloads' reports before it may hand them here again
      await p.wake.wait(v, FENCE_REPORT_POLL_MS);
      continue;
    }
    if (failures > 0 && !(await reportsFirst(p))) {
      failures++;
      await p.wake.wait(v, retryDelayMs(failures, random()));
      continue;
    }
    // delivering them may have shown that another sender holds the credential: ask for nothing under it
    if (p.identityFault !== null) continue;
    const inputs = matchInputs(p);
    const request = nextMatchRequest(inputs);
    const reserved = request ? reservationNow(inputs) : null;
    const key = reserved ? `${reserved.cores}/${reserved.loan !== null}` : '';
    if (key !== reserving) {
      if (reserved) p.log.info({ cores: reserved.cores, lending: reserved.loan }, 'holding cores for a reserved payload');
      else p.log.info('reservation over');
      reserving = key;
    }
    if (!request) {
      await p.wake.wait(v, HOUR);
      continue;
    }
    const abort = new AbortController();
    p.matchAbort = abort;
    try {
      const reply = await p.control.match(request, abort.signal);
      failures = 0;
      p.largestWaiting = waitingFromReply(reply.largestWaiting, clock.now(), p.largestWaiting);
      const fresh = p.handleInstructions(reply.instructions);
      const taken = reply.payload ? await take(p, reply.payload) : null;
      if ((!reply.payload && !fresh) || taken === 'duplicate') await p.wake.wait(p.wake.version, EMPTY_MATCH_PAUSE_MS);
    } catch (err) {
      if (abort.signal.aborted) continue;
      failures++;
      p.log.warn({ err: describeError(err), failures }, 'match failed');
      await p.wake.wait(v, retryDelayMs(failures, random()));
    } finally {
      p.matchAbort = null;
    }
    p.snap = await probe.snapshot(config.stateDir).catch(() => p.snap);
  }
}

/** A payload from the server: start it if it fits, report it refused if not, ignore a redelivery. Says which it did. */
export async function take(p: PilotCore, a: Assignment): Promise<'duplicate' | 'release' | 'reject' | 'start'> {
  const { clock, config } = p.deps;
  p.fence.renew(a);
  // handed out for a request made before the deadline moved: admitted by the deadline now
  await refreshDeadline(p);
  const secondsLeft = remainingSec(clock.now(), p.deadline, p.res.graceSec());
  let decision: Admission = admit(a, p.totalCores, p.payloads.usedCores, p.started, p.effectiveState, secondsLeft, reservationNow(matchInputs(p)));
  // its requirements, checked against the node now (matcher/requirements.ts), and the GPUs it gets
  let gpus: string[] = [];
  if (decision.kind === 'start') {
    const placed = place(a, nodeNow(p));
    if (placed.kind === 'release') decision = placed;
    else gpus = placed.gpus;
  }
  if (decision.kind !== 'release') p.releasing.delete(a.id);
  if (decision.kind !== 'duplicate') p.redelivered.delete(a.id);
  if (decision.kind === 'duplicate') {
    if (!p.redelivered.has(a.id)) p.log.warn({ payloadId: a.id, reason: decision.kind }, 'payload redelivered, not started again');
    remember(p.redelivered, a.id, MAX_RELEASING);
    return 'duplicate';
  }
  if (decision.kind === 'release') {
    // not started, not counted as started: the server puts it back in the queue, and may hand it here again later
    p.log.info({ payloadId: a.id, reason: decision.message }, 'payload released');
    // the server requeues it once the report arrives: only recent ones matter, and `holding` is bounded
    remember(p.releasing, a.id, MAX_RELEASING);
    await p.outbox.add({ type: 'payload-released', payloadId: a.id, reason: decision.message });
    return 'release';
  }
  p.started.add(a.id);
  p.keeper.state.started.push(a.id);
  if (decision.kind === 'reject') {
    p.log.warn({ payloadId: a.id, reason: decision.message }, 'payload refused');
    await p.outbox.add({ type: 'payload-ended', payloadId: a.id, exitCode: null, signal: null, message: decision.message });
    return 'reject';
  }
  // the space of ended payloads being freed (a disk that one of them filled) is there for this one
  await p.dirsPruned;
  // On disk before it starts: a restart finds it (pid 0: starting) and never starts it again.
  const dir = payloadDir(config.stateDir, a.id);
  p.keeper.state.running[String(a.id)] = { pid: 0, cores: decision.cores, startedAt: clock.now(), dir, assignment: a, ...(gpus.length > 0 ? { gpus } : {}) };
  // saved BEFORE the process is spawned: a SIGKILL in between leaves a "starting" record, never an unknown payload
  await p.keeper.persist();
  p.payloads.accept(a, decision.cores);
  return 'start';
}
