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
  /** Let pending promise chains run. */
  const settle = async () => {
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  };
  return { outputs, drain, stateDir, config, control, runner, halter, store, clock, pilot, until, applied, settle, start: () => void pilot.run() };
}
