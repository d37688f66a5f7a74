import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { admin, killAll, startAgent, startServer, tempDir, waitFor } from '../integration/harness.js';
import { audit, historiesOf, logged, readRuns } from './audit.js';
import { startProxy, type Proxy } from './proxy.js';

const ended = (log: string) => [...readRuns(log).runs.values()].flat().filter((r) => r.endNs !== null).length;
/** How many of the agent's log lines since `from` (an offset in its stderr) say `msg`. */
const linesSince = (stderr: string, from: number, msg: string) => stderr.slice(from).split('\n').filter((l) => l.includes(`"msg":"${msg}"`)).length;

describe('fault: the network between agent and server is cut for several heartbeats (1 s interval)', () => {
  const tmp = tempDir('vmpilot-fault-net-');
  let proxy: Proxy | null = null;
  afterEach(async () => {
    await proxy?.close();
    killAll();
  });
  afterAll(() => tmp.cleanup());

  it('payloads go on through dropped, refused and stalled connections; every outcome arrives once', async () => {
    const server = await startServer(path.join(tmp.dir, 'server.db'), ['--heartbeat-interval', '1', '--match-wait-max', '2']);
    const api = admin(server.url);
    proxy = await startProxy(server.url);
    const log = path.join(tmp.dir, 'runs.log');
    const ids: number[] = [];
    for (let i = 0; i < 8; i++) ids.push(await api.submit({ command: logged(log, 2, i === 5 ? 1 : 0) }));
    const agent = startAgent(proxy.url, { cores: 2, idleTimeoutSec: 8, stateDir: path.join(tmp.dir, 'agent') });
    // (while the server is away the pilot is not idle: its idle time counts again from the server's return)
    await waitFor('two payloads to run', async () => (await api.jobs()).filter((j) => j.state === 'running').length === 2);

    // 1: connections reset, and nothing listens (ECONNREFUSED): several heartbeats fail, payloads go on
    await proxy.set('refuse');
    let from = agent.stderr().length;
    let before = ended(log);
    await waitFor('two heartbeats to fail while the network is cut', () => linesSince(agent.stderr(), from, 'heartbeat failed') >= 2);
    await waitFor('a payload to end while the network is cut', () => ended(log) > before);
    await proxy.set('forward');
    await waitFor('the agent to catch up', async () => (await api.jobs()).filter((j) => j.state === 'done').length >= ended(log) - 1, 20_000);

    // 2: connections accepted but black-holed, then dropped: calls hang, payloads go on
    await waitFor('a payload to run again', async () => (await api.jobs()).some((j) => j.state === 'running'));
    await proxy.set('stall');
    from = proxy.accepted();
    before = ended(log);
    // the agent's calls went into the black hole (its open match was dropped and asked again) and a payload ended meanwhile
    await waitFor('the agent to call into the stalled network', () => proxy!.accepted() > from);
    await waitFor('a payload to end while the network stalls', () => ended(log) > before);
    await proxy.set('forward');

    expect((await agent.exited).code, agent.stderr().slice(-3000)).toBe(0);
    const pilots = await api.pilots();
    expect(pilots).toHaveLength(1);
    expect(pilots[0]).toMatchObject({ state: 'halted', shutdownCode: 300 });
    const result = audit(ids, await api.jobs(), log, await historiesOf(api));
    expect(result.violations).toEqual([]);
    expect(result.byState).toEqual({ done: 7, failed: 1 });
    await server.stop();
  });
});
