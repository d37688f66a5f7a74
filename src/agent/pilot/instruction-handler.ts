/**
 * Instructions from the server (in heartbeat, match and report replies):
 * each id is carried out once (monitor/instructions.ts says how) and
 * acknowledged with an `instruction-done` report. The handler owns the
 * `instructionsDone` part of the saved state (saved with that report).
 */
import type { Instruction } from '../../protocol/index.js';
import { describeError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { carryOut, type InstructionTarget } from '../monitor/instructions.js';
import type { AgentState } from '../ports.js';
import type { ReportDraft } from '../state/outbox.js';

/** What the handler needs. */
export interface InstructionHandlerDeps {
  log: Logger;
  /** The saved ids of instructions carried out (this handler appends to it). */
  state: Pick<AgentState, 'instructionsDone'>;
  /** What the instructions act on. */
  target: InstructionTarget;
  /** Queue a report (saved with the state). */
  report(draft: ReportDraft): Promise<unknown>;
}

/** Carries out each instruction id once. */
export class InstructionHandler {
  private readonly seen: Set<number>;

  constructor(private readonly d: InstructionHandlerDeps) {
    this.seen = new Set(d.state.instructionsDone);
  }

  /** Carry out the instructions of `list` not seen before; true when there was one. */
  handle(list: readonly Instruction[]): boolean {
    const d = this.d;
    let fresh = false;
    for (const instruction of list) {
      if (this.seen.has(instruction.id)) continue;
      this.seen.add(instruction.id);
      fresh = true;
      d.log.info({ instructionId: instruction.id, type: instruction.type }, 'instruction');
      const outcome = carryOut(instruction, d.target);
      d.state.instructionsDone.push(instruction.id);
      void d
        .report({ type: 'instruction-done', instructionId: instruction.id, ok: outcome.ok, ...(outcome.message ? { message: outcome.message } : {}) })
        .catch((err: unknown) => d.log.error({ err: describeError(err) }, 'state not saved'));
    }
    return fresh;
  }
}
