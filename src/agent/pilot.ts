/**
 * The pilot: wires the ports and the pure decisions into one agent. Its
 * parts live in pilot/ and share one PilotCore (pilot/core.ts).
 *
 *   run ─▶ restore state ─▶ resume the old identity (restart) or register   (pilot/registration.ts)
 *          ─▶ find payloads a previous run left ─▶ serving
 *          ├─ heartbeat loop   (monitor/heartbeat-loop.ts; pilot/heartbeat-view.ts; instructions: pilot/instruction-handler.ts)
 *          ├─ match loop       (pilot/match-loop.ts: one open long-poll; aborted and re-asked when cores free up)
 *          ├─ deadline watch   (pilot/deadline-watch.ts: MJF shutdowntime every fraction of the grace; a move
 *          │                    rewrites the payloads' shutdowntime_job and re-asks the match)
 *          ├─ outbox loop      (reports in seq order, retried with backoff, kept on disk)
 *          ├─ drain-file watch (operator drain files)
 *          └─ lifecycle loop   (pilot/lifecycle-loop.ts: decideLifecycle; the lease fence, pilot/lease-fence.ts;
 *                               sleeps until the next moment a rule can fire)
 *   payloads start and end ─▶ pilot/payload-books.ts (durable records, reports)
 *   halt ─▶ halt/halt-sequence.ts
 */
import { ShutdownCode, type EvictionReason, type LifecycleState } from '../protocol/index.js';
import { describeError, isVmpilotError } from '../shared/errors.js';
import { haltSequence } from './halt/halt-sequence.js';
import { ContactTracker } from './monitor/contact.js';
import { HeartbeatLoop } from './monitor/heartbeat-loop.js';
import { PayloadSupervisor } from './payload/supervisor.js';
import { PilotCore, type PilotDeps } from './pilot/core.js';
import { watchDeadline } from './pilot/deadline-watch.js';
import { HeartbeatView, refreshResources } from './pilot/heartbeat-view.js';
import { abandonIdentity } from './pilot/identity-fault.js';
import { handleInstructions, keepCredential } from './pilot/instruction-handler.js';
import { LeaseFence } from './pilot/lease-fence.js';
import { lifecycleLoop, watchDrainFiles } from './pilot/lifecycle-loop.js';
import { matchLoop } from './pilot/match-loop.js';
import { DirPruner, onEnded, onStarted } from './pilot/payload-books.js';
import { registerLoop, restoreState, resume } from './pilot/registration.js';
import { PilotResources } from './resources/pilot-resources.js';
import { Wakeup } from './wakeup.js';

export type { PilotDeps } from './pilot/core.js';
export { FINAL_REPORT_MS } from './halt/halt-sequence.js';

/** One agent. Call `run()` once; signals map to `requestHalt` / `requestDrain`. */
export class Pilot {
  private readonly p: PilotCore;
  private readonly view: HeartbeatView;

  constructor(deps: PilotDeps) {
    const log = deps.log.child({ role: 'pilot' });
    const wake = new Wakeup(deps.clock);
    const res = deps.resources ?? new PilotResources(null, deps.config, log);
    const control = new ContactTracker(
      deps.control,
      deps.clock,
      () => {
        // back: the reports that waited go first (pilot/reconnect.ts), an overdue heartbeat goes now
        log.info('server reachable again');
        p.outbox?.kick();
        p.heartbeats?.serverBack();
        wake.poke();
      },
      // the server said "nothing": the idle rule looks again (monitor/idle.ts)
      () => wake.poke(),
    );
    const p = new PilotCore(deps, log, wake, control, res);
    this.p = p;
    this.view = new HeartbeatView(p);
    p.handleInstructions = (list) => handleInstructions(p, list);
    p.fence = new LeaseFence(p);
    p.payloads = new PayloadSupervisor(
      deps.runner,
      deps.clock,
      deps.log.child({ role: 'executor' }),
      deps.config.stateDir,
      deps.config.payloadBaseEnv,
      () => res.graceSec(),
      { started: (a, pid, cores) => onStarted(p, a, pid, cores), ended: (a, r) => onEnded(p, a, r) },
      // the GPUs its record holds (chosen by `take` before it was accepted), with its account or sandbox
      (a, cores) => res.contextFor(a, cores, deps.clock.now(), p.keeper.state.running[String(a.id)]?.gpus ?? []),
    );
    p.heartbeats = new HeartbeatLoop(
      {
        control,
        clock: deps.clock,
        log: deps.log.child({ role: 'heartbeat' }),
        outputs: deps.outputs ?? null,
        random: deps.random ?? Math.random,
        build: () => this.view.now(),
        onReply: (reply) => {
          keepCredential(p, reply);
          p.handleInstructions(reply.instructions);
        },
      },
      30,
    );
  }

