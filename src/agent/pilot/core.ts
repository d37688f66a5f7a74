/**
 * The state one pilot's parts share: its lifecycle, identity and durable
 * state, the payloads it holds, what it knows of its node and deadline, and
 * the requests (drain, halt) that steer it. The parts (match loop,
 * instruction handler, payload books, registration, lifecycle loop,
 * heartbeat view) each act on this; `Pilot` (../pilot.ts) wires them.
 */
import type { EvictionReason, Instruction, LifecycleState } from '../../protocol/index.js';
import type { Logger } from '../../shared/log.js';
import type { AgentConfig } from '../config/schema.js';
import type { JobOutputs } from '../halt/job-outputs.js';
import type { WaitingRequest } from '../matcher/starvation.js';
import type { ContactTracker } from '../monitor/contact.js';
import type { DrainFiles } from '../monitor/drain-files.js';
import type { HeartbeatLoop } from '../monitor/heartbeat-loop.js';
import { canTransition, type HaltRequest } from '../monitor/lifecycle.js';
import type { UsageProbe } from '../monitor/usage.js';
import type { PayloadSupervisor } from '../payload/supervisor.js';
import type { Clock, ControlPlane, Halter, NodeProbe, NodeSnapshot, ProcessRunner, StateStore } from '../ports.js';
import type { PilotResources } from '../resources/pilot-resources.js';
import type { Outbox } from '../state/outbox.js';
import type { StateKeeper } from '../state/state-keeper.js';
import type { Wakeup } from '../wakeup.js';
import type { LeaseFence } from './lease-fence.js';

/** Everything a pilot needs. The optional ports default to doing nothing (tests). */
export interface PilotDeps {
  config: Readonly<AgentConfig>;
  control: ControlPlane;
  runner: ProcessRunner;
  probe: NodeProbe;
  halter: Halter;
  store: StateStore;
  clock: Clock;
  log: Logger;
  /** `$JOBOUTPUTS`, when given. */
  outputs?: JobOutputs | null;
  drainFiles?: DrainFiles;
  usage?: UsageProbe;
  /** [0, 1), for the first heartbeat's jitter. */
  random?: () => number;
  /** Machine/Job Features values for the heartbeat. */
  features?: () => Record<string, string | number>;
  /** Resources and deadline (MJF, batch, cgroup), re-read on every heartbeat; default: config and probe only. */
  resources?: PilotResources;
  /** The bootstrap steps (agent/bootstrap), run once registered; a halt request (code 500) when one failed. */
  bootstrap?: () => Promise<HaltRequest | null>;
}

/** One hour: how long a loop with nothing to wait for sleeps before it looks again. */
export const HOUR = 3_600_000;

/** The shared state of one pilot, and the small actions every part needs. */
export class PilotCore {
  lifecycle: LifecycleState = 'booting';
  keeper!: StateKeeper;
  outbox!: Outbox;
  /** Set by the pilot once built (it needs the core's callbacks). */
  payloads!: PayloadSupervisor;
  heartbeats!: HeartbeatLoop;
  /** Stops the payloads when the lease runs out (pilot/lease-fence.ts). Set by the pilot. */
  fence!: LeaseFence;
  /** Carries out instructions not seen before; true when there was one. Set by the pilot. */
  handleInstructions: (list: readonly Instruction[]) => boolean = () => false;
  registered = false;
  bootAt = 0;
  /** The last moment a payload was running, or boot time. */
  lastBusyAt = 0;
  deadline: number | null = null;
  totalCores = 0;
  snap: NodeSnapshot | null = null;
  /** The server's bound on a held-open match (RegisterReply.matchWaitMaxSec). */
  matchWaitSec = 20;
  idleTimeoutSec: number;
  drainRequested: string | null = null;
  drainFile: string | null = null;
  haltRequested: HaltRequest | null = null;
  matchAbort: AbortController | null = null;
  readonly stopLoops = new AbortController();
  /** Ids of payloads this pilot ever started (never start one twice). */
  readonly started = new Set<number>();
  readonly instructionsSeen = new Set<number>();
  /** Payloads released (payload-released) this run: listed in `holding` so the server does not hand them straight back. */
  readonly releasing = new Set<number>();
  /**
   * Payloads the server handed out again although this pilot had started
   * them (it has not applied their reports): listed in `holding` from then
   * on, so that the server stops handing them back (no tight loop).
   */
  readonly redelivered = new Set<number>();
  /** Payloads a restart gave back to the queue (never started, or lost): no work is asked for until their reports are delivered. */
  readonly handedBack = new Set<number>();
  /** Why the pilot is registering anew (another sender holds its credential), while it does; else null. */
  identityFault: string | null = null;
  /** How many times this run registered anew after such a fault. */
  identityFaults = 0;
  /** Memory limit from a source stronger than the probe (MJF, cgroup), MiB. */
  memLimitMb: number | null = null;
  /** Settles when the removal of ended payloads' directories under way is over (a new payload waits for the space). */
  dirsPruned: Promise<void> = Promise.resolve();
  /** The largest request the server says waits for this pilot (starvation rule). */
  largestWaiting: WaitingRequest | null = null;

  constructor(
    readonly deps: PilotDeps,
    readonly log: Logger,
    readonly wake: Wakeup,
    readonly control: ContactTracker,
    readonly res: PilotResources,
  ) {
    this.idleTimeoutSec = deps.config.idleTimeoutSec;
  }

  /** The lifecycle state as the matcher sees it: halting as soon as a halt was asked for. */
  get effectiveState(): LifecycleState {
    return this.haltRequested ? 'halting' : this.lifecycle;
  }

  /**
   * Ask for a halt (instruction or signal): it happens at once. `eviction`
   * is what the server hears stopped the payloads (`halt`, `signal`).
   */
  requestHalt(code: number, reason: string, eviction: EvictionReason = 'halt'): void {
    if (this.haltRequested) return;
    this.haltRequested = { code, reason, eviction };
    this.log.info({ code, reason }, 'halt requested');
    this.abortMatch();
    this.wake.poke();
  }

  /** Ask for a drain: no new work, halt once running payloads end. Kept until the halt. */
  requestDrain(reason: string): void {
    if (this.drainRequested !== null) return;
    this.drainRequested = reason;
    this.log.info({ reason }, 'drain requested');
    this.abortMatch();
    this.wake.poke();
  }

  /** End the open match request (it is asked again with what changed). */
  abortMatch(): void {
    this.matchAbort?.abort();
  }

  /** Memory (MiB) still free for payloads: configured or limited memory minus what payloads asked for, else the probe's. */
  freeMemoryMb(): number {
    const configured = this.deps.config.memoryMb ?? this.memLimitMb;
    if (configured !== null) return Math.max(0, configured - this.payloads.usedMemoryMb);
    return this.snap?.memoryMb.free ?? 0;
  }

  /** Move the lifecycle (when allowed), log it, beat at once and report it. */
  async transition(to: LifecycleState, reason: string): Promise<void> {
    const from = this.lifecycle;
    if (!canTransition(from, to)) {
      this.log.error({ from, to, reason }, 'invalid transition');
      return;
    }
    this.lifecycle = to;
    this.log.info({ from, to, reason }, 'state');
    this.wake.poke();
    if (to !== 'halted') this.heartbeats.beatNow();
    if (this.registered) await this.outbox.add({ type: 'state', state: to, reason });
  }
}
