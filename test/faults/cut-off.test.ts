/**
 * A pilot cut off from the server stops its running payload before its lease
 * runs out (the lease fence), so that the server can give it to another
 * pilot. When the pilot's end report reaches the server before the server
 * stalls it — the network back in time, or the server getting the last
 * reports of a pilot halting on its orphan timeout — the payload is not
 * failed: it is evicted, queued again with the attempt counted, and run
 * again. Real agent and server processes, a loopback proxy for the network;
 * each ends with the audit.
 *
 * Times (serve --stall-after 16, agent --grace 8): the usable lease is
 * 16 - 1.6 s, the fence SIGTERMs at half of it, 7.2 s after the last call
 * the server accepted; the server stalls the pilot at 16 s, which leaves the
 * end report (retried a second after the fence) time to arrive first.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { admin, killAll, startAgent, startServer, tempDir, waitFor } from '../integration/harness.js';
import { auditServer, logged, readRuns } from './audit.js';
import { startProxy, type Proxy } from './proxy.js';

const SERVER_FLAGS = ['--heartbeat-interval', '1', '--match-wait-max', '1', '--stall-after', '16'];

describe('fault: a pilot cut off from the server with a payload running', () => {
  const tmp = tempDir('vmpilot-fault-cut-off-');
  let proxy: Proxy | null = null;
  afterEach(async () => {
    await proxy?.close();
    proxy = null;
    killAll();
  });
  afterAll(() => tmp.cleanup());

  /** The payload's history: evicted by `pilotId` for the lease, never lost (the report came before the stall). */
  async function expectEvictedByLease(api: ReturnType<typeof admin>, id: number, pilotId: number): Promise<void> {
    const history = await api.history(id);
    const evicted = history.filter((h) => h.state === 'evicted');
    expect(evicted).toHaveLength(1);
    expect(evicted[0]!.pilotId).toBe(pilotId);
    expect(evicted[0]!.reason).toMatch(/^evicted by pilot \d+ \(lease\): stopped: no contact with the server for \d+ s; the server gives its payloads to other pilots after 16 s$/);
    expect(history.filter((h) => h.state === 'lost')).toEqual([]);
    expect(history[history.indexOf(evicted[0]!) + 1]).toMatchObject({ state: 'queued', reason: 'requeued after attempt 1 of 3 was evicted' });
  }

  it('lease fence: the network comes back before the stall; the payload is evicted, queued again and done on a later attempt', async () => {
    const server = await startServer(path.join(tmp.dir, 'lease.db'), SERVER_FLAGS);
    const api = admin(server.url);
    const log = path.join(tmp.dir, 'lease.log');
    const id = await api.submit({ command: logged(log, 10), group: 'atlas' });
    proxy = await startProxy(server.url);
    const a = startAgent(proxy.url, { cores: 1, idleTimeoutSec: 3, stateDir: path.join(tmp.dir, 'lease-agent'), extra: ['--grace', '8'] });
    await waitFor('the payload to run', async () => (await api.job(id)).state === 'running');
    await waitFor('its run to start', () => readRuns(log).runs.has(id));
    const pilotA = (await api.job(id)).pilotId!;

    await proxy.set('refuse');
    await waitFor('the lease fence', () => /lease running out: payloads stopped/.test(a.stderr()), 20_000);
    await proxy.set('forward');
    await waitFor('the payload to be evicted', async () => (await api.history(id)).some((h) => h.state === 'evicted'), 20_000);
    await expectEvictedByLease(api, id, pilotA);
    // the server had the report in time: the pilot was never stalled
    expect((await api.pilots())[0]!.state).not.toBe('stalled');

    // the pilot asks again once its end report is delivered, and may run the payload as a new attempt
    expect((await a.exited).code, a.stderr().slice(-3000)).toBe(0);
    const result = await auditServer(api, [id], log);
    expect(result.violations).toEqual([]);
    expect(result.byState).toEqual({ done: 1 });
    expect(await api.job(id)).toMatchObject({ state: 'done', attempts: 2, evictions: 1 });
    const runs = result.runs.get(id)!;
    expect(runs).toHaveLength(2);
    expect(runs[0]!.endNs).toBeNull();
    await server.stop();
  });

  it('orphan timeout: with the payload fenced the pilot halts 700; its last reports arrive, the payload is queued again and done on another pilot', async () => {
    const server = await startServer(path.join(tmp.dir, 'orphan.db'), SERVER_FLAGS);
    const api = admin(server.url);
    const log = path.join(tmp.dir, 'orphan.log');
    const id = await api.submit({ command: logged(log, 10), group: 'atlas' });
    proxy = await startProxy(server.url);
    const stateDir = path.join(tmp.dir, 'orphan-agent');
    const a = startAgent(proxy.url, { cores: 1, idleTimeoutSec: 3600, stateDir, extra: ['--grace', '8', '--orphan-timeout', '2'] });
    await waitFor('the payload to run', async () => (await api.job(id)).state === 'running');
    await waitFor('its run to start', () => readRuns(log).runs.has(id));
    const pilotA = (await api.job(id)).pilotId!;

    await proxy.set('refuse');
    // nothing runs once the fence stopped it, and the server has been away for longer than the orphan timeout
    await waitFor('the orphan halt', () => /"to":"halting","reason":"server unreachable for \d+ s"/.test(a.stderr()), 20_000);
    await proxy.set('forward');
    expect((await a.exited).code, a.stderr().slice(-3000)).toBe(17);
    expect(readFileSync(path.join(stateDir, 'shutdown_message'), 'utf8')).toMatch(/^700 Transient or internal error: server unreachable for \d+ s\n$/);
    expect((await api.pilots())[0]).toMatchObject({ state: 'halted', shutdownCode: 700 });
    expect(await api.job(id)).toMatchObject({ state: 'queued', attempts: 1, evictions: 1 });
    await expectEvictedByLease(api, id, pilotA);

    const b = startAgent(server.url, { cores: 1, idleTimeoutSec: 2, stateDir: path.join(tmp.dir, 'orphan-agent-b') });
    expect((await b.exited).code, b.stderr().slice(-3000)).toBe(0);
    const result = await auditServer(api, [id], log);
    expect(result.violations).toEqual([]);
    expect(result.byState).toEqual({ done: 1 });
    const job = await api.job(id);
    expect(job).toMatchObject({ state: 'done', attempts: 2, evictions: 1 });
    expect(job.pilotId).not.toBe(pilotA);
    await server.stop();
  });
});
