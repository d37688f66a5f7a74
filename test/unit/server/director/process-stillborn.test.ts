/**
 * The `process` driver's view of an instance directory whose create died
 * (a server crash) after making the directory and before starting the agent:
 * at first pending, then ended, so that the director discards its instance
 * instead of waiting `bootSec` for an agent that never comes.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ProcessDriver } from '../../../../src/server/director/drivers/process.js';
import { killStragglers } from '../../../../src/server/director/drivers/local-instances.js';
import { FakeClock, systemClock } from '../../../../src/shared/clock.js';

const dir = mkdtempSync(path.join(tmpdir(), 'vmpilot-stillborn-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const prefix = 'vmp-test-laptop-';

function driver(clock: FakeClock, agent = '/nonexistent/vmpilot.cjs', node = '/nonexistent/node', baseEnv: Record<string, string> = {}) {
  return new ProcessDriver({
    settings: { kind: 'process', workDir: dir, agent: null, node: null, extraArgs: [] },
    prefix,
    agent,
    node,
    baseEnv,
    clock,
  });
}

describe('process driver: a stillborn instance directory', () => {
  it('with no created-at (the crash came right after the mkdir): pending for 10 s from the directory time, then ended', async () => {
    const key = `${prefix}nocreatedat`;
    mkdirSync(path.join(dir, key));
    const made = Math.floor(statSync(path.join(dir, key)).mtimeMs);
    expect(await driver(new FakeClock(made + 1_000)).describe(key)).toMatchObject({ state: 'pending', createdAt: made });
    const later = await driver(new FakeClock(made + 11_000)).list();
    expect(later).toEqual([expect.objectContaining({ key, state: 'ended', detail: expect.stringMatching(/^stillborn: the create that made its directory ended before it started the agent/) })]);
  });

  it('with created-at but no pid: ended 10 s after created-at', async () => {
    const key = `${prefix}nopid`;
    mkdirSync(path.join(dir, key));
    writeFileSync(path.join(dir, key, 'created-at'), '1700000000000\n');
    expect((await driver(new FakeClock(1_700_000_005_000)).describe(key))?.state).toBe('pending');
    expect((await driver(new FakeClock(1_700_000_011_000)).describe(key))?.state).toBe('ended');
  });

  it('one this driver just started is running at once, however late it is asked (a loaded host is not a crash)', async () => {
    // an "agent" that only waits: the test reads its state, then kills it
    const agent = path.join(dir, 'waits.cjs');
    writeFileSync(agent, 'setTimeout(() => undefined, 60_000);\n');
    // a host so loaded that the wrapper's shell takes seconds to get going: an `sh` first on PATH that waits, then runs the real one
    const slow = path.join(dir, 'slow-bin');
    mkdirSync(slow);
    writeFileSync(path.join(slow, 'sh'), '#!/bin/sh\nsleep 3\nexec /bin/sh "$@"\n', { mode: 0o755 });
    const clock = new FakeClock(1_700_000_000_000);
    const d = driver(clock, agent, process.execPath, { PATH: `${slow}:/usr/bin:/bin` });
    const key = `${prefix}justmade`;
    const bootstrap = { serverUrl: 'http://127.0.0.1:9', credential: 'vmpi_x', idleTimeoutSec: 60, graceSec: 5, lifetimeSec: 600 };
    const made = await d.create({ key, cores: 1, memoryMb: 100, lifetimeSec: 600, bootstrap });
    try {
      expect(made.state).toBe('pending');
      // asked right after the create and 11 s later by the director's clock, while the wrapper's shell still waits
      await clock.advance(11_000);
      expect(await d.describe(key)).toMatchObject({ state: 'running', detail: expect.stringMatching(/^pid \d+$/) });
    } finally {
      // everything started for this key carries its directory in its command line
      await killStragglers(path.join(dir, key), systemClock);
    }
  });
});