  /** The lifecycle state now. */
  get lifecycle(): LifecycleState {
    return this.p.lifecycle;
  }

  /** Ask for a halt (instruction or signal): it happens at once; `eviction`: what stopped the payloads (default `halt`). */
  requestHalt(code: number, reason: string, eviction?: EvictionReason): void {
    this.p.requestHalt(code, reason, eviction);
  }

  /** Ask for a drain: no new work, halt once running payloads end. Kept until the halt. */
  requestDrain(reason: string): void {
    this.p.requestDrain(reason);
  }

  /** End the open match request (it is asked again). */
  abortMatch(): void {
    this.p.abortMatch();
  }

  /** Run the agent to the end: the Halter is its last step, so this never resolves in production. */
  async run(): Promise<never> {
    const p = this.p;
    const { clock, config } = p.deps;
    p.bootAt = p.lastBusyAt = clock.now();
    p.control.reset(p.bootAt);
    p.deadline = config.lifetimeSec === null ? null : p.bootAt + config.lifetimeSec * 1000;
    p.log.info({ bootAt: p.bootAt, idleTimeoutSec: p.idleTimeoutSec }, 'boot');
    let code: number = ShutdownCode.TRANSIENT;
    let reason = 'internal error';
    // what stopped any payload still running, as the server hears it: the agent's own failure unless the halt says
    let eviction: EvictionReason = 'error';
    // a start-up problem (the agent never served) is also said in one plain line on stderr
    let fatal = true;
    try {
      const identity = await restoreState(p);
      // the server holds reports this pilot never sent: stop trusting its credential, register anew
      p.outbox.onFault = (fault) => void abandonIdentity(p, fault);
      p.snap = await p.deps.probe.snapshot(config.stateDir);
      p.totalCores = config.cores ?? p.snap.cores;
      await refreshResources(p);
      let failure = identity.kind === 'resume' ? await resume(p, identity, () => this.view.now()) : await registerLoop(p);
      let beating = false;
      const startBeating = () => {
        beating = true;
        void p.outbox.run(p.stopLoops.signal);
        void p.heartbeats.run(p.stopLoops.signal);
      };
      if (!failure && p.deps.bootstrap) {
        // registered: heartbeats flow during the bootstrap, so a long one (a large download) shows
        // on the server as a booting pilot, not a stalled one; bootstrap once registered, so that a
        // failed step reaches the server in the final report
        startBeating();
        failure = await p.deps.bootstrap();
      }
      if (failure) {
        ({ code, reason } = failure);
        eviction = failure.eviction ?? eviction;
        fatal = failure.fatal === true;
      } else {
        fatal = false;
        // ended payloads' directories go once the server has their end reports (a full disk frees up)
        const pruner = new DirPruner(p);
        p.outbox.onSettled = (reports) => {
          if (reports.some((r) => r.type === 'payload-ended')) void pruner.prune();
        };
        void pruner.prune();
        await p.transition('serving', identity.kind === 'resume' ? 'resumed after an agent restart' : 'registered');
        if (!beating) startBeating();
        void matchLoop(p);
        void watchDeadline(p);
        void watchDrainFiles(p);
        const halt = await lifecycleLoop(p);
        ({ code, reason } = halt);
        eviction = halt.eviction ?? 'halt';
      }
    } catch (err) {
      p.log.error({ err: describeError(err), code: isVmpilotError(err) ? err.code : undefined }, 'pilot failed');
      reason = `internal error: ${describeError(err)}`;
      fatal = true;
    }
    p.haltRequested ??= { code, reason, eviction };
    const evictedBy = p.haltRequested.eviction ?? eviction;
    return haltSequence(
      {
        clock,
        log: p.log,
        store: p.deps.store,
        halter: p.deps.halter,
        outputs: p.deps.outputs ?? null,
        action: config.halt,
        graceSec: p.res.graceSec(),
        registered: p.registered,
        state: () => p.lifecycle,
        transition: (to, why) => p.transition(to, why),
        stopMatching: () => p.abortMatch(),
        // stopped for the infrastructure's sake: the server queues them again (store/endings.ts)
        stopPayloads: (why) => p.payloads.stopAll(why, undefined, evictedBy),
        payloadsDone: () => p.payloads.allDone(),
        report: async (draft) => void (await p.outbox.add(draft)),
        deliver: (until) => p.outbox.drain(until),
        markHalted: async () => {
          p.keeper.state.haltedAt = clock.now();
          await p.keeper.persist();
        },
        stopLoops: () => {
          p.stopLoops.abort();
          p.wake.poke();
        },
      },
      code,
      reason,
      // a halt asked for meanwhile (a signal, an instruction) is no start-up problem of the agent's
      fatal && p.haltRequested.reason === reason,
    );
  }
}
