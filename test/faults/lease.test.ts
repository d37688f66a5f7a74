import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { admin, killAll, startAgent, startServer, tempDir, waitFor } from '../integration/harness.js';
import { audit, historiesOf, logged, readRuns } from './audit.js';
import { startProxy, type Proxy } from './proxy.js';

describe('fault: a pilot cut off for longer than its lease (serve --stall-after 4)', () => {
  const tmp = tempDir('vmpilot-fault-lease-');
  let proxy: Proxy | null = null;
  afterEach(async () => {
    await proxy?.close();
    killAll();
  });
  afterAll(() => tmp.cleanup());

  it('stops its payload before the server gives it to another pilot: never on two pilots at once, done exactly once', async () => {
    const server = await startServer(path.join(tmp.dir, 'server.db'), ['--heartbeat-interval', '1', '--match-wait-max', '1', '--stall-after', '4']);
    const api = admin(server.url);
    const log = path.join(tmp.dir, 'runs.log');
    const id = await api.submit({ command: logged(log, 8) });
    proxy = await startProxy(server.url);
    // A reaches the server only through the proxy; B directly
    const a = startAgent(proxy.url, { cores: 1, idleTimeoutSec: 3, stateDir: path.join(tmp.dir, 'a'), extra: ['--grace', '1'] });
    await waitFor('the payload to run on A', async () => (await api.job(id)).state === 'running');
    const pilotA = (await api.job(id)).pilotId;
    const b = startAgent(server.url, { cores: 1, idleTimeoutSec: 12, stateDir: path.join(tmp.dir, 'b'), extra: ['--grace', '1'] });
    await waitFor('B to register', async () => (await api.pilots()).length === 2);

    await proxy.set('refuse');
    // the server stalls A after 4 s without contact and requeues the payload; B starts it
    await waitFor('the payload to run on B', async () => {
      const j = await api.job(id);
      return j.state === 'running' && j.pilotId !== pilotA;
    }, 20_000);
    // (B reports the start as soon as it spawned the payload, which logs its run a moment later)
    await waitFor("B's run to start", () => (readRuns(log).runs.get(id)?.length ?? 0) >= 2);
    // A stopped its run before that: the first run never ended normally, and the second began after it was gone
    const runs = readRuns(log);
    expect(runs.overlaps).toEqual([]);
    expect(runs.runs.get(id)).toHaveLength(2);
    expect(runs.runs.get(id)![0]!.endNs).toBeNull();
    expect(a.stderr()).toMatch(/lease running out: payloads stopped/);

    // A comes back: its end report is refused (the payload is B's now), and it halts idle
    await proxy.set('forward');
    expect((await b.exited).code, b.stderr().slice(-3000)).toBe(0);
    expect((await a.exited).code, a.stderr().slice(-3000)).toBe(0);
    // the reason its end report carried ("stopped: " + this), as its log shows
    expect(a.stderr()).toMatch(/"reason":"no contact with the server for \d+ s; the server gives its payloads to other pilots after 4 s"/);

    const jobs = await api.jobs();
    const result = audit([id], jobs, log, await historiesOf(api));
    expect(result.violations).toEqual([]);
    // (under heavy load a 4 s lease can fence B too, and a payload fenced on its last attempt fails: say so)
    expect(result.byState, JSON.stringify(await api.history(id))).toEqual({ done: 1 });
    const ok = result.runs.get(id)!.filter((r) => r.status === 0);
    expect(ok).toHaveLength(1);
    const job = jobs.find((j) => j.id === id)!;
    expect(job.pilotId).not.toBe(pilotA);
    await server.stop();
  });
});
