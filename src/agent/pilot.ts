/**
 * The pilot: wires the ports and the pure decisions into one agent.
 *
 *   run ─▶ register (retry while unreachable) ─▶ serving
 *          ├─ heartbeat loop   (interval from the server; instructions)
 *          ├─ match loop       (one open long-poll; aborted and re-asked when cores free up)
 *          ├─ outbox loop      (reports in seq order, retried with backoff)
 *          └─ lifecycle loop   (decideLifecycle; sleeps until the next moment a rule can fire)
 *   halt ─▶ stop matching, SIGTERM payloads, grace, SIGKILL, last reports,
 *           shutdown_message, Halter
 */
import { ShutdownCode, exitStatusFor, shutdownMessage, shutdownText, type Assignment, type Instruction, type LifecycleState } from '../protocol/index.js';
import { VERSION } from '../protocol/version.js';
import { describeError, isVmpilotError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { AgentConfig } from './config/schema.js';
import { payloadDir } from './executor/payload-runner.js';
import { admit, nextMatchRequest } from './matcher/matcher.js';
import { buildHeartbeat } from './monitor/heartbeat.js';
import { carryOut } from './monitor/instructions.js';
import { canTransition, decideLifecycle, type HaltRequest } from './monitor/lifecycle.js';
import { PayloadSupervisor } from './payloads.js';
import type { Clock, ControlPlane, Halter, NodeProbe, NodeSnapshot, ProcessRunner, StateStore } from './ports.js';
import { Outbox, backoffMs } from './state/outbox.js';
import { StateKeeper, emptyState } from './state/state-keeper.js';
import { Wakeup } from './wakeup.js';

/** Everything a pilot needs. */
export interface PilotDeps {
  config: Readonly<AgentConfig>;
  control: ControlPlane;
  runner: ProcessRunner;
  probe: NodeProbe;
  halter: Halter;
  store: StateStore;
  clock: Clock;
  log: Logger;
}

const HOUR = 3_600_000;
/** How long the halt sequence tries to deliver the last reports. */
export const FINAL_REPORT_MS = 10_000;
/** Pause after an empty match reply, so a server that answers at once cannot make us spin. */
const EMPTY_MATCH_PAUSE_MS = 200;

/** One agent. Call `run()` once; signals map to `requestHalt` / `requestDrain`. */
export class Pilot {
  lifecycle: LifecycleState = 'booting';
  private readonly wake: Wakeup;
  private readonly beat: Wakeup;
  private keeper!: StateKeeper;
  private outbox!: Outbox;
  private readonly payloads: PayloadSupervisor;
  private readonly log: Logger;
  private registered = false;
  private bootAt = 0;
  private lastBusyAt = 0;
  private deadline: number | null = null;
  private totalCores = 0;
  private snap: NodeSnapshot | null = null;
  private heartbeatSec = 30;
  private matchWaitSec = 20;
  private idleTimeoutSec: number;
  private drainRequested: string | null = null;
  private haltRequested: HaltRequest | null = null;
  private matchAbort: AbortController | null = null;
  private readonly stopLoops = new AbortController();
  private readonly started = new Set<number>();
  private readonly instructionsSeen = new Set<number>();

  constructor(private readonly deps: PilotDeps) {
    this.log = deps.log.child({ role: 'pilot' });
    this.wake = new Wakeup(deps.clock);
    this.beat = new Wakeup(deps.clock);
    this.idleTimeoutSec = deps.config.idleTimeoutSec;
    this.payloads = new PayloadSupervisor(
      deps.runner,
      deps.clock,
      deps.log.child({ role: 'executor' }),
      deps.config.stateDir,
      deps.config.payloadBaseEnv,
      () => deps.config.graceSec,
      { started: (a, pid, cores) => this.onStarted(a, pid, cores), ended: (a, r) => this.onEnded(a, r) },
    );
  }

  /** Ask for a halt (instruction or SIGTERM): it happens at once. */
  requestHalt(code: number, reason: string): void {
    if (this.haltRequested) return;
    this.haltRequested = { code, reason };
    this.log.info({ code, reason }, 'halt requested');
    this.abortMatch();
    this.wake.poke();
  }

  /** Ask for a drain: no new work, halt once running payloads end. */
  requestDrain(reason: string): void {
    if (this.drainRequested !== null) return;
    this.drainRequested = reason;
    this.log.info({ reason }, 'drain requested');
    this.abortMatch();
    this.wake.poke();
  }

  /** Run the agent to the end: the Halter is its last step, so this never resolves in production. */
  async run(): Promise<never> {
    const { clock, config } = this.deps;
    this.bootAt = this.lastBusyAt = clock.now();
    this.deadline = config.lifetimeSec === null ? null : this.bootAt + config.lifetimeSec * 1000;
    let code: number = ShutdownCode.TRANSIENT;
    let reason = 'internal error';
    try {
      await this.restoreState();
      this.snap = await this.deps.probe.snapshot(config.stateDir);
      this.totalCores = config.cores ?? this.snap.cores;
      const failure = await this.registerLoop();
      if (failure) {
        ({ code, reason } = failure);
      } else {
        await this.transition('serving', 'registered');
        void this.outbox.run(this.stopLoops.signal);
        void this.heartbeatLoop();
        void this.matchLoop();
        ({ code, reason } = await this.lifecycleLoop());
      }
    } catch (err) {
      this.log.error({ err: describeError(err), code: isVmpilotError(err) ? err.code : undefined }, 'pilot failed');
      reason = `internal error: ${describeError(err)}`;
    }
    return this.haltSequence(code, reason);
  }

  private async restoreState(): Promise<void> {
    const { store, config } = this.deps;
    const old = await store.load();
    const state = emptyState(config.server ?? '');
    if (old && old.server === state.server) {
      // A new run is a new pilot: keep what must never happen twice, drop the old pilot's reports.
      state.started = old.started;
      state.instructionsDone = old.instructionsDone;
      if (old.outbox.length > 0 || Object.keys(old.running).length > 0) {
        this.log.warn({ outbox: old.outbox.length, running: Object.keys(old.running) }, 'previous run left reports or payloads');
      }
    }
    for (const id of state.started) this.started.add(id);
    for (const id of state.instructionsDone) this.instructionsSeen.add(id);
    this.keeper = new StateKeeper(store, state);
    this.outbox = new Outbox(this.keeper, this.deps.control, this.deps.clock, this.deps.log.child({ role: 'outbox' }), (list) =>
      this.handleInstructions(list),
    );
    await this.keeper.persist();
  }

  /** Register, retrying while the server is unreachable; a failure to halt with, or null once registered. */
  private async registerLoop(): Promise<HaltRequest | null> {
    const { control, clock, config } = this.deps;
    const snap = this.snap!;
    for (let failures = 0; ; ) {
      if (this.haltRequested) return this.haltRequested;
      const v = this.wake.version;
      try {
        const reply = await control.register({
          hostname: snap.hostname,
          version: VERSION,
          cores: this.totalCores,
          memoryMb: config.memoryMb ?? snap.memoryMb.total,
          ...(snap.diskFreeMb === null ? {} : { diskMb: snap.diskFreeMb }),
          deadline: this.deadline,
        });
        this.registered = true;
        this.heartbeatSec = reply.heartbeatIntervalSec;
        this.matchWaitSec = reply.matchWaitMaxSec;
        this.keeper.state.pilotId = reply.pilotId;
        this.keeper.state.credential = reply.credential;
        await this.keeper.persist();
        this.log.info({ pilotId: reply.pilotId, cores: this.totalCores }, 'registered');
        return null;
      } catch (err) {
        if (!isVmpilotError(err, 'VMP_UNREACHABLE', 'VMP_SERVER')) {
          const code = isVmpilotError(err, 'VMP_FORBIDDEN') ? ShutdownCode.BANNED : ShutdownCode.ENVIRONMENT;
          return { code, reason: `registration refused: ${describeError(err)}` };
        }
        failures++;
        this.log.warn({ err: describeError(err), failures }, 'register failed');
        const giveUpAt = this.bootAt + this.idleTimeoutSec * 1000;
        if (this.idleTimeoutSec > 0 && clock.now() >= giveUpAt) {
          return { code: ShutdownCode.TRANSIENT, reason: `server unreachable for ${this.idleTimeoutSec} s` };
        }
        let pause = backoffMs(failures);
        if (this.idleTimeoutSec > 0) pause = Math.min(pause, Math.max(0, giveUpAt - clock.now()));
        await this.wake.wait(v, pause);
      }
    }
  }

  private async transition(to: LifecycleState, reason: string): Promise<void> {
    const from = this.lifecycle;
    if (!canTransition(from, to)) {
      this.log.error({ from, to, reason }, 'invalid transition');
      return;
    }
    this.lifecycle = to;
    this.log.info({ from, to, reason }, 'state');
    this.wake.poke();
    if (this.registered) await this.outbox.add({ type: 'state', state: to, reason });
  }

  private async lifecycleLoop(): Promise<HaltRequest> {
    for (;;) {
      const v = this.wake.version;
      const now = this.deps.clock.now();
      const d = decideLifecycle({
        now,
        state: this.lifecycle,
        runningCount: this.payloads.count,
        lastBusyAt: this.lastBusyAt,
        idleTimeoutSec: this.idleTimeoutSec,
        drainRequested: this.drainRequested,
        haltRequested: this.haltRequested,
        haltBy: this.deadline === null ? null : this.deadline - this.deps.config.graceSec * 1000,
      });
      if (d.kind === 'halt') return { code: d.code, reason: d.reason };
      if (d.kind === 'drain') {
        await this.transition('draining', d.reason);
        this.abortMatch();
        continue;
      }
      await this.wake.wait(v, d.wakeAt === null ? HOUR : Math.max(0, d.wakeAt - now));
    }
  }

  private abortMatch(): void {
    this.matchAbort?.abort();
  }

  private freeMemoryMb(): number {
    const configured = this.deps.config.memoryMb;
    if (configured !== null) return Math.max(0, configured - this.payloads.usedMemoryMb);
    return this.snap?.memoryMb.free ?? 0;
  }

  private async matchLoop(): Promise<void> {
    const { control, clock, config, probe } = this.deps;
    let failures = 0;
    while (!this.stopLoops.signal.aborted) {
      const v = this.wake.version;
      const request = nextMatchRequest({
        totalCores: this.totalCores,
        usedCores: this.payloads.usedCores,
        freeMemoryMb: this.freeMemoryMb(),
        state: this.haltRequested ? 'halting' : this.lifecycle,
        now: clock.now(),
        deadline: this.deadline,
        graceSec: config.graceSec,
        holding: this.payloads.ids,
        waitMaxSec: this.matchWaitSec,
      });
      if (!request) {
        await this.wake.wait(v, HOUR);
        continue;
      }
      const abort = new AbortController();
      this.matchAbort = abort;
      try {
        const reply = await control.match(request, abort.signal);
        failures = 0;
        const fresh = this.handleInstructions(reply.instructions);
        if (reply.payload) await this.take(reply.payload);
        else if (!fresh) await this.wake.wait(this.wake.version, EMPTY_MATCH_PAUSE_MS);
      } catch (err) {
        if (abort.signal.aborted) continue;
        failures++;
        this.log.warn({ err: describeError(err), failures }, 'match failed');
        await this.wake.wait(v, backoffMs(failures));
      } finally {
        this.matchAbort = null;
      }
      this.snap = await probe.snapshot(config.stateDir).catch(() => this.snap);
    }
  }

  /** A payload from the server: start it if it fits, report it refused if not, ignore a redelivery. */
  private async take(a: Assignment): Promise<void> {
    const state = this.haltRequested ? 'halting' : this.lifecycle;
    const decision = admit(a, this.totalCores, this.payloads.usedCores, this.started, state);
    if (decision.kind === 'duplicate') {
      this.log.warn({ payloadId: a.id }, 'payload redelivered, not started again');
      return;
    }
    this.started.add(a.id);
    this.keeper.state.started.push(a.id);
    if (decision.kind === 'reject') {
      this.log.warn({ payloadId: a.id, reason: decision.message }, 'payload refused');
      await this.outbox.add({ type: 'payload-ended', payloadId: a.id, exitCode: null, signal: null, message: decision.message });
      return;
    }
    this.payloads.accept(a, decision.cores);
    await this.keeper.persist();
  }

  private async onStarted(a: Assignment, pid: number, cores: number): Promise<void> {
    this.keeper.state.running[String(a.id)] = { pid, cores, startedAt: this.deps.clock.now(), dir: payloadDir(this.deps.config.stateDir, a.id) };
    await this.outbox.add({ type: 'payload-started', payloadId: a.id, pid });
  }

  private async onEnded(a: Assignment, r: { exitCode: number | null; signal: string | null; outputTail: string; message?: string; timedOut?: boolean }): Promise<void> {
    delete this.keeper.state.running[String(a.id)];
    this.lastBusyAt = this.deps.clock.now();
    // Free cores: abort the open match so the next one asks with them.
    this.abortMatch();
    this.wake.poke();
    await this.outbox.add({
      type: 'payload-ended',
      payloadId: a.id,
      exitCode: r.exitCode,
      signal: r.signal,
      ...(r.outputTail ? { outputTail: r.outputTail } : {}),
      ...(r.message ? { message: r.message } : {}),
      ...(r.timedOut ? { timedOut: true } : {}),
    });
  }

  /** Carry out instructions not seen before; true when there was one. */
  private handleInstructions(list: readonly Instruction[]): boolean {
    let fresh = false;
    for (const instruction of list) {
      if (this.instructionsSeen.has(instruction.id)) continue;
      this.instructionsSeen.add(instruction.id);
      fresh = true;
      this.log.info({ instructionId: instruction.id, type: instruction.type }, 'instruction');
      const outcome = carryOut(instruction, {
        drain: (reason) => this.requestDrain(reason),
        halt: (code, reason) => this.requestHalt(code, reason),
        killPayload: (id, reason) => this.payloads.stop(id, reason),
        setHeartbeatInterval: (sec) => {
          this.heartbeatSec = sec;
          this.beat.poke();
        },
        setIdleTimeout: (sec) => {
          this.idleTimeoutSec = sec;
          this.wake.poke();
        },
      });
      this.keeper.state.instructionsDone.push(instruction.id);
      void this.outbox
        .add({ type: 'instruction-done', instructionId: instruction.id, ok: outcome.ok, ...(outcome.message ? { message: outcome.message } : {}) })
        .catch((err: unknown) => this.log.error({ err: describeError(err) }, 'state not saved'));
    }
    return fresh;
  }

  private async heartbeatLoop(): Promise<void> {
    const { control, clock, probe, config } = this.deps;
    while (this.lifecycle !== 'halted') {
      const v = this.beat.version;
      this.snap = await probe.snapshot(config.stateDir).catch(() => this.snap);
      try {
        const reply = await control.heartbeat(
          buildHeartbeat({
            now: clock.now(),
            state: this.lifecycle,
            totalCores: this.totalCores,
            usedCores: this.payloads.usedCores,
            memoryMb: { total: config.memoryMb ?? this.snap!.memoryMb.total, free: this.freeMemoryMb() },
            snapshot: this.snap!,
            payloads: this.payloads.heartbeatView(),
            deadline: this.deadline,
          }),
        );
        if (reply.intervalSec > 0) this.heartbeatSec = reply.intervalSec;
        this.handleInstructions(reply.instructions);
      } catch (err) {
        this.log.warn({ err: describeError(err) }, 'heartbeat failed');
      }
      await this.beat.wait(v, this.heartbeatSec * 1000);
    }
  }

  private async haltSequence(code: number, reason: string): Promise<never> {
    const { clock, config, store, halter } = this.deps;
    this.haltRequested ??= { code, reason };
    if (this.lifecycle !== 'halting' && this.lifecycle !== 'halted') await this.transition('halting', reason).catch(() => undefined);
    this.abortMatch();
    this.payloads.stopAll(`halting: ${reason}`);
    await Promise.race([this.payloads.allDone(), clock.sleep((config.graceSec + 10) * 1000)]);
    const message = reason === shutdownText(code) ? reason : `${shutdownText(code)}: ${reason}`;
    this.log.info({ code, reason }, 'halting');
    try {
      if (this.registered) {
        await this.transition('halted', reason);
        await this.outbox.add({ type: 'shutdown', code, message: message.slice(0, 4096) });
        this.stopLoops.abort();
        const delivered = await this.outbox.drain(clock.now() + FINAL_REPORT_MS);
        if (!delivered) this.log.warn({ pending: this.outbox.pending.length }, 'last reports not delivered');
      } else {
        this.lifecycle = 'halted';
        this.log.info({ to: 'halted', reason }, 'state');
      }
    } catch (err) {
      this.log.error({ err: describeError(err) }, 'last reports failed');
    }
    this.stopLoops.abort();
    this.beat.poke();
    this.wake.poke();
    await store.writeShutdownMessage(shutdownMessage(code)).catch((err: unknown) => {
      this.log.error({ err: describeError(err) }, 'shutdown_message not written');
    });
    this.log.info({ code, reason, action: config.halt.kind, exitStatus: exitStatusFor(code) }, 'halted');
    return halter.halt(config.halt, exitStatusFor(code));
  }
}
