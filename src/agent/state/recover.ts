/**
 * Carry out `planReattach` for every payload a previous run left in
 * `state.running`: adopt the live ones, report the others ended, give back
 * those never started, and report lost those gone without an exit status.
 * When the old identity was refused (`stopAll`), the server no longer knows
 * these payloads as ours: live ones are killed and nothing is reported.
 *
 * A payload the agent stopped before it started (no wrapper ever ran: killed
 * between the "starting" record and the spawn) never ran: it is released
 * (`payload-released`) as a payload the agent declines is, and the server
 * queues it again with its attempt given back. One whose wrapper ran and is
 * gone without an exit status may have run: what is left of it is killed,
 * and it is reported ended, evicted (`error`: the agent's failure, not the
 * payload's), so that the server queues it again while it has attempts left
 * and fails it when it was submitted with `requeue: false`, as a batch system
 * requeues a job whose node died. Only the wrapper's own death leaves no exit
 * status (it writes the payload's, whatever signal ended it), and the wrapper
 * survives all but SIGKILL: the OOM killer, a reboot, the agent's own kill.
 */
import path from 'node:path';
import type { Assignment } from '../../protocol/index.js';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/log.js';
import { signalProcessGroup } from '../executor/process-runner.js';
import type { AgentState, PayloadProcess, ProcessSpec } from '../ports.js';
import type { ReportDraft } from './outbox.js';
import { adoptedProcess, killLeftovers, planReattach, readTraces } from './reattach.js';

/** What recovery acts on (the pilot provides it). */
export interface RecoveryTarget {
  clock: Clock;
  log: Logger;
  /** Hold a payload found running; `startedAt`: when the previous run started it (its wall time counts from then). */
  adopt(assignment: Assignment, cores: number, process: PayloadProcess, spec: ProcessSpec, startedAt: number): void;
  /** Take back what isolates the payload whose wrapper is `pid` (its account, its cgroup); what to do once the wrapper is gone. */
  contain?(pid: number): () => Promise<void>;
  /** Queue a report (a payload-ended or payload-released report also drops the running record). */
  report(draft: ReportDraft): Promise<void>;
  /** Drop the running record without a report. */
  forget(id: number): Promise<void>;
  /**
   * Payload `id` goes back to the queue (released, or evicted): a later
   * hand-out of it is a new attempt (it no longer counts as started), and no
   * work is asked for until the server has its report. Called before that report.
   */
  handBack(id: number): void;
  /** The server takes `evicted` on payload-ended (RegisterReply.acceptsEvicted). */
  acceptsEvicted: boolean;
  /** Where /proc is (tests give another). */
  procRoot?: string;
}

/** Look for each payload of `running` and adopt it, or report how it ended. */
export async function recoverPayloads(running: AgentState['running'], t: RecoveryTarget, opts: { stopAll: boolean }): Promise<void> {
  for (const [id, rec] of Object.entries(running)) {
    const traces = await readTraces(id, rec.dir, rec.pid, t.procRoot);
    const plan = planReattach(traces);
    t.log.info({ payloadId: Number(id), plan: plan.kind, pid: traces.pid }, 'payload from the previous run');
    if (opts.stopAll) {
      if (plan.kind === 'adopt') {
        const finish = t.contain?.(plan.pid);
        signalProcessGroup(plan.pid, 'SIGKILL');
        await finish?.();
      }
      // the server may hand it to another pilot now: nothing of it may still run here
      if (plan.kind === 'lost') await killLeftovers(rec.dir, t.clock, t.procRoot);
      await t.forget(Number(id));
      continue;
    }
    if (plan.kind === 'adopt' && rec.assignment) {
      if (rec.pid === 0) await t.report({ type: 'payload-started', payloadId: Number(id), pid: plan.pid });
      const spec: ProcessSpec = {
        command: rec.assignment.command,
        cwd: rec.dir,
        env: {},
        stdoutPath: path.join(rec.dir, 'stdout'),
        stderrPath: path.join(rec.dir, 'stderr'),
      };
      const finish = t.contain?.(plan.pid);
      const process = adoptedProcess(plan.pid, id, rec.dir, t.clock);
      // what the payload left behind goes before its end is reported, as for a payload this run started
      const contained: PayloadProcess = finish ? { ...process, exited: process.exited.then(async (e) => (await finish(), e)) } : process;
      t.adopt(rec.assignment, rec.cores, contained, spec, rec.startedAt);
      continue;
    }
    if (plan.kind === 'adopt') {
      // no assignment recorded (an older state file): it cannot be supervised, so it is stopped
      signalProcessGroup(plan.pid, 'SIGKILL');
      await t.report({ type: 'payload-ended', payloadId: Number(id), exitCode: null, signal: 'SIGKILL', message: 'lost: found after an agent restart without its assignment; killed' });
      continue;
    }
    if (plan.kind === 'not-started') {
      // it never ran: given back as a payload the agent declines, its attempt not counted
      t.handBack(Number(id));
      await t.report({ type: 'payload-released', payloadId: Number(id), reason: plan.message });
      continue;
    }
    // it started: the server hears so first, when the previous run did not get to say it
    if (rec.pid === 0 && (plan.kind === 'ended' || traces.pid !== null)) await t.report({ type: 'payload-started', payloadId: Number(id), ...(traces.pid ? { pid: traces.pid } : {}) });
    if (plan.kind === 'ended') {
      await t.report({ type: 'payload-ended', payloadId: Number(id), exitCode: plan.exitCode, signal: plan.signal, message: plan.message });
      continue;
    }
    // it may have run: nothing of it may still run when it is queued again
    const killed = await killLeftovers(rec.dir, t.clock, t.procRoot);
    if (killed > 0) t.log.warn({ payloadId: Number(id), killed }, 'processes of a lost payload killed');
    if (t.acceptsEvicted) t.handBack(Number(id));
    await t.report({
      type: 'payload-ended',
      payloadId: Number(id),
      exitCode: null,
      signal: null,
      message: plan.message,
      ...(t.acceptsEvicted ? { evicted: { reason: 'error' as const } } : {}),
    });
  }
}
