/**
 * The pilot: wires the ports and the pure decisions into one agent. Its
 * parts live in pilot/, each built with only what it needs (pilot/assemble.ts).
 *
 *   run ─▶ restore state ─▶ resume the old identity (restart) or register   (pilot/registration.ts)
 *          ─▶ find payloads a previous run left ─▶ serving
 *          ├─ heartbeat loop   (pilot/heartbeat-loop.ts; pilot/heartbeat-view.ts; instructions: pilot/instruction-handler.ts)
 *          ├─ match loop       (pilot/match-loop.ts: one open long-poll; aborted and re-asked when cores free up)
 *          ├─ deadline watch   (pilot/deadline-watch.ts: MJF shutdowntime every fraction of the grace; a move
 *          │                    rewrites the payloads' shutdowntime_job and re-asks the match)
 *          ├─ outbox loop      (reports in seq order, retried with backoff, kept on disk)
 *          ├─ drain-file watch (operator drain files)
 *          └─ lifecycle loop   (pilot/lifecycle-loop.ts: decideLifecycle; the lease fence, pilot/lease-fence.ts;
 *                               sleeps until the next moment a rule can fire)
 *   payloads start and end ─▶ payload/supervisor.ts ─▶ payload/hooks.ts ─▶ payload/book.ts (durable records, reports)
 *   halt (a value held by pilot/lifecycle.ts) ─▶ halt/halt-sequence.ts
 */
import { ShutdownCode, type EvictionReason, type LifecycleState } from '../protocol/index.js';
import { describeError, isVmpilotError } from '../shared/errors.js';
import { haltSequence } from './halt/halt-sequence.js';
import { assemble, type Parts, type PilotBase } from './pilot/assemble.js';
import { watchDeadline } from './pilot/deadline-watch.js';
import type { PilotDeps } from './pilot/deps.js';
import { abandonIdentity } from './pilot/identity-fault.js';
import { agentHalt, Lifecycle, type Halt } from './pilot/lifecycle.js';
import { watchDrainFiles } from './pilot/lifecycle-loop.js';
import { MatchCall } from './pilot/match-call.js';
import { restoreState } from './pilot/registration.js';
import { PilotResources } from './resources/pilot-resources.js';
import { Wakeup } from './wakeup.js';

export type { PilotDeps } from './pilot/deps.js';
export { FINAL_REPORT_MS } from './halt/halt-sequence.js';

/** One agent. Call `run()` once; signals map to `requestHalt` / `requestDrain`. */
export class Pilot {
  private readonly base: PilotBase;
  private readonly stopLoops = new AbortController();

  constructor(deps: PilotDeps) {
    const log = deps.log.child({ role: 'pilot' });
    const wake = new Wakeup(deps.clock);
    const call = new MatchCall();
    this.base = {
      deps,
      log,
      wake,
      call,
      life: new Lifecycle(log, wake, call, deps.config.idleTimeoutSec),
      res: deps.resources ?? new PilotResources(null, deps.config, log),
      stop: this.stopLoops.signal,
    };
  }

  /** The lifecycle state now. */
  get lifecycle(): LifecycleState {
    return this.base.life.state;
  }

  /** Ask for a halt (a signal, a caller): it happens at once; `eviction`: what stopped the payloads (default `halt`). */
  requestHalt(code: number, reason: string, eviction: EvictionReason = 'halt'): void {
    this.base.life.requestHalt({ by: 'signal', code, reason, eviction });
  }

  /** Ask for a drain: no new work, halt once running payloads end. Kept until the halt. */
  requestDrain(reason: string): void {
    this.base.life.requestDrain(reason);
  }

  /** End the open match request (it is asked again). */
  abortMatch(): void {
    this.base.call.abort();
  }

