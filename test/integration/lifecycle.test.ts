import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { admin, killAll, recorded, startAgent, startServer, tempDir, waitFor, type Server } from './harness.js';

describe('agent lifecycle against a real server', () => {
  const tmp = tempDir();
  let server: Server;
  let api: ReturnType<typeof admin>;
  let n = 0;
  const stateDir = () => path.join(tmp.dir, `agent${++n}`);

  beforeAll(async () => {
    server = await startServer(path.join(tmp.dir, 'server.db'));
    api = admin(server.url);
  });
  afterEach(() => {
    // leave no agent of a failed test running into the next one
    killAll((child) => child !== server.child);
  });
  afterAll(async () => {
    await server?.stop();
    killAll();
    tmp.cleanup();
  });

  /** Wait for the newest pilot to register and return its id. */
  const newPilot = async (known: number) =>
    waitFor('the agent to register', async () => {
      const pilots = await api.pilots();
      return pilots.length > known ? pilots.at(-1)!.id : undefined;
    });

  it('halts when idle with code 300, says so in shutdown_message, and exits 0', async () => {
    const known = (await api.pilots()).length;
    const dir = stateDir();
    const agent = startAgent(server.url, { cores: 2, idleTimeoutSec: 1, stateDir: dir });
    const exit = await agent.exited;
    expect(exit.code).toBe(0);
    const id = await newPilot(known);
    const pilot = (await api.pilots()).find((p) => p.id === id)!;
    expect(pilot).toMatchObject({ state: 'halted', shutdownCode: 300 });
    expect(readFileSync(path.join(dir, 'shutdown_message'), 'utf8').trim()).toMatch(/^300 /);
  });

  it('halts on an instruction with code 100 while idle, long before its idle timeout', async () => {
    const known = (await api.pilots()).length;
    const dir = stateDir();
    const agent = startAgent(server.url, { cores: 2, idleTimeoutSec: 3600, stateDir: dir });
    const id = await newPilot(known);
    await api.instruct(id, { type: 'halt', reason: 'test says so' });
    const exit = await agent.exited;
    expect(exit.code).toBe(0);
    expect((await api.pilots()).find((p) => p.id === id)).toMatchObject({ state: 'halted', shutdownCode: 100 });
    expect(readFileSync(path.join(dir, 'shutdown_message'), 'utf8')).toBe('100 Shutdown as requested: test says so\n');
  });

  it('on drain takes no new work, lets its payload finish, then halts with 100', async () => {
    const known = (await api.pilots()).length;
    const log = path.join(tmp.dir, 'drain.log');
    const running = await api.submit({ command: recorded(log, 2), group: 'drain-test' });
    const agent = startAgent(server.url, { cores: 1, idleTimeoutSec: 3600, stateDir: stateDir() });
    const id = await newPilot(known);
    await waitFor('the payload to start', async () => (await api.job(running)).state === 'running');
    await api.instruct(id, { type: 'drain' });
    // submitted after the drain: a draining pilot must not take it
    const later = await api.submit({ command: recorded(log, 0.1), group: 'drain-test' });
    const exit = await agent.exited;
    expect(exit.code).toBe(0);
    expect(await api.job(running)).toMatchObject({ state: 'done', pilotId: id });
    expect(await api.job(later)).toMatchObject({ state: 'queued', pilotId: null });
    expect((await api.pilots()).find((p) => p.id === id)).toMatchObject({ state: 'halted', shutdownCode: 100 });
  });

  it('a halt instruction stops a running payload and reports it evicted: it goes back to the queue', async () => {
    const known = (await api.pilots()).length;
    const log = path.join(tmp.dir, 'halt.log');
    // the payload queued by the drain test is still there: let this agent take both
    const long = await api.submit({ command: recorded(log, 600), group: 'halt-test' });
    const agent = startAgent(server.url, { cores: 4, idleTimeoutSec: 3600, stateDir: stateDir(), extra: ['--grace', '1'] });
    const id = await newPilot(known);
    await waitFor('the long payload to start', async () => (await api.job(long)).state === 'running');
    await api.instruct(id, { type: 'halt', code: 100, reason: 'maintenance' });
    expect((await agent.exited).code).toBe(0);
    const job = await api.job(long);
    expect(job).toMatchObject({ state: 'queued', pilotId: null, attempts: 1, evictions: 1 });
    expect((await api.history(long)).find((h) => h.state === 'evicted')).toMatchObject({ pilotId: id, reason: expect.stringMatching(/\(halt\): stopped: halting: maintenance$/) });
    // nothing is left assigned to a halted pilot
    const mine = (await api.jobs()).filter((j) => j.pilotId === id);
    for (const j of mine) expect(['done', 'failed', 'cancelled']).toContain(j.state);
  });
});
