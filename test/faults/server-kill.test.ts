import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { admin, freePort, kill, killAll, startAgent, startServer, tempDir, waitFor } from '../integration/harness.js';
import { audit, historiesOf, logged, readRuns } from './audit.js';

describe('fault: the server is SIGKILLed mid-workload and restarted on the same database and port', () => {
  const tmp = tempDir('vmpilot-fault-server-');
  afterEach(() => killAll());
  afterAll(() => tmp.cleanup());

  it('loses no payload and runs none twice; the agents carry on as the same pilots', async () => {
    const db = path.join(tmp.dir, 'server.db');
    const port = await freePort();
    const extra = ['--listen', `127.0.0.1:${port}`, '--heartbeat-interval', '1'];
    let server = await startServer(db, extra);
    const api = () => admin(server.url);
    const log = path.join(tmp.dir, 'runs.log');
    const ids: number[] = [];
    for (let i = 0; i < 12; i++) ids.push(await api().submit({ command: logged(log, 1 + (i % 3)), name: `w${i}` }));
    const agents = [0, 1].map((n) => startAgent(server.url, { cores: 2, idleTimeoutSec: 4, stateDir: path.join(tmp.dir, `agent-${n}`) }));
    await waitFor('a few payloads to end and others to run', async () => {
      const jobs = await api().jobs();
      return jobs.filter((j) => j.state === 'done').length >= 2 && jobs.some((j) => j.state === 'running');
    });

    kill(server.child);
    expect((await server.exited).signal).toBe('SIGKILL');
    // payloads go on while the server is down
    const endedBefore = [...readRuns(log).runs.values()].flat().filter((r) => r.endNs !== null).length;
    await waitFor('a payload to end while the server is down', () => [...readRuns(log).runs.values()].flat().filter((r) => r.endNs !== null).length > endedBefore, 20_000);
    server = await startServer(db, extra);

    for (const agent of agents) expect((await agent.exited).code, agent.stderr().slice(-3000)).toBe(0);
    const pilots = await api().pilots();
    expect(pilots).toHaveLength(2);
    for (const p of pilots) expect(p).toMatchObject({ state: 'halted', shutdownCode: 300 });
    const result = audit(ids, await api().jobs(), log, await historiesOf(api()));
    expect(result.violations).toEqual([]);
    expect(result.byState).toEqual({ done: 12 });
    await server.stop();
  });
});
