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
import { ShutdownCode, type Capabilities, type HeartbeatRequest } from '../../protocol/index.js';
import { VERSION } from '../../protocol/version.js';
import { describeError, isVmpilotError } from '../../shared/errors.js';
import type { HaltRequest } from '../monitor/lifecycle.js';
import { retryDelayMs } from '../control/retry.js';
import { Outbox } from '../state/outbox.js';
import { recoverPayloads } from '../state/recover.js';
import { forgetIdentity, planRestore, type Identity } from '../state/restore.js';
import { StateKeeper } from '../state/state-keeper.js';
import type { PilotCore } from './core.js';
import { keepCredential } from './instruction-handler.js';
import { recoveryTarget } from './payload-books.js';

/** Load the saved state, build the outbox on it, and say who the pilot is. */
export async function restoreState(p: PilotCore): Promise<Identity> {
  const { store, config, clock, log } = p.deps;
  const { state, identity } = planRestore(await store.load(), config.server ?? '');
  for (const id of state.started) p.started.add(id);
  for (const id of state.instructionsDone) p.instructionsSeen.add(id);
  p.keeper = new StateKeeper(store, state);
  p.outbox = new Outbox(p.keeper, p.control, clock, log.child({ role: 'outbox' }), (list) => p.handleInstructions(list), undefined, p.deps.random);
  await p.keeper.persist();
  p.log.info({ identity: identity.kind, ...(identity.kind === 'register' ? { why: identity.why } : { pilotId: identity.pilotId }) }, 'state restored');
  return identity;
}

/** Carry on as the pilot of the previous run; register anew when the server refuses that identity. */
export async function resume(p: PilotCore, identity: Extract<Identity, { kind: 'resume' }>, heartbeatNow: () => Promise<HeartbeatRequest>): Promise<HaltRequest | null> {
  p.control.resume(identity.pilotId, identity.credential);
  p.registered = true;
  let refused = false;
  try {
    const reply = await p.control.heartbeat(await heartbeatNow());
    keepCredential(p, reply);
    p.handleInstructions(reply.instructions);
  } catch (err) {
    refused = isVmpilotError(err, 'VMP_UNAUTHORIZED', 'VMP_FORBIDDEN', 'VMP_NOT_FOUND');
    if (!refused) p.log.warn({ err: describeError(err) }, 'server unreachable after restart: carrying on, reports queued');
  }
  const leftovers = { ...p.keeper.state.running };
  if (refused) {
    p.log.warn({ pilotId: identity.pilotId, payloads: Object.keys(leftovers), reports: p.outbox.pending.length }, 'old identity refused: registering anew');
    forgetIdentity(p.keeper.state);
    p.registered = false;
    await recoverPayloads(leftovers, recoveryTarget(p), { stopAll: true });
    await p.keeper.persist();
    return registerLoop(p);
  }
  p.log.info({ pilotId: identity.pilotId, payloads: Object.keys(leftovers), reports: p.outbox.pending.length }, 'resumed');
  await recoverPayloads(leftovers, recoveryTarget(p), { stopAll: false });
  return null;
}

/** The node's capabilities for the register request, when the agent knows them (docs/requirements.md). */
function capabilitiesOf(p: PilotCore): { capabilities?: Capabilities } {
  const capabilities = p.res.capabilities();
  return capabilities ? { capabilities } : {};
}

/** Register, retrying while the server is unreachable; a failure to halt with, or null once registered. */
export async function registerLoop(p: PilotCore): Promise<HaltRequest | null> {
  const { clock, config } = p.deps;
  const snap = p.snap!;
  // the server shows these (`pilots`): the batch job's id unless --external-id names one (a cloud instance id)
  const job = p.res.batchJob();
  const externalId = config.externalId ?? job?.jobId ?? null;
  const labels = { ...(job ? { batch: job.system } : {}), ...config.labels };
  for (let failures = 0; ; ) {
    if (p.haltRequested) return p.haltRequested;
    const v = p.wake.version;
    try {
      const reply = await p.control.register({
        hostname: snap.hostname,
        version: VERSION,
        cores: p.totalCores,
        memoryMb: config.memoryMb ?? p.memLimitMb ?? snap.memoryMb.total,
        ...(snap.diskFreeMb === null ? {} : { diskMb: snap.diskFreeMb }),
        deadline: p.deadline,
        ...(externalId === null ? {} : { externalId }),
        ...(Object.keys(labels).length > 0 ? { labels } : {}),
        ...(p.res.isolation ? { isolation: p.res.isolation.plan.mode } : {}),
        ...capabilitiesOf(p),
      });
      p.registered = true;
      p.heartbeats.intervalSec = reply.heartbeatIntervalSec;
      p.matchWaitSec = reply.matchWaitMaxSec;
      p.keeper.state.pilotId = reply.pilotId;
      p.keeper.state.credential = reply.credential;
      p.keeper.state.leaseSec = reply.leaseSec ?? null;
      p.keeper.state.acceptsEvicted = reply.acceptsEvicted === true;
      await p.keeper.persist();
      p.log.info({ pilotId: reply.pilotId, cores: p.totalCores, leaseSec: reply.leaseSec ?? null }, 'registered');
      return null;
    } catch (err) {
      // unreachable, failing or busy (429: too many registrations at once, as when a site boots many VMs): try again
      if (!isVmpilotError(err, 'VMP_UNREACHABLE', 'VMP_SERVER', 'VMP_RATE_LIMITED')) {
        const code = isVmpilotError(err, 'VMP_FORBIDDEN') ? ShutdownCode.BANNED : ShutdownCode.ENVIRONMENT;
        const hint = isVmpilotError(err, 'VMP_UNAUTHORIZED') ? '; check the registration token (--token-file, VMPILOT_PILOT_TOKEN or tokenFile)' : '';
        p.log.error({ err: describeError(err), errorCode: isVmpilotError(err) ? err.code : undefined, server: config.server }, 'registration refused');
        return { code, reason: `registration refused by ${config.server}: ${describeError(err)}${hint}`, fatal: true };
      }
      failures++;
      p.log.warn({ err: describeError(err), failures }, 'register failed');
      const limit = config.orphanTimeoutSec;
      const giveUpAt = p.bootAt + limit * 1000;
      if (limit > 0 && clock.now() >= giveUpAt) {
        p.log.error({ err: describeError(err), failures, orphanTimeoutSec: limit }, 'server unreachable: giving up');
        return { code: ShutdownCode.TRANSIENT, reason: `server unreachable for ${limit} s (--orphan-timeout): ${describeError(err)}`, fatal: true };
      }
      let pause = retryDelayMs(failures, (p.deps.random ?? Math.random)());
      if (limit > 0) pause = Math.min(pause, Math.max(0, giveUpAt - clock.now()));
      await p.wake.wait(v, pause);
    }
  }
}
