/**
 * How a pilot comes to serve: restore its durable state, then either resume
 * the identity of the previous run (an agent restart: re-attach to or report
 * the payloads it left) or register anew, retrying while the server is
 * unreachable until the orphan timeout.
 *
 *   restore ─▶ resume ──accepted──▶ recover payloads (adopt the live ones)
 *      │          └──refused─────▶ kill leftovers, forget identity ─▶ register
 *      └────────▶ register ──unreachable──▶ back off, again (until the orphan timeout: 700)
 *                          ──refused──────▶ halt 400 (forbidden) or 500
 */
import { ShutdownCode, type Capabilities, type HeartbeatReply, type HeartbeatRequest } from '../../protocol/index.js';
import { VERSION } from '../../protocol/version.js';
import type { Clock } from '../../shared/clock.js';
import { describeError, isVmpilotError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { AgentConfig } from '../config/schema.js';
import { retryDelayMs } from '../control/retry.js';
import type { ContactTracker } from './contact.js';
import type { HeartbeatLoop } from './heartbeat-loop.js';
import type { HaltRequest } from '../monitor/lifecycle.js';
import type { PayloadBook } from '../payload/book.js';
import type { StateStore } from '../ports.js';
import type { PilotResources } from '../resources/pilot-resources.js';
import { recoverPayloads, type RecoveryTarget } from '../state/recover.js';
import { planRestore, type Identity } from '../state/restore.js';
import { StateKeeper } from '../state/state-keeper.js';
import type { Wakeup } from '../wakeup.js';
import type { NodeState } from './node-state.js';
import type { Session } from './session.js';

/** Load the saved state, save it as restored, and say who the pilot is. */
export async function restoreState(store: StateStore, server: string, log: Logger): Promise<{ keeper: StateKeeper; identity: Identity }> {
  const { state, identity } = planRestore(await store.load(), server);
  const keeper = new StateKeeper(store, state);
  await keeper.persist();
  log.info({ identity: identity.kind, ...(identity.kind === 'register' ? { why: identity.why } : { pilotId: identity.pilotId }) }, 'state restored');
  return { keeper, identity };
}

/** What registering and resuming read and act on. */
export interface RegistrationDeps {
  clock: Clock;
  config: Pick<AgentConfig, 'server' | 'externalId' | 'labels' | 'memoryMb' | 'orphanTimeoutSec'>;
  control: Pick<ContactTracker, 'register' | 'heartbeat' | 'resume'>;
  log: Logger;
  random: () => number;
  wake: Wakeup;
  node: Pick<NodeState, 'snap' | 'totalCores' | 'memLimitMb' | 'deadline'>;
  res: Pick<PilotResources, 'batchJob' | 'isolation' | 'capabilities'>;
  session: Session;
  heartbeats: Pick<HeartbeatLoop, 'intervalSec'>;
  book: Pick<PayloadBook, 'leftovers' | 'newIdentity'>;
  /** What restart recovery adopts payloads into and reports through (payload/hooks.ts). */
  recovery(): RecoveryTarget;
  /** How many reports wait in the outbox (logged). */
  pendingReports(): number;
  /** A halt asked for meanwhile (registering stops for it). */
  halt(): HaltRequest | null;
  /** When the agent started (the orphan timeout counts from it). */
  bootAt(): number;
  /** The heartbeat as of now (pilot/heartbeat-view.ts). */
  heartbeatNow(): Promise<HeartbeatRequest>;
  /** A heartbeat reply: its credential and instructions. */
  onReply(reply: HeartbeatReply): void;
}

/** How the pilot comes to be known to the server. */
export class Registration {
  constructor(private readonly d: RegistrationDeps) {}

  /** Carry on as the pilot of the previous run; register anew when the server refuses that identity. */
  async resume(identity: Extract<Identity, { kind: 'resume' }>): Promise<HaltRequest | null> {
    const d = this.d;
    d.control.resume(identity.pilotId, identity.credential);
    d.session.resumed();
    let refused = false;
    try {
      d.onReply(await d.control.heartbeat(await d.heartbeatNow()));
    } catch (err) {
      refused = isVmpilotError(err, 'VMP_UNAUTHORIZED', 'VMP_FORBIDDEN', 'VMP_NOT_FOUND');
      if (!refused) d.log.warn({ err: describeError(err) }, 'server unreachable after restart: carrying on, reports queued');
    }
    const leftovers = d.book.leftovers();
    if (refused) {
      d.log.warn({ pilotId: identity.pilotId, payloads: Object.keys(leftovers), reports: d.pendingReports() }, 'old identity refused: registering anew');
      d.session.unregistered();
      await d.book.newIdentity();
      await recoverPayloads(leftovers, d.recovery(), { stopAll: true });
      return this.register();
    }
    d.log.info({ pilotId: identity.pilotId, payloads: Object.keys(leftovers), reports: d.pendingReports() }, 'resumed');
    await recoverPayloads(leftovers, d.recovery(), { stopAll: false });
    return null;
  }

  /** The node's capabilities for the register request, when the agent knows them (docs/requirements.md). */
  private capabilities(): { capabilities?: Capabilities } {
    const capabilities = this.d.res.capabilities();
    return capabilities ? { capabilities } : {};
  }

  /** Register, retrying while the server is unreachable; a failure to halt with, or null once registered. */
  async register(): Promise<HaltRequest | null> {
    const d = this.d;
    const { clock, config, node, res } = d;
    const snap = node.snap;
    // the server shows these (`pilots`): the batch job's id unless --external-id names one (a cloud instance id)
    const job = res.batchJob();
    const externalId = config.externalId ?? job?.jobId ?? null;
    const labels = { ...(job ? { batch: job.system } : {}), ...config.labels };
    for (let failures = 0; ; ) {
      const halt = d.halt();
      if (halt) return halt;
      const v = d.wake.version;
      try {
        const reply = await d.control.register({
          hostname: snap.hostname,
          version: VERSION,
          cores: node.totalCores,
          memoryMb: config.memoryMb ?? node.memLimitMb ?? snap.memoryMb.total,
          ...(snap.diskFreeMb === null ? {} : { diskMb: snap.diskFreeMb }),
          deadline: node.deadline,
          ...(externalId === null ? {} : { externalId }),
          ...(Object.keys(labels).length > 0 ? { labels } : {}),
          ...(res.isolation ? { isolation: res.isolation.plan.mode } : {}),
          ...this.capabilities(),
        });
        d.heartbeats.intervalSec = reply.heartbeatIntervalSec;
        await d.session.registeredAs(reply);
        d.log.info({ pilotId: reply.pilotId, cores: node.totalCores, leaseSec: reply.leaseSec ?? null }, 'registered');
        return null;
      } catch (err) {
        // unreachable, failing or busy (429: too many registrations at once, as when a site boots many VMs): try again
        if (!isVmpilotError(err, 'VMP_UNREACHABLE', 'VMP_SERVER', 'VMP_RATE_LIMITED')) {
          const code = isVmpilotError(err, 'VMP_FORBIDDEN') ? ShutdownCode.BANNED : ShutdownCode.ENVIRONMENT;
          const hint = isVmpilotError(err, 'VMP_UNAUTHORIZED') ? '; check the registration token (--token-file, VMPILOT_PILOT_TOKEN or tokenFile)' : '';
          d.log.error({ err: describeError(err), errorCode: isVmpilotError(err) ? err.code : undefined, server: config.server }, 'registration refused');
          return { code, reason: `registration refused by ${config.server}: ${describeError(err)}${hint}`, fatal: true };
        }
        failures++;
        d.log.warn({ err: describeError(err), failures }, 'register failed');
        const limit = config.orphanTimeoutSec;
        const giveUpAt = d.bootAt() + limit * 1000;
        if (limit > 0 && clock.now() >= giveUpAt) {
          d.log.error({ err: describeError(err), failures, orphanTimeoutSec: limit }, 'server unreachable: giving up');
          return { code: ShutdownCode.TRANSIENT, reason: `server unreachable for ${limit} s (--orphan-timeout): ${describeError(err)}`, fatal: true };
        }
        let pause = retryDelayMs(failures, d.random());
        if (limit > 0) pause = Math.min(pause, Math.max(0, giveUpAt - clock.now()));
        await d.wake.wait(v, pause);
      }
    }
  }
}
