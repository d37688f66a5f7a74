/**
 * The halt sequence, the agent's last steps, in this order:
 *   1. halting: stop taking work (the match request is aborted);
 *   2. SIGTERM to every payload's process group; wait the grace period;
 *      SIGKILL what remains; report each payload ended;
 *   3. the final `state` and `shutdown` reports (code and message), delivered
 *      for up to FINAL_REPORT_MS — the server learns of the halt before the
 *      halt action runs;
 *   4. `shutdown_message` ("NNN text: reason", the shutdown report's
 *      message, as the server shows it) in the state directory and in
 *      `$JOBOUTPUTS` when given;
 *   5. the halt action (poweroff chain, exit, or a command).
 */
import { exitStatusFor, shutdownMessage, shutdownText, type EvictionReason, type LifecycleState } from '../../protocol/index.js';
import type { Clock } from '../../shared/clock.js';
import { describeError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { HaltAction, Halter, StateStore } from '../ports.js';
import type { ReportDraft } from '../state/outbox.js';
import type { JobOutputs } from './job-outputs.js';

/** How long the halt sequence tries to deliver the last reports. */
export const FINAL_REPORT_MS = 10_000;
/** Extra wait beyond the grace period for payload ends to be reported. */
const REPORT_MARGIN_MS = 10_000;

/** The halt to carry out (pilot/lifecycle.ts holds it). */
export interface HaltOrder {
  code: number;
  reason: string;
  /** What the server hears stopped the payloads still running. */
  eviction: EvictionReason;
  /** A start-up problem: logged as an error and said in one plain line on stderr. */
  fatal: boolean;
}

/** The lifecycle, as the sequence moves it. */
export interface HaltLifecycle {
  readonly state: LifecycleState;
}

/** The payloads, as the sequence stops them. */
export interface HaltPayloads {
  /** SIGTERM every payload now, SIGKILL after the grace period; stopped for the infrastructure's sake with `evicted`. */
  stopAll(reason: string, graceMs: number | undefined, evicted: EvictionReason): unknown;
  /** Settles when every payload has ended and been reported. */
  allDone(): Promise<void>;
}

/** The last reports: null when the server does not know the pilot. */
export interface HaltReports {
  add(draft: ReportDraft): Promise<unknown>;
  /** Deliver queued reports until `until`; true when all went. */
  drain(until: number): Promise<boolean>;
}

/** What the halt sequence acts on, port by port. */
export interface HaltPorts {
  clock: Clock;
  log: Logger;
  lifecycle: HaltLifecycle;
  /** Move the lifecycle (and say so). */
  transition(to: LifecycleState, reason: string): Promise<void>;
  /** Stop asking for work. */
  match: { abort(): void };
  payloads: HaltPayloads;
  graceSec: number;
  reports: HaltReports | null;
  /** Remember in the state that this pilot halted. */
  session: { markHalted(now: number): Promise<void> };
  /** End the background loops. */
  stopLoops(): void;
  /** Where the last words go: the state directory, and `$JOBOUTPUTS` when given. */
  store: Pick<StateStore, 'writeShutdownMessage'>;
  outputs: JobOutputs | null;
  halter: Halter;
  action: HaltAction;
}

/**
 * The message of a shutdown: the code's text, and the reason when it says
 * more ("Shutdown as requested: site downtime"), on one line (control
 * characters become spaces) so that `shutdown_message` stays one line. Pure.
 */
export function shutdownReportMessage(code: number, reason: string): string {
  const oneLine = reason.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return (oneLine === shutdownText(code) || oneLine === '' ? shutdownText(code) : `${shutdownText(code)}: ${oneLine}`).slice(0, 4096);
}

/**
 * Run the halt sequence for `halt`; ends with the halt action, so it never
 * returns. A fatal halt (a start-up problem) is logged as an error and handed
 * to the halter, which says it in one plain line on stderr.
 */
export async function haltSequence(s: HaltPorts, halt: HaltOrder): Promise<never> {
  const { clock, log } = s;
  const { code, reason } = halt;
  const state = () => s.lifecycle.state;
  if (state() !== 'halting' && state() !== 'halted') await s.transition('halting', reason).catch(() => undefined);
  s.match.abort();
  // stopped for the infrastructure's sake: the server queues them again (store/endings.ts)
  s.payloads.stopAll(`halting: ${reason}`, undefined, halt.eviction);
  await Promise.race([s.payloads.allDone(), clock.sleep(s.graceSec * 1000 + REPORT_MARGIN_MS)]);
  log.info({ code, reason }, 'halting');
  try {
    if (s.reports) {
      await s.transition('halted', reason);
      await s.reports.add({ type: 'shutdown', code, message: shutdownReportMessage(code, reason) });
      await s.session.markHalted(clock.now());
      s.stopLoops();
      const delivered = await s.reports.drain(clock.now() + FINAL_REPORT_MS);
      if (!delivered) log.warn('last reports not delivered');
    } else {
      await s.transition('halted', reason);
    }
  } catch (err) {
    log.error({ err: describeError(err) }, 'last reports failed');
  }
  s.stopLoops();
  // the reason the admin (or the agent) gave, as the server shows it: "100 Shutdown as requested: site downtime"
  const line = shutdownMessage(code, shutdownReportMessage(code, reason));
  await s.store.writeShutdownMessage(line).catch((err: unknown) => log.error({ err: describeError(err) }, 'shutdown_message not written'));
  await s.outputs?.put('shutdown_message', `${line}\n`).catch((err: unknown) => {
    log.error({ err: describeError(err) }, 'shutdown_message not written to $JOBOUTPUTS');
  });
  const exitStatus = exitStatusFor(code);
  log.info({ code, reason, action: s.action.kind, exitStatus }, 'halted');
  if (!halt.fatal) return s.halter.halt(s.action, exitStatus);
  log.error({ code, reason, exitStatus }, 'fatal problem: halted');
  return s.halter.halt(s.action, exitStatus, `${reason} (shutdown code ${code}, exit status ${exitStatus})`);
}
