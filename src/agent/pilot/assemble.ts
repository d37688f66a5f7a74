/**
 * The wiring of one pilot's parts once its saved state is restored: each
 * part is built with only what it needs (its *Deps interface), in an order
 * in which every part it depends on exists already. Three replies flow
 * back up and are passed as calls, not as shared fields: the outbox and the
 * heartbeat loop hand instructions to the handler built after them, and the
 * contact tracker tells the outbox and the heartbeat loop the server is back.
 */
import type { LifecycleState } from '../../protocol/index.js';
import type { Logger } from '../../shared/log.js';
import { PayloadBaseEnv } from '../payload/base-env.js';
import { PayloadBook } from '../payload/book.js';
import { DirPruner } from '../payload/dir-pruner.js';
import { payloadHooks, recoveryTarget } from '../payload/hooks.js';
import { PayloadSupervisor } from '../payload/supervisor.js';
import type { PilotResources } from '../resources/pilot-resources.js';
import { Outbox } from '../state/outbox.js';
import type { StateKeeper } from '../state/state-keeper.js';
import type { Wakeup } from '../wakeup.js';
import { ContactTracker } from './contact.js';
import { heldPayloads } from './deadline-watch.js';
import type { PilotDeps } from './deps.js';
import { HeartbeatLoop } from './heartbeat-loop.js';
import { HeartbeatView } from './heartbeat-view.js';
import type { IdentityFaultDeps } from './identity-fault.js';
import { InstructionHandler } from './instruction-handler.js';
import { LeaseFence } from './lease-fence.js';
import { LifecycleLoop } from './lifecycle-loop.js';
import { transitionOf, type Lifecycle } from './lifecycle.js';
import type { MatchCall } from './match-call.js';
import { MatchLoop } from './match-loop.js';
import { NodeState } from './node-state.js';
import { Registration } from './registration.js';
import { Session } from './session.js';

/** What the pilot holds from its start (before the state is restored). */
export interface PilotBase {
  deps: PilotDeps;
  log: Logger;
  wake: Wakeup;
  call: MatchCall;
  life: Lifecycle;
  res: PilotResources;
  /** Aborted when the pilot stops its loops. */
  stop: AbortSignal;
}

/** The parts of a pilot, built on its restored state: what Pilot.run starts and the halt sequence stops. */
export interface Parts {
  outbox: Outbox;
  /** The payloads' base environment (the bootstrap adds to it). */
  payloadEnv: PayloadBaseEnv;
  session: Session;
  payloads: PayloadSupervisor;
  node: NodeState;
  heartbeats: HeartbeatLoop;
  /** Move the lifecycle, beat at once and report it. */
  transition(to: LifecycleState, reason: string): Promise<void>;
  lifecycle: LifecycleLoop;
  pruner: DirPruner;
  match: MatchLoop;
  registration: Registration;
  /** What registering anew after an outbox fault acts on (pilot/identity-fault.ts). */
  identityFault: IdentityFaultDeps;
}

