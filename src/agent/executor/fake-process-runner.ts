/**
 * A scriptable ProcessRunner for tests: processes run until the test ends
 * them (`finish`) or a signal arrives (SIGTERM/SIGKILL end them by default).
 */
import { VmpilotError } from '../../shared/errors.js';
import type { PayloadProcess, ProcessExit, ProcessRunner, ProcessSpec } from '../ports.js';

/** One fake process: see what was started and signalled, end it at will. */
export class FakeProcess implements PayloadProcess {
  readonly exited: Promise<ProcessExit>;
  readonly signals: NodeJS.Signals[] = [];
  done = false;
  /** When false, SIGTERM is recorded but ignored (a stubborn payload). */
  obeysSigterm = true;
  private resolveExit!: (e: ProcessExit) => void;

  constructor(
    readonly pid: number,
    readonly spec: ProcessSpec,
  ) {
    this.exited = new Promise((resolve) => (this.resolveExit = resolve));
  }

  /** End the process with this exit. */
  finish(exit: ProcessExit = { exitCode: 0, signal: null }): void {
    if (this.done) return;
    this.done = true;
    this.resolveExit(exit);
  }

  signalGroup(signal: NodeJS.Signals): boolean {
    if (this.done) return false;
    this.signals.push(signal);
    if (signal === 'SIGKILL' || (signal === 'SIGTERM' && this.obeysSigterm)) this.finish({ exitCode: null, signal });
    return true;
  }
}

/** Records every start; `failCommands` names commands that cannot start. */
export class FakeProcessRunner implements ProcessRunner {
  readonly started: FakeProcess[] = [];
  readonly failCommands = new Set<string>();
  /** Called on every start, e.g. to make a process stubborn or end it at once. */
  onStart: (p: FakeProcess) => void = () => undefined;
  private nextPid = 1000;

  async start(spec: ProcessSpec): Promise<PayloadProcess> {
    if (this.failCommands.has(spec.command[0] ?? '')) {
      throw new VmpilotError('VMP_SPAWN', `cannot start: spawn ${spec.command[0]} ENOENT`);
    }
    const p = new FakeProcess(this.nextPid++, spec);
    this.started.push(p);
    this.onStart(p);
    return p;
  }

  /** Processes that have not ended. */
  get live(): FakeProcess[] {
    return this.started.filter((p) => !p.done);
  }
}
