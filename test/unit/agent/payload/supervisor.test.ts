/**
 * A payload found running after an agent restart keeps the wall time it had:
 * it is stopped when its wall limit, counted from when the previous run
 * started it, is reached — not a whole new allowance after each restart.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fakeAssignment } from '../../../../src/agent/control/fake-control-plane.js';
import { FakeProcess, FakeProcessRunner } from '../../../../src/agent/executor/fake-process-runner.js';
import { PayloadSupervisor } from '../../../../src/agent/payload/supervisor.js';
import type { PayloadResult } from '../../../../src/agent/executor/payload-runner.js';
import { FakeClock } from '../../../../src/shared/clock.js';
import { silentLogger } from '../../../../src/shared/log.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'vmp-sup-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

function adoptOne(clock: FakeClock, startedAgoMs: number, wallSec: number) {
  const ended: (PayloadResult & { timedOut?: boolean })[] = [];
  const sup = new PayloadSupervisor(new FakeProcessRunner(), clock, silentLogger(), dir, () => ({}), () => 1, {
    started: async () => undefined,
    ended: async (_a, r) => void ended.push(r),
  });
  const a = fakeAssignment(7, { command: ['sleep', '1000'], wallSec });
  const spec = { command: a.command, cwd: dir, env: {}, stdoutPath: path.join(dir, 'stdout'), stderrPath: path.join(dir, 'stderr') };
  const proc = new FakeProcess(4242, spec);
  sup.adopt(a, 1, proc, spec, clock.now() - startedAgoMs);
  return { proc, ended };
}

describe('adopted payloads keep their wall time', () => {
  it('started 3 s before the restart with a 4 s limit: stopped 1 s after it', async () => {
    const clock = new FakeClock();
    const { proc, ended } = adoptOne(clock, 3000, 4);
    await clock.advance(900);
    expect(proc.signals).toEqual([]);
    await clock.advance(200);
    await vi.waitFor(() => expect(ended).toHaveLength(1));
    expect(proc.signals[0]).toBe('SIGTERM');
    expect(ended[0]).toMatchObject({ timedOut: true, message: 'wall time of 4 s exceeded' });
  });

  it('already past its limit when found: stopped at once', async () => {
    const clock = new FakeClock();
    const { proc, ended } = adoptOne(clock, 60_000, 4);
    await clock.advance(0);
    await vi.waitFor(() => expect(ended).toHaveLength(1));
    expect(proc.signals[0]).toBe('SIGTERM');
    expect(ended[0]).toMatchObject({ timedOut: true });
  });
});
