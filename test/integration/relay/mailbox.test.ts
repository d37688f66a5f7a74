/**
 * Instructions in mailbox mode: an administrator's drain and halt reach an
 * agent that talks to the server only through files (`--server
 * file:///SPOOL/NAME`, carried by `vmpilot relay --spool SPOOL`), while it
 * runs a payload: the drain stops it taking work, the halt stops the payload,
 * which the server queues again (evicted, not failed), and the agent halts
 * with the administrator's code and reason.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { admin, killAll, startAgent, startServer, tempDir, waitFor } from '../harness.js';
import { logLines } from '../../faults/agent-log.js';
import { logged, readRuns } from '../../faults/audit.js';
import { killRelay, startRelay, type Relay } from './relay-harness.js';

describe('mailbox mode: instructions still arrive', () => {
  const tmp = tempDir('vmpilot-mailbox-');
  let relay: Relay | undefined;
  afterEach(async () => {
    killAll();
    if (relay) await killRelay(relay);
  });
  afterAll(() => tmp.cleanup());

  it('a drain and a halt reach a busy agent through the mailbox; its payload goes back to the queue', async () => {
    // heartbeats a day apart: only the match the relay holds open for the agent can carry an instruction soon
    const server = await startServer(path.join(tmp.dir, 'server.db'), ['--heartbeat-interval', '86400']);
    const spool = path.join(tmp.dir, 'shared');
    mkdirSync(spool);
    relay = await startRelay(['--spool', spool, '--server', server.url, '--cache-dir', path.join(tmp.dir, 'relay-cache'), '--poll-ms', '50']);
    const api = admin(server.url);
    const log = path.join(tmp.dir, 'runs.log');
    writeFileSync(log, '');
    const long = await api.submit({ command: logged(log, 600), name: 'long' });
    const agent = startAgent(`file://${spool}/job-1`, { cores: 2, idleTimeoutSec: 600, stateDir: path.join(tmp.dir, 'agent'), extra: ['--grace', '1'] });
    await waitFor('the payload to run', () => readRuns(log).runs.get(long)?.length === 1, 60_000);
    const [pilot] = await api.pilots();

    await api.instruct(pilot!.id, { type: 'drain', reason: 'maintenance' });
    await waitFor('the agent to take the drain', () => logLines(agent).some((l) => l.msg === 'drain requested'), 30_000);
    await waitFor('the server to see it draining', async () => (await api.pilots())[0]?.state === 'draining', 30_000);
    // draining: a payload submitted now is not taken by it
    const later = await api.submit({ command: logged(log, 1), name: 'later' });
    await api.instruct(pilot!.id, { type: 'halt', reason: 'site downtime' });
    const exit = await agent.exited;
    expect(exit.code, agent.stderr().slice(-3000)).toBe(0);

    expect((await api.pilots())[0]).toMatchObject({ state: 'halted', shutdownCode: 100, shutdownMessage: expect.stringContaining('site downtime') });
    expect(await api.job(long)).toMatchObject({ state: 'queued', attempts: 1 });
    expect((await api.history(long)).map((h) => h.state)).toEqual(['queued', 'assigned', 'running', 'evicted', 'queued']);
    expect(await api.job(later)).toMatchObject({ state: 'queued', attempts: 0 });
    // every message was read and answered: nothing left half-way in the mailbox
    for (const d of ['out', 'work']) expect(readdirSync(path.join(spool, 'job-1', d)).filter((n) => n.endsWith('.req')), d).toEqual([]);
    await server.stop();
  });
});
