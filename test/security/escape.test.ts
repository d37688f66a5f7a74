/**
 * Attack: a payload leaves a process behind that has left everything the
 * process tree is followed by — its own session (setsid), no environment
 * marker (env -u VMPILOT_TREE), re-parented to init — so that it outlives
 * the payload, unaccounted and unlimited. It must not survive the payload's
 * end, a kill, or the agent's halt; and `vmpilot probe --json` says what
 * holds payloads' processes (the process tree only as the fallback).
 */
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { admin, killAll, runCommand, startServer, tempDir, waitFor } from '../integration/harness.js';
import { audit, logged } from '../faults/audit.js';
import { MODES, pidsWithArg, places, startModeAgent } from './lib.js';

/**
 * A payload that leaves `sleep MARKER` behind — forked from a subshell that
 * ends at once (so it is re-parented before anyone sees its parent), in its
 * own session, without the environment marker — then waits for ./go.
 */
const leaver = (marker: string) => ['sh', '-c', `(setsid env -u VMPILOT_TREE sleep ${marker} >/dev/null 2>&1 < /dev/null &); while [ ! -e go ]; do sleep 0.1; done`];

describe.each(MODES)('attack: a payload leaves a detached, unmarked process behind ($name)', (mode) => {
  const tmp = tempDir('vmpilot-sec-escape-');
  const markers: string[] = [];
  beforeAll(() => mode.prepare?.(), 15 * 60_000);
  afterEach(() => {
    killAll();
    // a failed test leaves none behind: neither the leftovers nor the payloads that made them (they outlive a killed agent)
    for (const m of markers) {
      for (const pid of pidsWithArg(m, true)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
    }
  });
  afterAll(() => tmp.cleanup());

  it("it dies with the payload's end, with a kill, and with the agent's halt", async () => {
    const where = places(tmp.dir, mode);
    const { log, stateDir, runSh } = where;
    const server = await startServer(path.join(tmp.dir, 'server.db'), ['--heartbeat-interval', '1']);
    const api = admin(server.url);
    // unique sleep lengths (86000.<pid><n>) tell the test which process each payload left
    const marker = (n: number) => `86000.${process.pid}${n}`;
    markers.push(marker(1), marker(2), marker(3));
    const ends = await api.submit({ command: leaver(marker(1)) });
    const killed = await api.submit({ command: leaver(marker(2)) });
    const halted = await api.submit({ command: leaver(marker(3)) });
    const neighbour = await api.submit({ command: logged(log, 1, 0, runSh) });
    const agent = startModeAgent(server.url, mode, where, { cores: 4, idleTimeoutSec: 60 });
    for (const n of [1, 2, 3]) await waitFor(`the process payload ${n} leaves behind`, () => pidsWithArg(marker(n)).length === 1, 30_000);
    const left = (n: number) => pidsWithArg(marker(n));

    // 1. the payload ends by itself (exit 0): what it left goes
    writeFileSync(path.join(stateDir, 'payloads', String(ends), 'go'), '');
    await waitFor(`payload ${ends} to end`, async () => (await api.job(ends)).state === 'done');
    await waitFor("the first payload's leftover to be gone", () => left(1).length === 0, 10_000);
    expect(left(2).length + left(3).length, 'the others are still there').toBe(2);

    // 2. an administrator kills a payload: what it left goes too
    expect((await api.call('POST', `/v1/payloads/${killed}/kill`, { reason: 'test' })).status).toBeLessThan(300);
    await waitFor(`payload ${killed} to end`, async () => !['assigned', 'running'].includes((await api.job(killed)).state));
    await waitFor("the killed payload's leftover to be gone", () => left(2).length === 0, 10_000);
    expect(left(3)).toHaveLength(1);

    // 3. the agent halts with a payload running (once the neighbour is done): nothing of it outlives the agent
    await waitFor(`the neighbour ${neighbour} to be done`, async () => (await api.job(neighbour)).state === 'done');
    await api.instruct((await api.pilots())[0]!.id, { type: 'halt', reason: 'test' });
    expect((await agent.exited).code, agent.stderr().slice(-3000)).toBe(0);
    await waitFor("the halted payload's leftover to be gone", () => left(3).length === 0, 10_000);

    const jobs = await api.jobs();
    const result = audit([ends, killed, halted, neighbour], jobs, log);
    expect(result.violations).toEqual([]);
    expect(jobs.find((j) => j.id === ends)?.state).toBe('done');
    expect(jobs.find((j) => j.id === neighbour)?.state).toBe('done');
    await server.stop();
  });

  it('after an agent restart, what a payload it found again leaves behind still dies with it', async () => {
    const where = places(tmp.dir, mode);
    const server = await startServer(path.join(tmp.dir, 'server-restart.db'), ['--heartbeat-interval', '1']);
    const api = admin(server.url);
    const m = `86000.${process.pid}9`;
    markers.push(m);
    const id = await api.submit({ command: leaver(m) });
    const stateDir = path.join(where.stateDir, 'restart');
    const first = startModeAgent(server.url, mode, { ...where, stateDir }, { cores: 1, idleTimeoutSec: 2 });
    await waitFor('the leftover', () => pidsWithArg(m).length === 1, 30_000);
    // the agent dies (SIGKILL); systemd starts it again with the same state directory
    first.child.kill('SIGKILL');
    await first.exited;
    expect(pidsWithArg(m), 'the payload outlives its agent, as payloads do').toHaveLength(1);
    const second = startModeAgent(server.url, mode, { ...where, stateDir }, { cores: 1, idleTimeoutSec: 2 });
    await waitFor('the restarted agent to take the payload back', () => second.stderr().includes('"plan":"adopt"'), 30_000);
    writeFileSync(path.join(stateDir, 'payloads', String(id), 'go'), '');
    await waitFor(`payload ${id} to be done`, async () => (await api.job(id)).state === 'done');
    await waitFor('the leftover to be gone', () => pidsWithArg(m).length === 0, 10_000);
    expect((await second.exited).code, second.stderr().slice(-2000)).toBe(0);
    await server.stop();
  });

  it('a payload told to stop gets its SIGTERM inside its sandbox, and its grace period', async () => {
    const where = places(tmp.dir, mode);
    const server = await startServer(path.join(tmp.dir, 'server-term.db'), ['--heartbeat-interval', '1']);
    const api = admin(server.url);
    const id = await api.submit({ command: ['sh', '-c', 'trap "echo got-term; sleep 1; echo cleaned-up; exit 7" TERM; : > ready; while :; do sleep 0.1; done'] });
    const agent = startModeAgent(server.url, mode, where, { cores: 1, idleTimeoutSec: 2, extra: ['--grace', '20'] });
    await waitFor(`payload ${id} to be ready`, () => existsSync(path.join(where.stateDir, 'payloads', String(id), 'ready')), 30_000);
    expect((await api.call('POST', `/v1/payloads/${id}/kill`, { reason: 'test' })).status).toBeLessThan(300);
    await waitFor(`payload ${id} to end`, async () => !['assigned', 'running'].includes((await api.job(id)).state));
    const job = await api.job(id);
    // its own handler ran to the end: the sandbox did not die under it
    expect(job, JSON.stringify(job)).toMatchObject({ exitCode: 7, signal: null });
    expect(job.outputTail).toMatch(/got-term\n(got-term\n)*cleaned-up(\n|$)/);
    expect((await agent.exited).code, agent.stderr().slice(-2000)).toBe(0);
    await server.stop();
  });

  it('vmpilot probe --json says what holds payload processes here, and names the fallback as such', async () => {
    const { home, agent } = places(tmp.dir, mode);
    const ids = mode.user ? { uid: mode.user.uid, gid: mode.user.gid } : {};
    const probe = async (isolation: string) => {
      const r = await runCommand([agent, 'probe', '--json', '--isolation', isolation], { HOME: home }, ids);
      expect(r.code, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { isolation: { mode: string; containment: string } }).isolation;
    };
    expect(await probe(mode.isolation)).toMatchObject({ mode: mode.expected, containment: mode.containment });
    expect(await probe('none')).toMatchObject({ mode: 'none', containment: 'process-tree' });
  });
});
