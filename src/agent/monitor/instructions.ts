/**
 * Carry out one instruction from the server. The pilot calls this at most
 * once per instruction id (it keeps the ids it has carried out) and
 * acknowledges the outcome with an `instruction-done` report.
 */
import { ShutdownCode, type Instruction } from '../../protocol/index.js';

/** What instructions can do to the pilot. */
export interface InstructionTarget {
  drain(reason: string): void;
  halt(code: number, reason: string): void;
  /** Stop a payload; false when it is not running here. */
  killPayload(payloadId: number, reason: string): boolean;
  setHeartbeatInterval(sec: number): void;
  setIdleTimeout(sec: number): void;
}

/** The outcome, as the `instruction-done` report carries it. */
export interface InstructionOutcome {
  ok: boolean;
  message?: string;
}

/** Apply `instruction` to `target`. */
export function carryOut(instruction: Instruction, target: InstructionTarget): InstructionOutcome {
  switch (instruction.type) {
    case 'drain':
      target.drain(instruction.reason ?? 'drain instruction');
      return { ok: true };
    case 'halt':
      target.halt(instruction.code ?? ShutdownCode.REQUESTED, instruction.reason ?? 'halt instruction');
      return { ok: true };
    case 'kill-payload': {
      const killed = target.killPayload(instruction.payloadId, instruction.reason ?? 'kill-payload instruction');
      return killed ? { ok: true } : { ok: true, message: `payload ${instruction.payloadId} is not running here` };
    }
    case 'set': {
      const changed: string[] = [];
      if (instruction.heartbeatIntervalSec !== undefined) {
        target.setHeartbeatInterval(instruction.heartbeatIntervalSec);
        changed.push(`heartbeatIntervalSec=${instruction.heartbeatIntervalSec}`);
      }
      if (instruction.idleTimeoutSec !== undefined) {
        target.setIdleTimeout(instruction.idleTimeoutSec);
        changed.push(`idleTimeoutSec=${instruction.idleTimeoutSec}`);
      }
      return { ok: true, message: changed.length > 0 ? `set ${changed.join(' ')}` : 'nothing to set' };
    }
    case 'ping':
      return { ok: true, message: 'pong' };
    default: {
      const unknown = instruction as { type?: unknown };
      return { ok: false, message: `unknown instruction type ${String(unknown.type)}` };
    }
  }
}
