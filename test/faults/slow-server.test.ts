import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, onTestFailed } from 'vitest';
import { admin, killAll, startAgent, startServer, tempDir, waitFor } from '../integration/harness.js';
import { failedCalls, haltDecision, logLines } from './agent-log.js';
import { audit, logged } from './audit.js';
import { startProxy, type Proxy } from './proxy.js';

const IDLE_SEC = 3;
const PAYLOADS = 16;

describe('fault: the server is slow rather than down: its answers hang for longer than the idle timeout', () => {
  const tmp = tempDir('vmpilot-fault-slow-');
  let proxy: Proxy | null = null;
  afterEach(async () => {
    await proxy?.close();
    killAll();
  });
  afterAll(() => tmp.cleanup());

  it('no idle halt while requests hang; the work queued meanwhile is done once answers come, then the halt 300', async () => {
    const server = await startServer(path.join(tmp.dir, 'server.db'));
    const api = admin(server.url);
    proxy = await startProxy(server.url);
    const log = path.join(tmp.dir, 'runs.log');
    const ids: number[] = [];
    for (let i = 0; i < PAYLOADS; i++) ids.push(await api.submit({ command: logged(log, 1), name: `s${i}` }));
    const agent = startAgent(proxy.url, { cores: 4, idleTimeoutSec: IDLE_SEC, stateDir: path.join(tmp.dir, 'agent') });
    onTestFailed(() => console.error(`agent:\n${agent.stderr().slice(-6000)}`));
    await waitFor('four payloads done and four running', async () => {
      const jobs = await api.jobs();
      return jobs.filter((j) => j.state === 'done').length >= 4 && jobs.filter((j) => j.state === 'running').length === 4;
    });

    // the server still takes requests (it hands out payloads, applies reports) but its answers do not come back
    const from = agent.stderr().length;
    const heldAt = Date.now();
    proxy.hold();
    // the payloads running end: the agent is idle by its own count, with work queued that it asked for
    await waitFor('the running payloads to end', async () => logLines(agent, from).filter((l) => l.msg === 'payload ended').length >= 4);
    const idleFrom = Math.max(...logLines(agent, from).filter((l) => l.msg === 'payload ended').map((l) => l.time));
    // past the point where an idle halt would have come: the agent itself gave up on a call that hung longer than that
    await waitFor(
      'the agent to give up on a call that hung past its idle timeout',
      () => agent.child.exitCode !== null || failedCalls(agent, from).some((l) => l.time >= idleFrom + (IDLE_SEC + 1) * 1000),
      60_000,
    );
    expect(haltDecision(agent), `the agent halted while its requests hung (held since ${new Date(heldAt).toISOString()})`).toBeNull();
    expect(agent.child.exitCode).toBeNull();

    proxy.release();
    expect((await agent.exited).code, agent.stderr().slice(-3000)).toBe(0);
    const jobs = await api.jobs();
    const emptyFrom = Math.max(...jobs.map((j) => j.assignedAt ?? Infinity));
    const halt = haltDecision(agent);
    expect(halt).toMatchObject({ code: 300 });
    expect(halt!.time, `halted (${halt!.reason}) before the queue was empty`).toBeGreaterThan(emptyFrom);
    const pilots = await api.pilots();
    expect(pilots).toHaveLength(1);
    expect(pilots[0]).toMatchObject({ state: 'halted', shutdownCode: 300 });
    const result = audit(ids, jobs, log);
    expect(result.violations).toEqual([]);
    expect(result.byState).toEqual({ done: PAYLOADS });
    await server.stop();
  });
});
