/**
 * Attack: a payload writes its output faster than the agent looks at it, so
 * that the output cap (--max-output-mb), checked once a second, lets it fill
 * the disk first (1.59 GB was seen under --max-output-mb 5). The cap must
 * hold while it writes: here the payloads' directory is a 24 MiB tmpfs, the
 * cap 2 MiB, and the payload writes 200 MB as fast as it can. It never fills
 * the disk (its report says nothing was truncated for lack of space), its
 * file stays under the cap, and the newest output is kept.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { admin, killAll, startServer, tempDir, waitFor } from '../integration/harness.js';
import { audit, logged } from '../faults/audit.js';
import { MODES, places, startModeAgent } from './lib.js';

const MIB = 1024 * 1024;

describe('attack: a payload writes output faster than the cap is checked', () => {
  const tmp = tempDir('vmpilot-sec-output-');
  const mode = MODES[0]!; // the agent as root, as on every VM
  const where = places(tmp.dir, mode);
  const { log, stateDir, runSh } = where;
  const payloads = path.join(stateDir, 'payloads');
  const mounted = () => spawnSync('mountpoint', ['-q', payloads]).status === 0;
  afterEach(() => {
    killAll();
    if (mounted()) execFileSync('umount', ['-l', payloads]);
  });
  afterAll(() => {
    if (!mounted()) tmp.cleanup();
  });

  it('the cap holds while it writes: the disk never fills, the file stays under the cap, the newest output is kept', async () => {
    mkdirSync(payloads, { recursive: true });
    // needs root and mount(2); when the machine cannot, this fails with the reason
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', payloads]);
    const server = await startServer(path.join(tmp.dir, 'server.db'), ['--heartbeat-interval', '1']);
    const api = admin(server.url);
    const loud = await api.submit({ command: ['sh', '-c', 'head -c 200000000 /dev/zero | tr "\\0" x; echo; echo the-last-line; sleep 2'] });
    const neighbour = await api.submit({ command: logged(log, 1, 0, runSh) });
    const agent = startModeAgent(server.url, mode, where, { cores: 2, idleTimeoutSec: 3, extra: ['--max-output-mb', '2'] });

    // while it runs, its stdout never passes the cap (looked at as often as the test can)
    let largest = 0;
    const stdout = path.join(payloads, String(loud), 'stdout');
    await waitFor(`payload ${loud} to end`, async () => {
      largest = Math.max(largest, statSync(stdout, { throwIfNoEntry: false })?.size ?? 0);
      return ['done', 'failed'].includes((await api.job(loud)).state);
    }, 60_000);
    expect((await agent.exited).code, agent.stderr().slice(-3000)).toBe(0);

    const job = await api.job(loud);
    expect(job, JSON.stringify({ ...job, outputTail: job.outputTail?.slice(-200) })).toMatchObject({ state: 'done', exitCode: 0, message: null });
    expect(job.outputTail).toMatch(/the-last-line$/);
    expect(largest, 'the largest stdout seen while it wrote').toBeLessThanOrEqual(2 * MIB);
    expect(largest, 'the test saw it write').toBeGreaterThan(0);
    const result = audit([loud, neighbour], await api.jobs(), log);
    expect(result.violations).toEqual([]);
    await server.stop();
  });
});
