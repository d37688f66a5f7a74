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
import { FakeClock } from '../../../../src/shared/clock.js';

const dir = mkdtempSync(path.join(tmpdir(), 'vmpilot-stillborn-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const prefix = 'vmp-test-laptop-';

function driver(clock: FakeClock) {
  return new ProcessDriver({
    settings: { kind: 'process', workDir: dir, agent: null, node: null, extraArgs: [] },
    prefix,
    agent: '/nonexistent/vmpilot.cjs',
    node: '/nonexistent/node',
    baseEnv: {},
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
});
