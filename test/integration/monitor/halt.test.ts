/**
 * How the agent halts, and $JOBOUTPUTS as a URL, with real agent and server
 * processes: a halt reaching a draining, busy agent through its open match
 * (heartbeats a day apart cannot carry it); the idle halt not before T after
 * the last payload ended, and then for certain; `heartbeat` and
 * `shutdown_message` PUT to an http URL. How fast each happens is measured
 * by bench/halt.mjs, not asserted here.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server as HttpServer } from 'node:http';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { admin, killAll, recorded, startAgent, startServer, tempDir, waitFor } from '../harness.js';

/** Every payload ended done, failed or cancelled, or waits in the queue. */
const checkRecords = async (api: ReturnType<typeof admin>) => {
  const jobs = await api.jobs();
  for (const j of jobs) expect(['done', 'failed', 'cancelled', 'queued']).toContain(j.state);
  return jobs;
};

/** An http server on 127.0.0.1 that records every PUT (path → bodies in order). */
async function putRecorder(): Promise<{ url: string; puts: Map<string, string[]>; close: () => Promise<void> }> {
  const puts = new Map<string, string[]>();
  const server: HttpServer = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      if (req.method === 'PUT') puts.set(req.url ?? '', [...(puts.get(req.url ?? '') ?? []), body]);
      res.statusCode = req.method === 'PUT' ? 201 : 405;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/outputs/job-1`, puts, close: () => new Promise((r) => server.close(() => r())) };
}

describe('halt timing and $JOBOUTPUTS, with real agent and server processes', () => {
  const tmp = tempDir();
  afterEach(() => killAll());
  afterAll(() => tmp.cleanup());

  it('a halt reaches a draining agent with a running payload through its open match, with heartbeats a day apart', async () => {
    // scheduled heartbeats a day apart: only the open match can bring the halt within the test's time
    const server = await startServer(path.join(tmp.dir, 'a.db'), ['--heartbeat-interval', '86400']);
    const api = admin(server.url);
    const signals = path.join(tmp.dir, 'a.signals');
    // the payload says which signal stopped it
    const id = await api.submit({ command: ['/bin/sh', '-c', `trap 'echo TERM >> ${signals}; exit 143' TERM; sleep 600 & wait`] });
    const agent = startAgent(server.url, { cores: 1, idleTimeoutSec: 3600, stateDir: path.join(tmp.dir, 'agent-a'), extra: ['--grace', '1'] });
    await waitFor('the payload to run', async () => (await api.job(id)).state === 'running');
    const [pilot] = await api.pilots();
    await api.instruct(pilot!.id, { type: 'drain', reason: 'maintenance' });
    await waitFor('the pilot to drain', async () => (await api.pilots())[0]!.state === 'draining');
    await api.instruct(pilot!.id, { type: 'halt', code: 100, reason: 'operator halt' });
    await waitFor('the agent to halt', () => agent.child.exitCode !== null || agent.child.signalCode !== null, 45_000);
    expect((await agent.exited).code).toBe(0);
    expect(agent.stderr()).toMatch(/"type":"halt"/);
    expect((await api.pilots())[0]).toMatchObject({ state: 'halted', shutdownCode: 100 });
    // the payload was sent SIGTERM: stopped by the halt, not by its own doing, so back in the queue, the attempt counted
    expect(readFileSync(signals, 'utf8')).toBe('TERM\n');
    const [job] = await checkRecords(api);
    expect(job).toMatchObject({ id, state: 'queued', attempts: 1, evictions: 1 });
    await server.stop();
  });

  it('idle halt: not before T after the last payload ended, with code 300, after the payload was reported', async () => {
    const db = path.join(tmp.dir, 'b.db');
    const server = await startServer(db);
    const api = admin(server.url);
    const log = path.join(tmp.dir, 'b.log');
    const id = await api.submit({ command: recorded(log, 1) });
    const T = 2;
    const agent = startAgent(server.url, { cores: 1, idleTimeoutSec: T, stateDir: path.join(tmp.dir, 'agent-b') });
    expect((await agent.exited).code).toBe(0);
    const [, , , endNs] = readFileSync(log, 'utf8').trim().split(' ');
    const endedAt = Number(BigInt(endNs!) / 1_000_000n);
    const file = new Database(db, { readonly: true });
    const reports = file.prepare('SELECT seq, type, at, body FROM reports ORDER BY seq').all() as { seq: number; type: string; at: number; body: string }[];
    file.close();
    // in order: the payload started and ended, then the shutdown
    const types = reports.map((r) => r.type);
    expect(types.indexOf('payload-started')).toBeLessThan(types.indexOf('payload-ended'));
    expect(types.indexOf('payload-ended')).toBeLessThan(types.indexOf('shutdown'));
    const shutdown = reports.find((r) => r.type === 'shutdown')!;
    expect(JSON.parse(shutdown.body)).toMatchObject({ code: 300 });
    expect(shutdown.at - endedAt).toBeGreaterThanOrEqual(T * 1000);
    const [job] = await checkRecords(api);
    expect(job).toMatchObject({ id, state: 'done' });
    await server.stop();
  });

  it('$JOBOUTPUTS as an http URL: heartbeat kept up to date and shutdown_message PUT at the halt', { timeout: 30_000 }, async () => {
    const sink = await putRecorder();
    try {
      const server = await startServer(path.join(tmp.dir, 'c.db'), ['--heartbeat-interval', '1']);
      const api = admin(server.url);
      const id = await api.submit({ command: recorded(path.join(tmp.dir, 'c.log'), 2) });
      const agent = startAgent(server.url, { cores: 1, idleTimeoutSec: 1, stateDir: path.join(tmp.dir, 'agent-c'), extra: ['--job-outputs', sink.url] });
      expect((await agent.exited).code).toBe(0);
      const beats = sink.puts.get('/outputs/job-1/heartbeat') ?? [];
      // several beats, each the Vac one-line format, the payload seen in one of them
      expect(beats.length).toBeGreaterThanOrEqual(2);
      for (const b of beats) expect(b).toMatch(/^\d+ \w+ load .* cores \d+\/1 payloads \d+\n$/);
      expect(beats.some((b) => / payloads 1\n$/.test(b))).toBe(true);
      expect(sink.puts.get('/outputs/job-1/shutdown_message')).toEqual([expect.stringMatching(/^300 No more work: idle for 1 s\n$/)]);
      expect((await api.pilots())[0]).toMatchObject({ state: 'halted', shutdownCode: 300 });
      const [job] = await checkRecords(api);
      expect(job).toMatchObject({ id, state: 'done' });
      await server.stop();
    } finally {
      await sink.close();
    }
  });
});
