import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { admin, killAll, startAgent, startServer, tempDir, waitFor } from '../integration/harness.js';
import { audit, historiesOf, logged } from './audit.js';

describe('fault: the payload directory is full (1 MiB tmpfs)', () => {
  const tmp = tempDir('vmpilot-fault-disk-');
  const stateDir = path.join(tmp.dir, 'agent');
  const payloads = path.join(stateDir, 'payloads');
  const mounted = () => spawnSync('mountpoint', ['-q', payloads]).status === 0;
  afterEach(() => {
    killAll();
    if (mounted()) execFileSync('umount', ['-l', payloads]);
  });
  afterAll(() => {
    if (!mounted()) tmp.cleanup();
  });

  it('the payload that fills it with a file fails, the one that fills it with output goes on truncated; later payloads run once the space is freed', async () => {
    mkdirSync(payloads, { recursive: true });
    // needs root and mount(2); when the machine cannot, this fails with the reason
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', payloads]);
    expect(mounted(), `${payloads} is a mount point`).toBe(true);

    const server = await startServer(path.join(tmp.dir, 'server.db'), ['--heartbeat-interval', '1']);
    const api = admin(server.url);
    const log = path.join(tmp.dir, 'runs.log'); // outside the full directory: the audit's record
    // neighbours start first and run through the fills; then one payload fills the directory with its
    // stdout, the next with a file; later payloads start after them
    const ids = [await api.submit({ command: logged(log, 6) }), await api.submit({ command: logged(log, 6) })];
    const agent = startAgent(server.url, { cores: 4, idleTimeoutSec: 3, stateDir });
    await waitFor('the neighbours to run', async () => (await api.jobs()).filter((j) => j.state === 'running').length === 2);
    // a payload fills the directory with its own stdout: the pump drops what does not fit, the payload runs on
    const fillStdout = await api.submit({ command: ['sh', '-c', 'head -c 4000000 /dev/zero | tr "\\0" x; echo wrote-all >&2'] });
    ids.push(fillStdout);
    await waitFor(`payload ${fillStdout} to end`, async () => ['done', 'failed'].includes((await api.job(fillStdout)).state), 20_000);
    // its writes never failed: it ran to the end, and its report says its output was cut
    const filler = await api.job(fillStdout);
    expect(filler, JSON.stringify(filler)).toMatchObject({ state: 'done', exitCode: 0, message: 'output truncated: no space left on device' });
    expect(filler.outputTail).toMatch(/\[vmpilot: output truncated: no space left on device\]$/);
    // then one fills it with a file of its own: that write fails, as it would anywhere (dd exits 1)
    const fillFile = await api.submit({ command: ['sh', '-c', 'dd if=/dev/zero of=fill bs=64k count=64 && echo not-full'] });
    ids.push(fillFile);
    await waitFor(`payload ${fillFile} to end`, async () => ['done', 'failed'].includes((await api.job(fillFile)).state), 20_000);
    expect(await api.job(fillFile)).toMatchObject({ state: 'failed', exitCode: 1 });
    for (let i = 0; i < 3; i++) ids.push(await api.submit({ command: logged(log, 1) }));

    expect((await agent.exited).code, agent.stderr().slice(-3000)).toBe(0);
    const jobs = await api.jobs();
    const result = audit(ids, jobs, log, await historiesOf(api));
    expect(result.violations).toEqual([]);
    for (const id of [ids[0]!, ids[1]!]) expect(jobs.find((j) => j.id === id)?.state, `neighbour ${id}`).toBe('done');
    // the fillers' directories went once the server had their end reports (the disk is short: none kept),
    // so the payloads after them found the space and ran
    for (const j of jobs.filter((x) => ids.indexOf(x.id) >= 4)) expect(j, `payload ${j.id}`).toMatchObject({ state: 'done', exitCode: 0 });
    expect(existsSync(path.join(payloads, String(fillFile))), 'the file filler\'s directory was removed').toBe(false);
    expect((await api.pilots())[0]).toMatchObject({ state: 'halted', shutdownCode: 300 });
    await server.stop();
  });
});
