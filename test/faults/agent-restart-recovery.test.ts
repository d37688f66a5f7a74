/**
 * The agent killed (SIGKILL, OOM, a crash) at the two moments its restart
 * cannot read an exit status from, then restarted on its state directory
 * against a real server:
 * - after the payload was recorded "starting" (pid 0) and before any wrapper
 *   ran: it never ran, so it goes back to the queue with its attempt given
 *   back, and runs once;
 * - after the wrapper started it, once the wrapper is gone without an exit
 *   status (SIGKILLed alone, as the OOM killer does, its payload left
 *   running): it may have run, so what is left of it is killed and the
 *   attempt counts as evicted: queued again while attempts are left, failed
 *   when it was submitted with `requeue: false`.
 * Each moment is set up exactly: the previous run's state file, and for the
 * second the wrapper it had started, are written by the test as the agent
 * writes them, for a pilot registered and handed the payload over the real
 * protocol.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { AgentState } from '../../src/agent/ports.js';
import { WRAPPER_SCRIPT, wrapperName } from '../../src/agent/payload/wrapped-runner.js';
import type { Assignment, MatchReply, RegisterReply } from '../../src/protocol/index.js';
import { VERSION } from '../../src/protocol/version.js';
import { PILOT_TOKEN, admin, killAll, startAgent, startServer, tempDir, waitFor } from '../integration/harness.js';
import { audit, historiesOf, logged, readRuns } from './audit.js';

/** A pilot's own calls, as the agent makes them. */
async function pilotCall<T>(url: string, route: string, bearer: string, body: unknown): Promise<T> {
  const res = await fetch(url + route, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` }, body: JSON.stringify(body) });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`POST ${route} → ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

/** Register a pilot of one core and have the server hand it its next payload, as a first agent run would. */
async function pilotWithPayload(url: string): Promise<{ reg: RegisterReply; assignment: Assignment }> {
  const reg = await pilotCall<RegisterReply>(url, '/v1/register', PILOT_TOKEN, { hostname: 'node-1', version: VERSION, cores: 1, memoryMb: 1000 });
  const match = { freeCores: 1, totalCores: 1, freeMemoryMb: 1000, remainingSec: null, holding: [], waitSec: 5 };
  const reply = await pilotCall<MatchReply>(url, `/v1/pilots/${reg.pilotId}/match`, reg.credential, match);
  if (!reply.payload) throw new Error('the server handed out no payload');
  return { reg, assignment: reply.payload };
}

/** The state file the previous agent run left: this pilot, one payload recorded in `running`. */
function writeState(stateDir: string, url: string, reg: RegisterReply, a: Assignment, pid: number, seq: number): string {
  const dir = path.join(stateDir, 'payloads', String(a.id));
  mkdirSync(dir, { recursive: true });
  const state: AgentState = {
    server: url,
    pilotId: reg.pilotId,
    credential: reg.credential,
    seq,
    outbox: [],
    running: { [a.id]: { pid, cores: 1, startedAt: Date.now(), dir, assignment: a } },
    leaseSec: reg.leaseSec ?? null,
    acceptsEvicted: reg.acceptsEvicted === true,
    haltedAt: null,
    started: [a.id],
    instructionsDone: [],
  };
  writeFileSync(path.join(stateDir, 'state.json'), `${JSON.stringify(state, null, 1)}\n`, { mode: 0o600 });
  return dir;
}

/** True while `pid` runs (a zombie has ended: its parent, init here, may not have reaped it yet). */
function alive(pid: number): boolean {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('fault: the agent is killed where its restart finds no exit status', () => {
  const tmp = tempDir('vmpilot-fault-recovery-');
  const strays: number[] = [];
  afterEach(() => {
    killAll();
    for (const pid of strays.splice(0)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone, as it should be
      }
    }
  });
  afterAll(() => tmp.cleanup());

  it('a payload recorded starting but never started goes back to the queue with its attempt given back, and runs once', async () => {
    const server = await startServer(path.join(tmp.dir, 'never.db'));
    const api = admin(server.url);
    const log = path.join(tmp.dir, 'never.log');
    const id = await api.submit({ command: logged(log, 0) });
    const { reg, assignment } = await pilotWithPayload(server.url);
    expect(assignment.id).toBe(id);
    expect(await api.job(id)).toMatchObject({ state: 'assigned', attempts: 1 });
    // killed after the "starting" record was saved, before the spawn: no pid anywhere, no wrapper
    const stateDir = path.join(tmp.dir, 'never-agent');
    mkdirSync(stateDir, { recursive: true });
    writeState(stateDir, server.url, reg, assignment, 0, 0);

    const agent = startAgent(server.url, { cores: 1, idleTimeoutSec: 2, stateDir });
    expect((await agent.exited).code, agent.stderr().slice(-3000)).toBe(0);
    const pilots = await api.pilots();
    expect(pilots.map((p) => p.id)).toEqual([reg.pilotId]);
    // given back, not failed: handed out again (to the same pilot here) and run once, on its first counted attempt
    expect(await api.job(id)).toMatchObject({ state: 'done', exitCode: 0, attempts: 1 });
    const history = await api.history(id);
    expect(history.map((h) => h.state)).toEqual(['queued', 'assigned', 'queued', 'assigned', 'running', 'done']);
    expect(history[2]).toMatchObject({ state: 'queued', reason: `released by pilot ${reg.pilotId}: not started: the agent restarted before starting it` });
    const result = audit([id], await api.jobs(), log, await historiesOf(api));
    expect(result.violations).toEqual([]);
    expect(result.runs.get(id)).toHaveLength(1);
    await server.stop();
  });

  /** The previous run started payload `a` through its wrapper and said so; then the wrapper alone was SIGKILLed. */
  async function startedThenWrapperKilled(url: string, reg: RegisterReply, a: Assignment, stateDir: string, log: string): Promise<void> {
    const dir = path.join(stateDir, 'payloads', String(a.id));
    mkdirSync(dir, { recursive: true });
    // the payload the previous run started: the assignment's command, but long, so that it outlives its wrapper
    const payload = [...a.command.slice(0, 2), '300', '0'];
    const wrapper = spawn('sh', ['-c', WRAPPER_SCRIPT, wrapperName(String(a.id)), ...payload], {
      cwd: dir,
      env: { ...process.env, VMPILOT_PAYLOAD_ID: String(a.id), VMPILOT_PAYLOAD_DIR: dir },
      detached: true,
      stdio: 'ignore',
    });
    wrapper.unref();
    const pid = wrapper.pid!;
    strays.push(pid);
    await waitFor('the payload to start', () => readRuns(log).runs.get(a.id)?.length === 1);
    const run = readRuns(log).runs.get(a.id)![0]!;
    strays.push(run.pid);
    await pilotCall(url, `/v1/pilots/${reg.pilotId}/reports`, reg.credential, { reports: [{ seq: 1, at: Date.now(), type: 'payload-started', payloadId: a.id, pid }] });
    writeState(stateDir, url, reg, a, pid, 1);
    // the agent was SIGKILLed meanwhile; then the wrapper alone is killed (the OOM killer picks one process): its payload lives on
    process.kill(pid, 'SIGKILL');
    await new Promise((resolve) => wrapper.once('exit', resolve));
  }

  it('a payload whose wrapper is gone without an exit status is evicted: its leftovers killed, queued again, and run once more', async () => {
    const server = await startServer(path.join(tmp.dir, 'lost.db'));
    const api = admin(server.url);
    const log = path.join(tmp.dir, 'lost.log');
    const id = await api.submit({ command: logged(log, 0) });
    const { reg, assignment } = await pilotWithPayload(server.url);
    const stateDir = path.join(tmp.dir, 'lost-agent');
    await startedThenWrapperKilled(server.url, reg, assignment, stateDir, log);
    expect(await api.job(id)).toMatchObject({ state: 'running', attempts: 1 });

    const agent = startAgent(server.url, { cores: 1, idleTimeoutSec: 2, stateDir });
    expect((await agent.exited).code, agent.stderr().slice(-3000)).toBe(0);
    expect(await api.job(id)).toMatchObject({ state: 'done', exitCode: 0, attempts: 2 });
    const history = await api.history(id);
    expect(history.map((h) => h.state)).toEqual(['queued', 'assigned', 'running', 'evicted', 'queued', 'assigned', 'running', 'done']);
    expect(history[3]!.reason).toBe(`evicted by pilot ${reg.pilotId} (error): lost: the payload ended while the agent was down and left no exit status`);
    // the first run was killed before the second began (run.sh logs an overlap otherwise), and never ended
    const result = audit([id], await api.jobs(), log, await historiesOf(api));
    expect(result.violations).toEqual([]);
    expect(result.runs.get(id)!.map((r) => r.status)).toEqual([null, 0]);
    await server.stop();
  });

  it('a payload submitted with requeue: false whose wrapper is gone without an exit status fails, and does not run again', async () => {
    const server = await startServer(path.join(tmp.dir, 'once.db'));
    const api = admin(server.url);
    const log = path.join(tmp.dir, 'once.log');
    const id = await api.submit({ command: logged(log, 0), requeue: false });
    const { reg, assignment } = await pilotWithPayload(server.url);
    const stateDir = path.join(tmp.dir, 'once-agent');
    await startedThenWrapperKilled(server.url, reg, assignment, stateDir, log);

    const agent = startAgent(server.url, { cores: 1, idleTimeoutSec: 2, stateDir });
    expect((await agent.exited).code, agent.stderr().slice(-3000)).toBe(0);
    const job = await api.job(id);
    expect(job).toMatchObject({ state: 'failed', attempts: 1 });
    expect(job.message).toContain('not requeued (submitted with requeue: false)');
    const result = audit([id], await api.jobs(), log, await historiesOf(api));
    expect(result.violations).toEqual([]);
    // its one run is over: what was left of it was killed
    const run = result.runs.get(id)!;
    expect(run).toHaveLength(1);
    expect(alive(run[0]!.pid)).toBe(false);
    await server.stop();
  });
});
