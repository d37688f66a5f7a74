/**
 * Attack (issue 11, point 2): whoever holds a pilot's credential makes the
 * server drop the pilot's own reports. Today a report with a huge seq makes
 * every later report of the pilot a "duplicate" (and the agent then asks for
 * the same payload about 1,300 times a second). Now a gap or a jump is
 * refused, and a forged report under the pilot's next seq is found out by
 * the agent, which abandons the credential and registers anew.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { PilotView } from '../../src/protocol/index.js';
import { audit, logged } from '../faults/audit.js';
import { admin, killAll, startAgent, startServer, tempDir, waitFor } from '../integration/harness.js';

/** The identity in the agent's state file, as a payload of the same user could read it today. */
function stolen(stateDir: string): { pilotId: number; credential: string } {
  const state = JSON.parse(readFileSync(path.join(stateDir, 'state.json'), 'utf8')) as { pilotId: number; credential: string };
  return { pilotId: state.pilotId, credential: state.credential };
}

/** POST reports as the thief. */
async function forge(url: string, who: { pilotId: number; credential: string }, reports: object[]) {
  const res = await fetch(`${url}/v1/pilots/${who.pilotId}/reports`, {
    method: 'POST',
    headers: { authorization: `Bearer ${who.credential}`, 'content-type': 'application/json' },
    body: JSON.stringify({ reports }),
  });
  return { status: res.status, body: (await res.json()) as { appliedSeq?: number; error?: { code: string; appliedSeq?: number } } };
}

describe('security: a pilot cannot make the server drop its own reports', () => {
  const tmp = tempDir('vmpilot-sec-seq-');
  afterEach(() => killAll());
  afterAll(() => tmp.cleanup());

  it('refuses a report that jumps or skips a seq; the pilot\'s own reports are still applied, and its work is done once', async () => {
    const server = await startServer(path.join(tmp.dir, 'a.db'), ['--heartbeat-interval', '2', '--match-wait-max', '2']);
    const api = admin(server.url);
    const log = path.join(tmp.dir, 'a.log');
    const stateDir = path.join(tmp.dir, 'a');
    const first = await api.submit({ command: logged(log, 2) });
    const agent = startAgent(server.url, { cores: 1, idleTimeoutSec: 3, stateDir });
    await waitFor('the payload to run', async () => (await api.job(first)).state === 'running');
    const thief = stolen(stateDir);

    const jump = await forge(server.url, thief, [{ seq: 9e15, at: 8.64e15, type: 'state', state: 'serving', reason: 'mine now' }]);
    expect(jump.status).toBe(409);
    expect(jump.body.error?.code).toBe('VMP_REPORT_SEQ');
    const applied = jump.body.error?.appliedSeq ?? -1;
    expect(applied).toBeGreaterThan(0);
    const gap = await forge(server.url, thief, [{ seq: applied + 2, at: 1, type: 'shutdown', code: 100, message: 'gone' }]);
    expect(gap.status).toBe(409);
    expect(gap.body.error?.code).toBe('VMP_REPORT_SEQ');

    // the pilot's own reports go on being applied: its payload ends done, and the next one too
    await waitFor('the payload to be done', async () => (await api.job(first)).state === 'done');
    const second = await api.submit({ command: logged(log, 0) });
    await waitFor('the second payload to be done', async () => (await api.job(second)).state === 'done');
    expect((await agent.exited).code, agent.stderr().slice(-3000)).toBe(0);
    const pilot = (await api.pilots()).find((p) => p.id === thief.pilotId) as PilotView;
    expect(pilot).toMatchObject({ state: 'halted', shutdownCode: 300 });
    // the refusals were logged as suspicious, and the agent never saw a redelivery of what it ran
    expect(server.stderr()).toMatch(/"suspicious":true[^\n]*"msg":"reports out of order"/);
    expect(agent.stderr()).not.toMatch(/payload redelivered/);
    const result = audit([first, second], await api.jobs(), log);
    expect(result.violations).toEqual([]);
    expect(result.byState).toEqual({ done: 2 });
    await server.stop();
  });

  it('a forged report under the pilot\'s next seq is found out: the agent drops the credential, registers anew, and the work is done once', async () => {
    const server = await startServer(path.join(tmp.dir, 'b.db'), ['--heartbeat-interval', '2', '--match-wait-max', '2']);
    const api = admin(server.url);
    const log = path.join(tmp.dir, 'b.log');
    const stateDir = path.join(tmp.dir, 'b');
    const first = await api.submit({ command: logged(log, 0) });
    const agent = startAgent(server.url, { cores: 1, idleTimeoutSec: 4, stateDir });
    await waitFor('the first payload to be done', async () => (await api.job(first)).state === 'done');
    const thief = stolen(stateDir);
    // a run of reports that does follow the applied seq: the server cannot tell them from the pilot's
    const probe = await forge(server.url, thief, [{ seq: 1e15, at: 1, type: 'state', state: 'serving', reason: 'x' }]);
    const next = (probe.body.error?.appliedSeq ?? 0) + 1;
    const forged = await forge(server.url, thief, [0, 1, 2].map((i) => ({ seq: next + i, at: 1, type: 'state', state: 'serving', reason: 'forged' })));
    expect(forged.status).toBe(200);

    // the pilot's next report (its start of this payload) meets a seq it never sent
    const second = await api.submit({ command: logged(log, 1) });
    await waitFor('the second payload to be done', async () => (await api.job(second)).state === 'done', 45_000);
    expect(agent.stderr()).toMatch(/another sender holds this pilot's credential: registering anew/);
    const pilots = await api.pilots();
    expect(pilots).toHaveLength(2);
    const old = pilots.find((p) => p.id === thief.pilotId)!;
    expect(old.state).toBe('halted');
    expect(old.shutdownMessage).toMatch(/abandoned by its agent/);
    // the stolen credential gets no work any more
    const claim = await fetch(`${server.url}/v1/pilots/${thief.pilotId}/match`, {
      method: 'POST',
      headers: { authorization: `Bearer ${thief.credential}`, 'content-type': 'application/json' },
      body: JSON.stringify({ freeCores: 8, totalCores: 8, freeMemoryMb: 1000, remainingSec: null, holding: [], waitSec: 0 }),
    });
    expect(((await claim.json()) as { payload: unknown }).payload).toBeNull();
    expect((await agent.exited).code, agent.stderr().slice(-3000)).toBe(0);
    const result = audit([first, second], await api.jobs(), log);
    expect(result.violations).toEqual([]);
    expect(result.byState).toEqual({ done: 2 });
    expect((await api.job(second)).pilotId).not.toBe(thief.pilotId);
    await server.stop();
  });
});
