/**
 * The agent's spot interruption watch (`--spot-notice aws`), with a real
 * agent and server and a fake IMDSv2 on 127.0.0.1 (test/fakes/imds-fake.ts):
 * while no notice is served the payload runs; when the notice appears
 * mid-run, its time becomes the deadline: the agent drains, stops the
 * payload a grace before it (reported evicted, queued again), and halts
 * with code 100 before the instance would be interrupted.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ImdsFake } from '../fakes/imds-fake.js';
import { admin, killAll, startAgent, startServer, tempDir, waitFor } from './harness.js';

describe('spot interruption notice', () => {
  const tmp = tempDir('vmpilot-spot-notice-');
  afterEach(() => killAll());
  afterAll(() => tmp.cleanup());

  it('a notice appearing mid-run is the deadline: the payload is stopped before it and queued again, the agent halts 100', async () => {
    const server = await startServer(path.join(tmp.dir, 'server.db'), ['--heartbeat-interval', '1']);
    const imds = await new ImdsFake().start();
    try {
      const api = admin(server.url);
      const id = await api.submit({ command: ['sh', '-c', 'echo started; sleep 300'], group: 'g' });
      const stateDir = path.join(tmp.dir, 'agent');
      const agent = startAgent(server.url, { cores: 1, idleTimeoutSec: 3600, stateDir, extra: ['--grace', '2', '--spot-notice', 'aws', '--metadata-url', imds.url] });
      await waitFor('the payload to run', async () => (await api.job(id)).state === 'running', 60_000);
      // the agent has been asking: with a token (IMDSv2), and there was no notice
      await waitFor('the agent to look for a notice', () => imds.noticeGets > 0);
      expect(imds.tokenPuts).toBeGreaterThanOrEqual(1);
      expect(imds.refusedGets).toBe(0);
      expect((await api.job(id)).state).toBe('running');

      const interruptAt = Date.now() + 15_000;
      imds.notice = { action: 'terminate', time: new Date(interruptAt) };
      const exit = await agent.exited;
      expect(exit.code, agent.stderr().slice(-3000)).toBe(0);
      // it went before the instance would have been taken away
      expect(Date.now()).toBeLessThan(interruptAt);
      expect(agent.stderr()).toMatch(/"msg":"spot interruption notice: the instance is interrupted at this time"/);
      expect(agent.stderr()).toMatch(/"deadlineSource":"spot:instance-action"|"source":"spot:instance-action"/);
      expect(readFileSync(path.join(stateDir, 'shutdown_message'), 'utf8')).toBe('100 Shutdown as requested: deadline\n');
      expect(await api.job(id)).toMatchObject({ state: 'queued', attempts: 1, evictions: 1 });
      const history = await api.history(id);
      expect(history.map((h) => h.state)).toEqual(['queued', 'assigned', 'running', 'evicted', 'queued']);
      expect(history[3]!.reason).toMatch(/^evicted by pilot \d+ \(deadline\): stopped: halting: deadline$/);
    } finally {
      await imds.stop();
      await server.stop();
    }
  }, 120_000);

  it('without --spot-notice the metadata service is never asked', async () => {
    const server = await startServer(path.join(tmp.dir, 'server2.db'));
    const imds = await new ImdsFake().start();
    try {
      const api = admin(server.url);
      const id = await api.submit({ command: ['sh', '-c', 'echo ran'], group: 'g' });
      const agent = startAgent(server.url, { cores: 1, idleTimeoutSec: 1, stateDir: path.join(tmp.dir, 'agent2'), extra: ['--metadata-url', imds.url] });
      // it ran its payload and halted idle: well past the first deadline looks
      expect((await agent.exited).code, agent.stderr().slice(-3000)).toBe(0);
      expect((await api.job(id)).state).toBe('done');
      expect(imds.tokenPuts + imds.noticeGets + imds.refusedGets).toBe(0);
    } finally {
      await imds.stop();
      await server.stop();
    }
  }, 120_000);
});
