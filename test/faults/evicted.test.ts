/**
 * The infrastructure stops a running payload — an administrator's halt, a
 * SIGTERM to the agent (a batch system's preemption or wall time, systemctl
 * stop), the node's deadline moved closer — with real agent and server
 * processes. The payload is not failed: it goes back to the queue with its
 * attempt counted and an `evicted` step in its history, and another pilot
 * runs it to the end. Each ends with the audit.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, SERVER, admin, killAll, runCommand, startAgent, startServer, tempDir, waitFor, type Server } from '../integration/harness.js';
import { auditServer, logged, readRuns } from './audit.js';

describe('fault: the infrastructure stops a running payload', () => {
  const tmp = tempDir('vmpilot-fault-evicted-');
  afterEach(() => killAll());
  afterAll(() => tmp.cleanup());

  /** A server (1 s heartbeats) in its own directory, its admin API and its admin CLI. */
  async function serverIn(name: string): Promise<{ server: Server; api: ReturnType<typeof admin>; dir: string; log: string; cli: (command: string, ...args: string[]) => ReturnType<typeof runCommand> }> {
    const dir = path.join(tmp.dir, name);
    mkdirSync(dir);
    const server = await startServer(path.join(dir, 'server.db'), ['--heartbeat-interval', '1']);
    // the options after the command name, before any payload command of `submit`
    const cli = (command: string, ...args: string[]) => runCommand([SERVER, command, '--server', server.url, '--token', ADMIN_TOKEN, ...args]);
    return { server, api: admin(server.url), dir, log: path.join(dir, 'runs.log'), cli };
  }

  /** Wait until the payloads run and each has logged its start (the stop then ends a real run). */
  /** Its first run lasts until the infrastructure stops it (however slow the machine), the next one a second. */
  const UNTIL_STOPPED = '3600/1' as const;

  async function running(api: ReturnType<typeof admin>, log: string, ids: number[]): Promise<number> {
    await waitFor('the payloads to run', async () => (await Promise.all(ids.map((id) => api.job(id)))).every((j) => j.state === 'running'));
    await waitFor('their runs to start', () => ids.every((id) => readRuns(log).runs.has(id)));
    return (await api.job(ids[0]!)).pilotId!;
  }

  /** The payload is queued again, its attempt counted, with an evicted step naming the pilot and why. */
  async function expectEvicted(api: ReturnType<typeof admin>, id: number, pilotId: number, why: RegExp): Promise<void> {
    expect(await api.job(id)).toMatchObject({ state: 'queued', attempts: 1, pilotId: null, startedAt: null, evictions: 1 });
    const history = await api.history(id);
    expect(history.map((h) => h.state)).toEqual(['queued', 'assigned', 'running', 'evicted', 'queued']);
    expect(history[3]!.pilotId).toBe(pilotId);
    expect(history[3]!.reason).toMatch(why);
    expect(history[3]!.at).toBeGreaterThan(history[2]!.at);
  }

  /** Another pilot runs it to the end; the audit finds it done once, after two runs, nothing lost or twice. */
  async function finish(server: Server, api: ReturnType<typeof admin>, dir: string, log: string, id: number, submitted: number[], byState: Record<string, number>) {
    const b = startAgent(server.url, { cores: 2, idleTimeoutSec: 2, stateDir: path.join(dir, 'agent-b') });
    expect((await b.exited).code, b.stderr().slice(-3000)).toBe(0);
    expect(await api.job(id)).toMatchObject({ state: 'done', attempts: 2, evictions: 1, exitCode: 0 });
    const result = await auditServer(api, submitted, log);
    expect(result.violations).toEqual([]);
    expect(result.byState).toEqual(byState);
    const runs = result.runs.get(id)!;
    expect(runs).toHaveLength(2);
    expect(runs[0]!.endNs).toBeNull();
    expect(runs[1]!.status).toBe(0);
    // the accounting keeps the evicted run apart: core-seconds evicted, not a failure of the group
    const rows = (await api.accounting()).filter((r) => r.group === 'atlas');
    const sum = (k: 'evicted' | 'evictedCoreSec' | 'done') => rows.reduce((s, r) => s + (r[k] ?? 0), 0);
    expect(sum('evicted')).toBeGreaterThanOrEqual(1);
    expect(sum('evictedCoreSec')).toBeGreaterThan(0);
    expect(sum('done')).toBe(1);
  }

  it('halt PILOT --reason: the payload is queued again and done on another pilot, a --no-requeue one fails, the reason is in shutdown_message', async () => {
    const { server, api, dir, log, cli } = await serverIn('halt');
    const id = await api.submit({ command: logged(log, UNTIL_STOPPED), group: 'atlas' });
    const submitted = await cli('submit', '--no-requeue', '--group', 'atlas', '--', ...logged(log, UNTIL_STOPPED));
    expect(submitted.code, submitted.stderr).toBe(0);
    const once = Number(submitted.stdout.trim());
    expect(await api.job(once)).toMatchObject({ requeue: false });
    const stateDir = path.join(dir, 'agent-a');
    const outputs = path.join(dir, 'outputs');
    const a = startAgent(server.url, { cores: 2, idleTimeoutSec: 3600, stateDir, extra: ['--grace', '1', '--job-outputs', outputs] });
    const pilotA = await running(api, log, [id, once]);

    const halt = await cli('halt', String(pilotA), '--reason', 'site downtime');
    expect(halt.code, halt.stderr).toBe(0);
    expect((await a.exited).code, a.stderr().slice(-3000)).toBe(0);
    // the reason the admin gave, as the server shows it, in both shutdown_message files
    expect((await api.pilots())[0]).toMatchObject({ state: 'halted', shutdownCode: 100, shutdownMessage: 'Shutdown as requested: site downtime' });
    expect(readFileSync(path.join(stateDir, 'shutdown_message'), 'utf8')).toBe('100 Shutdown as requested: site downtime\n');
    expect(readFileSync(path.join(outputs, 'shutdown_message'), 'utf8')).toBe('100 Shutdown as requested: site downtime\n');

    await expectEvicted(api, id, pilotA, /^evicted by pilot \d+ \(halt\): stopped: halting: site downtime$/);
    const failed = await api.job(once);
    expect(failed).toMatchObject({ state: 'failed', attempts: 1, signal: 'SIGTERM' });
    expect(failed.message).toMatch(/^evicted, not requeued \(submitted with requeue: false\): evicted by pilot \d+ \(halt\)/);
    const shown = await cli('job', String(id));
    expect(shown.stdout).toMatch(new RegExp(`\\sevicted\\s+${pilotA}\\s+evicted by pilot ${pilotA} \\(halt\\): stopped: halting: site downtime\\n`));

    await finish(server, api, dir, log, id, [id, once], { done: 1, failed: 1 });
    expect(readRuns(log).runs.get(once)).toHaveLength(1);
    await server.stop();
  }, 180_000);

  it('SIGTERM to the agent (preemption, wall time, systemctl stop): the payload is queued again and done on another pilot', async () => {
    const { server, api, dir, log } = await serverIn('sigterm');
    const id = await api.submit({ command: logged(log, UNTIL_STOPPED), group: 'atlas' });
    const stateDir = path.join(dir, 'agent-a');
    const a = startAgent(server.url, { cores: 1, idleTimeoutSec: 3600, stateDir, extra: ['--grace', '1'] });
    const pilotA = await running(api, log, [id]);

    a.child.kill('SIGTERM');
    expect((await a.exited).code, a.stderr().slice(-3000)).toBe(0);
    expect(readFileSync(path.join(stateDir, 'shutdown_message'), 'utf8')).toBe('100 Shutdown as requested: SIGTERM\n');
    expect((await api.pilots())[0]).toMatchObject({ state: 'halted', shutdownCode: 100, shutdownMessage: 'Shutdown as requested: SIGTERM' });
    await expectEvicted(api, id, pilotA, /^evicted by pilot \d+ \(signal\): stopped: halting: SIGTERM$/);

    await finish(server, api, dir, log, id, [id], { done: 1 });
    await server.stop();
  });

  it('the deadline moved closer (MJF shutdowntime): the pilot halts at it, the payload is queued again and done on another pilot', async () => {
    const { server, api, dir, log } = await serverIn('deadline');
    const mjf = path.join(dir, 'machinefeatures');
    mkdirSync(mjf);
    const shutdownAt = (sec: number) => writeFileSync(path.join(mjf, 'shutdowntime'), `${Math.floor(Date.now() / 1000) + sec}\n`);
    shutdownAt(3600);
    const id = await api.submit({ command: logged(log, UNTIL_STOPPED), group: 'atlas' });
    const stateDir = path.join(dir, 'agent-a');
    const a = startAgent(server.url, { cores: 1, idleTimeoutSec: 3600, stateDir, extra: ['--grace', '1', '--machine-features', mjf] });
    const pilotA = await running(api, log, [id]);

    // the site moves the shutdown closer: the agent reads it at its next heartbeat, drains, and halts at it
    shutdownAt(3);
    expect((await a.exited).code, a.stderr().slice(-3000)).toBe(0);
    expect(a.stderr()).toMatch(/"msg":"deadline moved"/);
    expect(readFileSync(path.join(stateDir, 'shutdown_message'), 'utf8')).toBe('100 Shutdown as requested: deadline\n');
    await expectEvicted(api, id, pilotA, /^evicted by pilot \d+ \(deadline\): stopped: halting: deadline$/);

    await finish(server, api, dir, log, id, [id], { done: 1 });
    await server.stop();
  });
});
