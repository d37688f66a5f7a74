/**
 * Instructions from the server (in heartbeat, match and report replies):
 * each id is carried out once (monitor/instructions.ts says how) and
 * acknowledged with an `instruction-done` report. Also keeps a credential a
 * heartbeat reply renewed.
 */
import type { Instruction } from '../../protocol/index.js';
import { describeError } from '../../shared/errors.js';
import { carryOut } from '../monitor/instructions.js';
import type { PilotCore } from './core.js';

/** Carry out the instructions of `list` not seen before; true when there was one. */
export function handleInstructions(p: PilotCore, list: readonly Instruction[]): boolean {
  let fresh = false;
  for (const instruction of list) {
    if (p.instructionsSeen.has(instruction.id)) continue;
    p.instructionsSeen.add(instruction.id);
    fresh = true;
    p.log.info({ instructionId: instruction.id, type: instruction.type }, 'instruction');
    const outcome = carryOut(instruction, {
      drain: (reason) => p.requestDrain(reason),
      halt: (code, reason) => p.requestHalt(code, reason, 'halt'),
      killPayload: (id, reason) => p.payloads.stop(id, reason),
      setHeartbeatInterval: (sec) => p.heartbeats.setInterval(sec),
      setIdleTimeout: (sec) => {
        p.idleTimeoutSec = sec;
        p.wake.poke();
      },
    });
    p.keeper.state.instructionsDone.push(instruction.id);
    void p.outbox
      .add({ type: 'instruction-done', instructionId: instruction.id, ok: outcome.ok, ...(outcome.message ? { message: outcome.message } : {}) })
      .catch((err: unknown) => p.log.error({ err: describeError(err) }, 'state not saved'));
  }
  return fresh;
}

/** A renewed credential in a heartbeat reply (the control plane already uses it): keep it with the state. */
export function keepCredential(p: PilotCore, reply: { credential?: string }): void {
  if (!reply.credential || reply.credential === p.keeper.state.credential) return;
  p.keeper.state.credential = reply.credential;
  void p.keeper.persist().catch((err: unknown) => p.log.error({ err: describeError(err) }, 'state not saved'));
}
