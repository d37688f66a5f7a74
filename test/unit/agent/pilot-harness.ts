/** Test harness: a Pilot wired to fakes, with a fake clock and a temporary state dir. */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { vi } from 'vitest';
import { loadConfig } from '../../../src/agent/config/load.js';
import { FakeControlPlane } from '../../../src/agent/control/fake-control-plane.js';
import { FakeProcessRunner } from '../../../src/agent/executor/fake-process-runner.js';
import { FakeHalter } from '../../../src/agent/halt/halter.js';
import { MemoryOutputs } from '../../../src/agent/halt/job-outputs.js';
import { Pilot } from '../../../src/agent/pilot.js';
import { FakeProbe } from '../../../src/agent/probe/node-probe.js';
import { MemoryStateStore } from '../../../src/agent/state/memory-store.js';
import type { Report } from '../../../src/protocol/index.js';
import { FakeClock } from '../../../src/shared/clock.js';
import { silentLogger } from '../../../src/shared/log.js';

/**
 * True while the process has work in flight that will settle a promise by
 * itself: a libuv request (file system, DNS, crypto, a write) or an
 * immediate. Timers are not counted: the pilot's go through the fake clock,
 * and vitest's own never end.
 */
function inFlight(): boolean {
  return process.getActiveResourcesInfo().some((r) => r === 'Immediate' || /Req|Request|WriteWrap|ShutdownWrap/.test(r));
}

/** Build a pilot on fakes; `flags` are `vmpilot run` flags. */
export function harness(flags: Record<string, string> = {}, store = new MemoryStateStore()) {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'vmp-pilot-'));
  const config = loadConfig({ flags: { server: 'http://s', cores: '4', grace: '5', stateDir, ...flags }, env: { VMPILOT_PILOT_TOKEN: 't' } });
  const clock = new FakeClock();
  // answers a match "nothing" once its wait has passed, as the server does
  const control = new FakeControlPlane(clock);
  const runner = new FakeProcessRunner();
  const halter = new FakeHalter();
  const outputs = new MemoryOutputs();
  const drain = { file: null as string | null };
  const pilot = new Pilot({
    config,
    control,
    runner,
    probe: new FakeProbe(),
    halter,
    store,
    clock,
    log: silentLogger(),
    outputs,
    drainFiles: { present: async () => drain.file },
    random: () => 0,
  });
  const until = (check: () => void) => vi.waitFor(check, { timeout: 10_000, interval: 2 });
  const applied = <T extends Report['type']>(type: T) => control.applied.filter((r): r is Extract<Report, { type: T }> => r.type === type);
  /**
   * Wait until the pilot can do nothing more at this moment of the fake
   * clock: what is due now has run (`advance(0)`), and the process has no
   * request in flight (file I/O, an immediate, ...), so none of the pilot's
   * promises can settle until the clock moves or a fake is told to act. What
   * has not happened by then does not happen at this time: settle before
   * asserting that something did not happen.
   */
  const settle = async () => {
    const until = Date.now() + 10_000;
    for (;;) {
      // checked at a macrotask boundary: every microtask queued before has run
      await new Promise((r) => setImmediate(r));
      if (clock.due > 0) await clock.advance(0);
      else if (!inFlight()) return;
      if (Date.now() > until) throw new Error(`the pilot never settled: ${process.getActiveResourcesInfo().join(', ')}`);
    }
  };
  return { outputs, drain, stateDir, config, control, runner, halter, store, clock, pilot, until, applied, settle, start: () => void pilot.run() };
}
