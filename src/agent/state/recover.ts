/**
 * Carry out `planReattach` for every payload a previous run left in
 * `state.running`: adopt the live ones, report the others ended or lost.
 * When the old identity was refused (`stopAll`), the server no longer knows
 * these payloads as ours: live ones are killed and nothing is reported.
 */
import path from 'node:path';
import type { Assignment } from '../../protocol/index.js';
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/log.js';
import { signalProcessGroup } from '../executor/process-runner.js';
import type { AgentState, PayloadProcess, ProcessSpec } from '../ports.js';
import type { ReportDraft } from './outbox.js';
import { adoptedProcess, planReattach, readTraces } from './reattach.js';

/** What recovery acts on (the pilot provides it). */
export interface RecoveryTarget {
  clock: Clock;
  log: Logger;
  /** Hold a payload found running; `startedAt`: when the previous run started it (its wall time counts from then). */
  adopt(assignment: Assignment, cores: number, process: PayloadProcess, spec: ProcessSpec, startedAt: number): void;
  /** Take back what isolates the payload whose wrapper is `pid` (its account, its cgroup); what to do once the wrapper is gone. */
  contain?(pid: number): () => Promise<void>;
  /** Queue a report (a payload-ended report also drops the running record). */
  report(draft: ReportDraft): Promise<void>;
  /** Drop the running record without a report. */
  forget(id: number): Promise<void>;
}

/** Look for each payload of `running` and adopt it, or report how it ended. */
export async function recoverPayloads(running: AgentState['running'], t: RecoveryTarget, opts: { stopAll: boolean }): Promise<void> {
  for (const [id, rec] of Object.entries(running)) {
    const traces = await readTraces(id, rec.dir, rec.pid);
    const plan = planReattach(traces);
    t.log.info({ payloadId: Number(id), plan: plan.kind, pid: traces.pid }, 'payload from the previous run');
    if (opts.stopAll) {
      if (plan.kind === 'adopt') {
        const finish = t.contain?.(plan.pid);
        signalProcessGroup(plan.pid, 'SIGKILL');
        await finish?.();
      }
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
    const draft: ReportDraft =
      plan.kind === 'ended'
        ? { type: 'payload-ended', payloadId: Number(id), exitCode: plan.exitCode, signal: plan.signal, message: plan.message }
        : { type: 'payload-ended', payloadId: Number(id), exitCode: null, signal: null, message: plan.message };
    if (rec.pid === 0 && plan.kind === 'ended') await t.report({ type: 'payload-started', payloadId: Number(id), ...(traces.pid ? { pid: traces.pid } : {}) });
    await t.report(draft);
  }
}