  /** Run the agent to the end: the Halter is its last step, so this never resolves in production. */
  async run(): Promise<never> {
    const { deps, life, log } = this.base;
    const { clock, config } = deps;
    life.boot(clock.now());
    log.info({ bootAt: life.bootAt, idleTimeoutSec: life.idleTimeoutSec }, 'boot');
    let parts: Parts | null = null;
    let outcome: Halt;
    try {
      const { keeper, identity } = await restoreState(deps.store, config.server ?? '', log);
      parts = assemble(this.base, keeper);
      outcome = await this.serve(parts, identity);
    } catch (err) {
      log.error({ err: describeError(err), code: isVmpilotError(err) ? err.code : undefined }, 'pilot failed');
      // what stopped any payload still running, as the server hears it: the agent's own failure unless the halt says
      outcome = { by: 'agent', code: ShutdownCode.TRANSIENT, reason: `internal error: ${describeError(err)}`, eviction: 'error', fatal: true };
    }
    return this.halt(parts, life.ending(outcome));
  }

  /** From the restored state to the halt: register (or resume), bootstrap, serve until the lifecycle halts. */
  private async serve(parts: Parts, identity: Awaited<ReturnType<typeof restoreState>>['identity']): Promise<Halt> {
    const { deps, life, log, res } = this.base;
    const { config } = deps;
    const stop = this.stopLoops.signal;
    // the server holds reports this pilot never sent: stop trusting its credential, register anew
    parts.outbox.onFault = (fault) => void abandonIdentity(parts.identityFault, fault);
    await parts.node.probeFirst(config.cores);
    await parts.node.refreshResources();
    let failure = identity.kind === 'resume' ? await parts.registration.resume(identity) : await parts.registration.register();
    let beating = false;
    const startBeating = () => {
      beating = true;
      void parts.outbox.run(stop);
      void parts.heartbeats.run(stop);
    };
    if (!failure && deps.bootstrap) {
      // registered: heartbeats flow during the bootstrap, so a long one (a large download) shows
      // on the server as a booting pilot, not a stalled one; bootstrap once registered, so that a
      // failed step reaches the server in the final report
      startBeating();
      const booted = await deps.bootstrap();
      // what the steps installed is in every payload's environment from now on
      if ('env' in booted) parts.payloadEnv.add(booted.env);
      else failure = booted.halt;
    }
    // a start-up problem (the agent never served) is also said in one plain line on stderr
    if (failure) return agentHalt(failure, 'error');
    // ended payloads' directories go once the server has their end reports (a full disk frees up)
    parts.outbox.onSettled = (reports) => {
      if (reports.some((r) => r.type === 'payload-ended')) void parts.pruner.prune();
    };
    void parts.pruner.prune();
    await parts.transition('serving', identity.kind === 'resume' ? 'resumed after an agent restart' : 'registered');
    if (!beating) startBeating();
    void parts.match.run();
    void watchDeadline({ clock: deps.clock, res, node: parts.node, stop });
    if (deps.drainFiles) void watchDrainFiles({ files: deps.drainFiles, life, clock: deps.clock, log, stop });
    return parts.lifecycle.run();
  }

  /** The halt sequence (halt/halt-sequence.ts), on the parts there are (none when the state could not be restored). */
  private halt(parts: Parts | null, halt: Halt): Promise<never> {
    const { deps, life, log, wake, call, res } = this.base;
    const stopLoops = () => {
      this.stopLoops.abort();
      wake.poke();
    };
    return haltSequence(
      {
        clock: deps.clock,
        log,
        lifecycle: life,
        transition: parts ? parts.transition : async (to, why) => void life.move(to, why),
        match: call,
        payloads: parts ? parts.payloads : { stopAll: () => [], allDone: async () => undefined },
        graceSec: res.graceSec(),
        reports: parts?.session.registered ? parts.outbox : null,
        session: parts ? parts.session : { markHalted: async () => undefined },
        stopLoops,
        store: deps.store,
        outputs: deps.outputs ?? null,
        halter: deps.halter,
        action: deps.config.halt,
      },
      halt,
    );
  }
}
