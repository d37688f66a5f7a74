/**
 * The bootstrap: an ordered list of small, idempotent steps, each with a
 * typed input and output. The first step that fails stops the list; the
 * pilot then halts with shutdown code 500 and "bootstrap step NAME failed:
 * WHY" in its final report.
 *
 *   check-node ─▶ install-software ─▶ payload-env ─▶ setup-commands
 *
 * Every step must be safe to run again (a restarted agent runs them all
 * again): checks only read, artifacts come from a cache keyed by sha256,
 * links are replaced atomically, setup commands must be idempotent (the
 * user's contract, stated in the docs).
 */
import { describeError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';

/** One step: a name for logs and reports, and what it does. */
export interface Step<I, O> {
  name: string;
  run(input: I): Promise<O>;
}

/** The outcome of the bootstrap. */
export type BootstrapOutcome = { ok: true; env: Record<string, string> } | { ok: false; step: string; reason: string };

/** A step that failed: the list stops here. */
export class StepFailed extends Error {
  constructor(
    readonly step: string,
    readonly reason: string,
  ) {
    super(`bootstrap step ${step} failed: ${reason}`);
  }
}

/** Run one step, logging its start, end and duration; wrap its failure in StepFailed. */
export async function runStep<I, O>(step: Step<I, O>, input: I, log: Logger, now: () => number): Promise<O> {
  const t0 = now();
  log.info({ step: step.name }, 'bootstrap step');
  try {
    const out = await step.run(input);
    log.info({ step: step.name, ms: now() - t0 }, 'bootstrap step done');
    return out;
  } catch (err) {
    const reason = describeError(err);
    log.error({ step: step.name, reason }, 'bootstrap step failed');
    throw new StepFailed(step.name, reason);
  }
}
