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
import { LIMITS, type Assignment, type Instruction, type LifecycleState } from '../../protocol/index.js';
import type { Clock } from '../../shared/clock.js';
import { describeError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { retryDelayMs } from '../control/retry.js';
import type { RunningPayload } from '../matcher/backfill.js';
import { admit, nextMatchRequest, remainingSec, reservationNow, type Admission, type MatchInputs } from '../matcher/matcher.js';
import { freeGpus, freeScratchMb, place, type NodeNow } from '../matcher/requirements.js';
import { waitingFromReply, type WaitingRequest } from '../matcher/starvation.js';
import type { ContactTracker } from './contact.js';
import type { PayloadBook } from '../payload/book.js';
import type { PayloadSupervisor } from '../payload/supervisor.js';
import type { PilotResources } from '../resources/pilot-resources.js';
import type { Outbox } from '../state/outbox.js';
import { HOUR, type Wakeup } from '../wakeup.js';
import type { LeaseFence } from './lease-fence.js';
import type { MatchCall } from './match-call.js';
import type { NodeState } from './node-state.js';
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

/** What the match loop reads and acts on. */
export interface MatchLoopDeps {
  clock: Clock;
  log: Logger;
  random: () => number;
  starvationSec: number;
  contact: Pick<ContactTracker, 'match' | 'unreachable'>;
  call: MatchCall;
  wake: Wakeup;
  /** Aborted when the pilot stops its loops. */
  stop: AbortSignal;
  node: Pick<NodeState, 'totalCores' | 'deadline' | 'freeMemoryMb' | 'refreshDeadline' | 'reprobe'>;
  res: Pick<PilotResources, 'graceSec' | 'capabilities' | 'gpuDevices' | 'scratchMb'>;
  payloads: Pick<PayloadSupervisor, 'ids' | 'usedCores' | 'wallFrom' | 'accept'>;
  book: Pick<PayloadBook, 'startedIds' | 'record' | 'records' | 'starting' | 'refused' | 'handBackPending'>;
  fence: Pick<LeaseFence, 'reportsPending' | 'renew'>;
  outbox: Pick<Outbox, 'add' | 'pending' | 'flushOnce'>;
  /** Carry out the instructions of a reply; true when there was a new one. */
  instructions(list: readonly Instruction[]): boolean;
  /** The lifecycle state as the matcher sees it (halting once a halt was asked for). */
  state(): LifecycleState;
  /** How long the server may hold the next request (pilot/lifecycle-loop.ts). */
  waitSec(): number;
  /** True while the pilot registers anew (pilot/identity-fault.ts): nothing is asked for. */
  registeringAnew(): boolean;
  /** Settles when the removal of ended payloads' directories under way is over. */
  dirsPruned(): Promise<void>;
}

/** One open long-poll for work at a time, and what is done with what comes. */
export class MatchLoop {
  /** Payloads released (payload-released) this run: listed in `holding` so the server does not hand them straight back. */
  private readonly releasing = new Set<number>();
  /**
   * Payloads the server handed out again although this pilot had started
   * them (it has not applied their reports): listed in `holding` from then
   * on, so that the server stops handing them back (no tight loop).
   */
  private readonly redelivered = new Set<number>();
  /** The largest request the server says waits for this pilot (starvation rule). */
  private largestWaiting: WaitingRequest | null = null;

  constructor(private readonly d: MatchLoopDeps) {}

  /** A new identity: what the old one listed in `holding` means nothing to it. */
  forgetHolding(): void {
    this.releasing.clear();
    this.redelivered.clear();
  }

  /** The ids the match request lists in `holding`, each once, at most LIMITS.cores of them (the schema's bound). */
  holdingNow(): number[] {
    const ids = new Set<number>([...this.d.payloads.ids, ...this.releasing, ...this.redelivered]);
    for (const r of this.d.outbox.pending) if ('payloadId' in r) ids.add(r.payloadId);
    return [...ids].slice(0, LIMITS.cores);
  }

  /** What the match request and the admission of a payload depend on, now. */
  inputs(): MatchInputs {
    const { payloads, node, book } = this.d;
    const free = this.nodeNow().free;
    const running: RunningPayload[] = [];
    for (const id of payloads.ids) {
      const rec = book.record(id);
      // no record (not expected): its cores count as used with an unknown end, so nothing is lent against them
      if (!rec?.assignment) continue;
      running.push({ cores: rec.cores, wallSec: rec.assignment.wallSec, wallFrom: payloads.wallFrom(id), admittedAt: rec.startedAt });
    }
    return {
      totalCores: node.totalCores,
      usedCores: payloads.usedCores,
      freeMemoryMb: node.freeMemoryMb(),
      state: this.d.state(),
      now: this.d.clock.now(),
      deadline: node.deadline,
      graceSec: this.d.res.graceSec(),
      holding: this.holdingNow(),
      waitMaxSec: this.d.waitSec(),
      largestWaiting: this.largestWaiting,
      starvationSec: this.d.starvationSec,
      running,
      freeGpus: free.gpus.map((g) => g.id),
      freeScratchMb: free.scratchMb,
    };
  }

  /** What the node is and has free now: GPUs no payload record holds, scratch no held payload declared. */
  nodeNow(): NodeNow {
    const records = this.d.book.records();
    const { res } = this.d;
    return {
      capabilities: res.capabilities(),
      free: { gpus: freeGpus(res.gpuDevices(), records.map((r) => r.gpus)), scratchMb: freeScratchMb(res.scratchMb(), records.map((r) => r.assignment)) },
    };
  }

  /** Ask for work until the pilot stops its loops. */
  async run(): Promise<void> {
    const d = this.d;
    const { clock, wake } = d;
    let failures = 0;
    /** The reservation last logged: an operator sees why cores idle, and what they are lent to. */
    let reserving = '';
    while (!d.stop.aborted) {
      // the remaining time asked with is the one of the deadline now
      await d.node.refreshDeadline();
      const v = wake.version;
      if (d.registeringAnew()) {
        // registering anew (pilot/identity-fault.ts): nothing to ask for until it has a new identity
        await wake.wait(v, HOUR);
        continue;
      }
      if (d.fence.reportsPending || d.book.handBackPending()) {
        // the server must have the fenced (or, after a restart, given back) payloads' reports before it may hand them here again
        await wake.wait(v, FENCE_REPORT_POLL_MS);
        continue;
      }
      if (failures > 0 && !(await reportsFirst(d.outbox, d.contact))) {
        failures++;
        await wake.wait(v, retryDelayMs(failures, d.random()));
        continue;
      }
      // delivering them may have shown that another sender holds the credential: ask for nothing under it
      if (d.registeringAnew()) continue;
      const inputs = this.inputs();
      const request = nextMatchRequest(inputs);
      const reserved = request ? reservationNow(inputs) : null;
      const key = reserved ? `${reserved.cores}/${reserved.loan !== null}` : '';
      if (key !== reserving) {
        if (reserved) d.log.info({ cores: reserved.cores, lending: reserved.loan }, 'holding cores for a reserved payload');
        else d.log.info('reservation over');
        reserving = key;
      }
      if (!request) {
        await wake.wait(v, HOUR);
        continue;
      }
      const signal = d.call.open();
      try {
        const reply = await d.contact.match(request, signal);
        failures = 0;
        this.largestWaiting = waitingFromReply(reply.largestWaiting, clock.now(), this.largestWaiting);
        const fresh = d.instructions(reply.instructions);
        const taken = reply.payload ? await this.take(reply.payload) : null;
        if ((!reply.payload && !fresh) || taken === 'duplicate') await wake.wait(wake.version, EMPTY_MATCH_PAUSE_MS);
      } catch (err) {
        if (signal.aborted) continue;
        failures++;
        d.log.warn({ err: describeError(err), failures }, 'match failed');
        await wake.wait(v, retryDelayMs(failures, d.random()));
      } finally {
        d.call.close(signal);
      }
      await d.node.reprobe();
    }
  }

  /** A payload from the server: start it if it fits, report it refused if not, ignore a redelivery. Says which it did. */
  async take(a: Assignment): Promise<'duplicate' | 'release' | 'reject' | 'start'> {
    const { clock, node, payloads, book, log } = this.d;
    await this.d.fence.renew(a);
    // handed out for a request made before the deadline moved: admitted by the deadline now
    await node.refreshDeadline();
    const secondsLeft = remainingSec(clock.now(), node.deadline, this.d.res.graceSec());
    let decision: Admission = admit(a, node.totalCores, payloads.usedCores, book.startedIds, this.d.state(), secondsLeft, reservationNow(this.inputs()));
    // its requirements, checked against the node now (matcher/requirements.ts), and the GPUs it gets
    let gpus: string[] = [];
    if (decision.kind === 'start') {
      const placed = place(a, this.nodeNow());
      if (placed.kind === 'release') decision = placed;
      else gpus = placed.gpus;
    }
    if (decision.kind !== 'release') this.releasing.delete(a.id);
    if (decision.kind !== 'duplicate') this.redelivered.delete(a.id);
    if (decision.kind === 'duplicate') {
      if (!this.redelivered.has(a.id)) log.warn({ payloadId: a.id, reason: decision.kind }, 'payload redelivered, not started again');
      remember(this.redelivered, a.id, MAX_RELEASING);
      return 'duplicate';
    }
    if (decision.kind === 'release') {
      // not started, not counted as started: the server puts it back in the queue, and may hand it here again later
      log.info({ payloadId: a.id, reason: decision.message }, 'payload released');
      // the server requeues it once the report arrives: only recent ones matter, and `holding` is bounded
      remember(this.releasing, a.id, MAX_RELEASING);
      await this.d.outbox.add({ type: 'payload-released', payloadId: a.id, reason: decision.message });
      return 'release';
    }
    if (decision.kind === 'reject') {
      log.warn({ payloadId: a.id, reason: decision.message }, 'payload refused');
      await book.refused(a, decision.message);
      return 'reject';
    }
    // the space of ended payloads being freed (a disk that one of them filled) is there for this one
    await this.d.dirsPruned();
    // On disk before it starts: a restart finds it (pid 0: starting) and never starts it again.
    await book.starting(a, decision.cores, gpus);
    payloads.accept(a, decision.cores);
    return 'start';
  }
}
