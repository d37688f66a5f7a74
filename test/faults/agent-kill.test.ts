import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it, onTestFailed } from 'vitest';
import { admin, killAll, startAgent, startServer, tempDir, waitFor } from '../integration/harness.js';
import { audit, historiesOf, logged, readRuns } from './audit.js';

describe('fault: the agent is SIGKILLed with several payloads running and restarted on the same state directory', () => {
  const tmp = tempDir('vmpilot-fault-agent-');
  afterEach(() => killAll());
  afterAll(() => tmp.cleanup());

  it('re-attaches to the payloads still running, reports those that ended while it was down, once each', async () => {
    const db = path.join(tmp.dir, 'server.db');
    const server = await startServer(db, ['--heartbeat-interval', '1']);
    // a rare failure seen once under load ("ran to status 0 but the server says queued"): say what happened
    onTestFailed(() => {
      const read = new Database(db, { readonly: true });
      const rows = (q: string) => read.prepare(q).all().map((r) => JSON.stringify(r)).join('\n');
      console.error(`payload states:\n${rows('SELECT payload_id, state, pilot_id, reason, at FROM payload_states ORDER BY id')}`);
      console.error(`reports:\n${rows('SELECT seq, type, at, outcome, body FROM reports ORDER BY pilot_id, seq')}`);
      read.close();
      console.error(`first agent:\n${first?.stderr().slice(-6000)}\nsecond agent:\n${second?.stderr().slice(-6000)}`);
    });
    let first: ReturnType<typeof startAgent> | undefined;
    let second: ReturnType<typeof startAgent> | undefined;
    const api = admin(server.url);
    const log = path.join(tmp.dir, 'runs.log');
    // four at once on 4 cores: two end while the agent is down, two outlive it; one fails; two more wait in the queue
    const plan: Array<[number, number]> = [[1, 0], [2, 3], [8, 0], [9, 0], [1, 0], [1, 0]];
    const ids: number[] = [];
    for (const [sec, status] of plan) ids.push(await api.submit({ command: logged(log, sec, status) }));
    const stateDir = path.join(tmp.dir, 'agent');
    first = startAgent(server.url, { cores: 4, idleTimeoutSec: 3, stateDir });
    await waitFor('four payloads to run', async () => (await api.jobs()).filter((j) => j.state === 'running').length === 4);
    first.child.kill('SIGKILL');
    await first.exited;
    await waitFor('two payloads to end while the agent is down', () => [...readRuns(log).runs.values()].flat().filter((r) => r.endNs !== null).length >= 2, 20_000);
    expect((await api.jobs()).filter((j) => j.state === 'running')).toHaveLength(4);

    second = startAgent(server.url, { cores: 4, idleTimeoutSec: 3, stateDir });
    expect((await second.exited).code, second.stderr().slice(-3000)).toBe(0);
    const pilots = await api.pilots();
    expect(pilots).toHaveLength(1);
    expect(pilots[0]).toMatchObject({ state: 'halted', shutdownCode: 300 });
    const jobs = await api.jobs();
    const result = audit(ids, jobs, log, await historiesOf(api));
    expect(result.violations).toEqual([]);
    expect(result.byState).toEqual({ done: 5, failed: 1 });
    expect(jobs.find((j) => j.id === ids[1])).toMatchObject({ state: 'failed', exitCode: 3 });
    // the adopted ones ran once: one start each
    for (const id of ids) expect(result.runs.get(id)).toHaveLength(1);
    await server.stop();
  });
});
