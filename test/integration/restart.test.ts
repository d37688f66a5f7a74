import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { admin, killAll, recorded, startAgent, startServer, tempDir } from './harness.js';

describe('a server restart', () => {
  const tmp = tempDir();
  afterAll(() => {
    killAll();
    tmp.cleanup();
  });

  it('loses nothing it acknowledged, even when killed with SIGKILL', async () => {
    const db = path.join(tmp.dir, 'server.db');
    const log = path.join(tmp.dir, 'payloads.log');
    const first = await startServer(db);
    const ids: number[] = [];
    for (let i = 0; i < 20; i++) ids.push(await admin(first.url).submit({ command: recorded(log, 0.1), group: `g${i % 3}` }));
    first.child.kill('SIGKILL');
    await first.exited;

    const second = await startServer(db);
    const api = admin(second.url);
    const jobs = await api.jobs();
    expect(jobs.map((j) => j.id)).toEqual(ids);
    expect(new Set(jobs.map((j) => j.state))).toEqual(new Set(['queued']));

    // and the queue still works: an agent drains it
    const agent = startAgent(second.url, { cores: 2, idleTimeoutSec: 1, stateDir: path.join(tmp.dir, 'agent') });
    expect((await agent.exited).code).toBe(0);
    expect((await api.jobs()).every((j) => j.state === 'done')).toBe(true);
    await second.stop();
  });
});
