import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { FIXTURES, admin, killAll, recorded, startAgent, startServer, tempDir, waitFor } from '../harness.js';

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

/** Every payload of the server ended done, failed or cancelled, or waits in the queue, and each ran at most once (per the record log). */
const checkRecords = async (api: ReturnType<typeof admin>, log: string | null) => {
  const jobs = await api.jobs();
  for (const j of jobs) expect(['done', 'failed', 'cancelled', 'queued']).toContain(j.state);
  if (log && existsSync(log)) {
    const ids = readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((l) => l.split(' ')[0]);
    expect(new Set(ids).size).toBe(ids.length);
  }
  return jobs;
};

describe('faults, with real agent and server processes', () => {
  const tmp = tempDir();
  afterEach(() => killAll());
  afterAll(() => tmp.cleanup());

  it('agent SIGKILLed mid-payload and restarted: same pilot, payload re-attached and reported once', async () => {
    const server = await startServer(path.join(tmp.dir, 'a.db'));
    const api = admin(server.url);
    const log = path.join(tmp.dir, 'a.log');
    const id = await api.submit({ command: recorded(log, 4) });
    const dir = path.join(tmp.dir, 'agent-a');
    const first = startAgent(server.url, { cores: 1, idleTimeoutSec: 2, stateDir: dir });
    await waitFor('the payload to run', async () => (await api.job(id)).state === 'running');
    first.child.kill('SIGKILL');
    await first.exited;
    const second = startAgent(server.url, { cores: 1, idleTimeoutSec: 2, stateDir: dir });
    expect((await second.exited).code).toBe(0);
    expect(second.stderr()).toMatch(/"plan":"adopt"/);
    const pilots = await api.pilots();
    expect(pilots).toHaveLength(1);
    expect(pilots[0]).toMatchObject({ state: 'halted', shutdownCode: 300 });
    const [job] = await checkRecords(api, log);
    expect(job).toMatchObject({ id, state: 'done', pilotId: pilots[0]!.id, exitCode: 0 });
    expect(readFileSync(log, 'utf8').trim().split('\n')).toHaveLength(1);
    await server.stop();
  });

  it('server stopped for several heartbeats: payload goes on, every report arrives exactly once', async () => {
    const port = await freePort();
    const db = path.join(tmp.dir, 'b.db');
    const extra = ['--listen', `127.0.0.1:${port}`, '--heartbeat-interval', '1'];
    let server = await startServer(db, extra);
    const api = () => admin(server.url);
    const log = path.join(tmp.dir, 'b.log');
    const id = await api().submit({ command: recorded(log, 5) });
    const agent = startAgent(server.url, { cores: 1, idleTimeoutSec: 2, stateDir: path.join(tmp.dir, 'agent-b') });
    await waitFor('the payload to run', async () => (await api().job(id)).state === 'running');
    await server.stop();
    const from = agent.stderr().length;
    await waitFor('the payload to end while the server is away', () => existsSync(log), 20_000);
    // the agent tried to deliver the payload's end and could not, and its heartbeats fail: the report waits
    const since = () => agent.stderr().slice(from);
    await waitFor('the end report to fail to reach the server', () => /"msg":"payload ended"[^]*"msg":"reports not sent"/.test(since()), 20_000);
    await waitFor('two heartbeats to fail', () => since().split('"msg":"heartbeat failed"').length > 2, 20_000);
    server = await startServer(db, extra);
    expect((await agent.exited).code).toBe(0);
    const [job] = await checkRecords(api(), log);
    expect(job).toMatchObject({ state: 'done', exitCode: 0 });
    expect((await api().pilots())[0]).toMatchObject({ state: 'halted', shutdownCode: 300 });
    await server.stop();
  });

  it('SIGTERM to the agent: payload signalled, halt 100, shutdown_message and heartbeat in $JOBOUTPUTS', async () => {
    const server = await startServer(path.join(tmp.dir, 'c.db'), ['--heartbeat-interval', '1']);
    const api = admin(server.url);
    const outputs = path.join(tmp.dir, 'outputs-c');
    const id = await api.submit({ command: ['sleep', '600'] });
    const dir = path.join(tmp.dir, 'agent-c');
    const agent = startAgent(server.url, { cores: 1, idleTimeoutSec: 3600, stateDir: dir, extra: ['--grace', '1', '--job-outputs', outputs] });
    await waitFor('the payload to run', async () => (await api.job(id)).state === 'running').catch((e: Error) => {
      throw new Error(`${e.message}\n${agent.stderr()}`);
    });
    // a beat written before the payload started says "payloads 0": wait for one written since
    const beat = () => (existsSync(path.join(outputs, 'heartbeat')) ? readFileSync(path.join(outputs, 'heartbeat'), 'utf8') : '');
    await waitFor('a heartbeat file showing the payload', () => / payloads 1\n$/.test(beat()), 20_000);
    expect(beat()).toMatch(/^\d+ serving load .* cores 1\/1 payloads 1\n$/);
    agent.child.kill('SIGTERM');
    expect((await agent.exited).code).toBe(0);
    expect(readFileSync(path.join(outputs, 'shutdown_message'), 'utf8')).toBe('100 Shutdown as requested: SIGTERM\n');
    expect(readFileSync(path.join(dir, 'shutdown_message'), 'utf8')).toBe('100 Shutdown as requested: SIGTERM\n');
    expect((await api.pilots())[0]).toMatchObject({ state: 'halted', shutdownCode: 100 });
    // SIGTERMed by the halt, not its own failure: back in the queue for another pilot
    const [job] = await checkRecords(api, null);
    expect(job).toMatchObject({ state: 'queued', attempts: 1, evictions: 1 });
    await server.stop();
  });

  it('orphan timeout: server gone with nothing running halts 700, then the poweroff chain runs (fake commands)', async () => {
    const server = await startServer(path.join(tmp.dir, 'd.db'));
    const api = admin(server.url);
    const haltLog = path.join(tmp.dir, 'halt.log');
    writeFileSync(haltLog, '');
    const agent = startAgent(server.url, {
      cores: 1,
      idleTimeoutSec: 3600,
      stateDir: path.join(tmp.dir, 'agent-d'),
      extra: ['--orphan-timeout', '2', '--halt', 'poweroff'],
      env: { PATH: path.join(FIXTURES, 'fake-halt'), HALT_LOG: haltLog },
    });
    // the harness passes --halt exit first; the later --halt poweroff wins
    await waitFor('the agent to register', async () => (await api.pilots()).length === 1).catch((e: Error) => {
      throw new Error(`${e.message}\n${agent.stderr()}`);
    });
    await server.stop();
    const exit = await agent.exited;
    expect(exit.code).toBe(17);
    expect(readFileSync(haltLog, 'utf8')).toBe('systemctl poweroff\nshutdown -h now\n');
  });
});
