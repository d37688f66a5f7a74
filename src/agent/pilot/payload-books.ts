/**
 * Payload bookkeeping: the durable `running` records and the reports when a
 * payload starts and ends (from the supervisor, ../payloads.ts), and the
 * target restart recovery (state/recover.ts) acts on; and the removal of
 * ended payloads' directories once the server has their end reports
 * (executor/payload-dirs.ts).
 */
import type { Assignment } from '../../protocol/index.js';
import { describeError } from '../../shared/errors.js';
import { pruneEndedDirs } from '../executor/payload-dirs.js';
import { payloadDir } from '../executor/payload-runner.js';
import type { EndedPayload } from '../payload/supervisor.js';
import type { PayloadProcess, ProcessSpec } from '../ports.js';
import type { RecoveryTarget } from '../state/recover.js';
import type { PilotCore } from './core.js';

/** A payload's process started: record its pid and report it. */
export async function onStarted(p: PilotCore, a: Assignment, pid: number, cores: number): Promise<void> {
  const rec = p.keeper.state.running[String(a.id)];
  p.keeper.state.running[String(a.id)] = { ...(rec ?? { startedAt: p.deps.clock.now(), dir: payloadDir(p.deps.config.stateDir, a.id), assignment: a }), pid, cores };
  // the lifecycle looks again: a running payload has a lease to keep
  p.wake.poke();
  await p.outbox.add({ type: 'payload-started', payloadId: a.id, pid });
}

/**
 * A payload ended: forget its record, free its cores and report how it
 * ended; that the infrastructure stopped it only to a server that takes it.
 */
export async function onEnded(p: PilotCore, a: Assignment, r: EndedPayload): Promise<void> {
  delete p.keeper.state.running[String(a.id)];
  p.lastBusyAt = p.deps.clock.now();
  // Free cores: abort the open match so the next one asks with them.
  p.abortMatch();
  p.wake.poke();
  await p.outbox.add({
    type: 'payload-ended',
    payloadId: a.id,
    exitCode: r.exitCode,
    signal: r.signal,
    ...(r.outputTail ? { outputTail: r.outputTail } : {}),
    ...(r.message ? { message: r.message } : {}),
    ...(r.timedOut ? { timedOut: true } : {}),
    ...(r.overMemory ? { overMemory: true } : {}),
    ...(r.cpuSec === undefined ? {} : { cpuSec: r.cpuSec }),
    ...(r.peakRssMb === undefined ? {} : { peakRssMb: r.peakRssMb }),
    ...(r.evicted && p.keeper.state.acceptsEvicted ? { evicted: { reason: r.evicted } } : {}),
  });
}

/** What restart recovery adopts payloads into and reports through. */
export function recoveryTarget(p: PilotCore): RecoveryTarget {
  return {
    clock: p.deps.clock,
    log: p.log,
    adopt: (a: Assignment, cores: number, process: PayloadProcess, spec: ProcessSpec, startedAt: number) => {
      p.lastBusyAt = p.deps.clock.now();
      // an adopted payload's wall time counts from when the previous run started it (payloads.ts)
      p.payloads.adopt(a, cores, process, spec, startedAt);
    },
    ...(p.res.isolation ? { contain: (pid: number) => p.res.isolation!.adopt(pid, p.deps.clock) } : {}),
    report: async (draft) => {
      if (draft.type === 'payload-ended' || draft.type === 'payload-released') delete p.keeper.state.running[String(draft.payloadId)];
      await p.outbox.add(draft);
    },
    forget: async (id: number) => {
      delete p.keeper.state.running[String(id)];
      await p.keeper.persist();
    },
    handBack: (id: number) => {
      // saved with the report that follows: a hand-out after the server has it is a new attempt
      p.started.delete(id);
      p.keeper.state.started = p.keeper.state.started.filter((s) => s !== id);
      p.handedBack.add(id);
    },
    acceptsEvicted: p.keeper.state.acceptsEvicted === true,
  };
}

/**
 * True while the report of a payload a restart gave back (`handedBack`) is
 * still on its way: the match loop asks for nothing until the server has it,
 * so that the report can only apply to the attempt it is about (a hand-out
 * before it, of the same payload queued again meanwhile, would take it).
 */
export function handBackPending(p: PilotCore): boolean {
  if (p.handedBack.size === 0) return false;
  if (p.outbox.pending.some((r) => 'payloadId' in r && p.handedBack.has(r.payloadId))) return true;
  p.handedBack.clear();
  return false;
}

const MIB = 1024 * 1024;

/**
 * Removes the directories of ended payloads whose end report the server has
 * (none running here, none with a report still in the outbox); keeps the
 * newest ones unless the disk is short. One prune at a time; never throws.
 */
export class DirPruner {
  private pruning: Promise<void> | null = null;
  private again = false;

  constructor(private readonly p: PilotCore) {}

  /** Prune now (or once more after the prune under way). */
  prune(): Promise<void> {
    if (this.pruning) {
      this.again = true;
      return this.pruning;
    }
    this.pruning = this.loop().finally(() => {
      this.pruning = null;
    });
    this.p.dirsPruned = this.pruning;
    return this.pruning;
  }

  private async loop(): Promise<void> {
    const p = this.p;
    do {
      this.again = false;
      const inUse = new Set<number>([...p.payloads.ids, ...Object.keys(p.keeper.state.running).map(Number)]);
      for (const r of p.outbox.pending) if ('payloadId' in r) inUse.add(r.payloadId);
      const removed = await pruneEndedDirs(p.deps.config.stateDir, inUse, { shortBelowBytes: 2 * p.deps.config.maxOutputMb * MIB }).catch((err: unknown) => {
        p.log.warn({ err: describeError(err) }, 'ended payload directories not removed');
        return [];
      });
      if (removed.length > 0) p.log.info({ payloads: removed }, 'ended payload directories removed');
    } while (this.again);
  }
}