/** Build the parts on `keeper` (the restored state). */
export function assemble(base: PilotBase, keeper: StateKeeper): Parts {
  const { deps, log, wake, call, life, res, stop } = base;
  const { clock, config } = deps;
  const random = deps.random ?? Math.random;
  const back: (() => void)[] = [];
  const contact = new ContactTracker(
    deps.control,
    clock,
    () => {
      // back: the reports that waited go first (pilot/reconnect.ts), an overdue heartbeat goes now
      log.info('server reachable again');
      for (const f of back) f();
      wake.poke();
    },
    // the server said "nothing": the idle rule looks again (monitor/idle.ts)
    () => wake.poke(),
  );
  contact.reset(life.bootAt);
  // report replies carry instructions too: to the handler built below (it reports through this outbox)
  const outbox = new Outbox(keeper, contact, clock, log.child({ role: 'outbox' }), (list) => instructions.handle(list), undefined, deps.random);
  const book = new PayloadBook(keeper, outbox, clock, config.stateDir);
  const session = new Session(keeper, log);
  const busyAt = (now: number) => life.busyAt(now);
  const payloadEnv = new PayloadBaseEnv(config.payloadBaseEnv);
  const payloads = new PayloadSupervisor(
    deps.runner,
    clock,
    deps.log.child({ role: 'executor' }),
    config.stateDir,
    () => payloadEnv.get(),
    () => res.graceSec(),
    payloadHooks({ clock, book, busyAt, abortMatch: () => call.abort(), wake }),
    // the GPUs its record holds (chosen by `take` before it was accepted), with its account or sandbox
    (a, cores) => res.contextFor(a, cores, clock.now(), book.record(a.id)?.gpus ?? []),
  );
  const node = new NodeState(
    {
      res,
      probe: deps.probe,
      stateDir: config.stateDir,
      configuredMemoryMb: config.memoryMb,
      log,
      held: () => heldPayloads(payloads),
      usedMemoryMb: () => payloads.usedMemoryMb,
      // a moved deadline: the open match is asked again and the lifecycle wakes
      onDeadlineMoved: () => {
        call.abort();
        wake.poke();
      },
    },
    config.lifetimeSec === null ? null : life.bootAt + config.lifetimeSec * 1000,
  );
  const view = new HeartbeatView({
    clock,
    configuredMemoryMb: config.memoryMb,
    node,
    payloads,
    book,
    ...(deps.usage ? { usage: deps.usage } : {}),
    ...(deps.features ? { features: deps.features } : {}),
    res,
    registered: () => session.registered,
    state: () => life.state,
  });
  const heartbeats = new HeartbeatLoop(
    {
      control: contact,
      clock,
      log: deps.log.child({ role: 'heartbeat' }),
      outputs: deps.outputs ?? null,
      random,
      build: () => view.now(),
      onReply: (reply) => {
        session.keepCredential(reply);
        instructions.handle(reply.instructions);
      },
    },
    30,
  );
  const instructions = new InstructionHandler({
    log,
    state: keeper.state,
    target: {
      drain: (reason) => life.requestDrain(reason),
      halt: (code, reason) => life.requestHalt({ by: 'instruction', code, reason, eviction: 'halt' }),
      killPayload: (id, reason) => payloads.stop(id, reason),
      setHeartbeatInterval: (sec) => heartbeats.setInterval(sec),
      setIdleTimeout: (sec) => life.setIdleTimeout(sec),
    },
    report: (draft) => outbox.add(draft),
  });
  back.push(
    () => outbox.kick(),
    () => heartbeats.serverBack(),
  );
  const transition = transitionOf(life, { beatNow: () => heartbeats.beatNow(), registered: () => session.registered, report: (d) => outbox.add(d) });
  const fence = new LeaseFence({
    leaseFrom: () => contact.leaseFrom,
    leaseSec: () => session.leaseSec,
    graceSec: () => res.graceSec(),
    payloads,
    pending: () => outbox.pending,
    book,
    log,
  });
  const lifecycle = new LifecycleLoop({
    clock,
    wake,
    config,
    graceSec: () => res.graceSec(),
    life,
    payloads,
    contact,
    deadline: () => node.deadline,
    matchWaitMaxSec: () => session.matchWaitSec,
    fence,
    transition,
    match: call,
  });
  const pruner = new DirPruner({ stateDir: config.stateDir, maxOutputMb: config.maxOutputMb, log, payloads, book, pending: () => outbox.pending });
  const match = new MatchLoop({
    clock,
    log,
    random,
    starvationSec: config.starvationSec,
    contact,
    call,
    wake,
    stop,
    node,
    res,
    payloads,
    book,
    fence,
    outbox,
    instructions: (list) => instructions.handle(list),
    state: () => life.effectiveState,
    waitSec: () => lifecycle.matchWaitSec(),
    registeringAnew: () => session.identityFault !== null,
    dirsPruned: () => pruner.settled(),
  });
  const registration = new Registration({
    clock,
    config,
    control: contact,
    log,
    random,
    wake,
    node,
    res,
    session,
    heartbeats,
    book,
    recovery: () => recoveryTarget({ clock, log, book, payloads, isolation: res.isolation, busyAt }),
    pendingReports: () => outbox.pending.length,
    halt: () => life.halt,
    bootAt: () => life.bootAt,
    heartbeatNow: () => view.now(),
    onReply: (reply) => {
      session.keepCredential(reply);
      instructions.handle(reply.instructions);
    },
  });
  const identityFault: IdentityFaultDeps = {
    clock,
    log,
    stop,
    session,
    control: contact,
    outbox,
    match: call,
    payloads,
    book,
    forgetHolding: () => match.forgetHolding(),
    register: () => registration.register(),
    life,
    heartbeats,
    wake,
  };
  return { payloadEnv, outbox, session, payloads, node, heartbeats, transition, lifecycle, pruner, match, registration, identityFault };
}
