/**
 * The director as `serve` runs it, for real: the built server with a
 * `--config` holding `process` endpoints, its director starting the built
 * agent as local processes with their own credentials, and the admin CLI
 * (the built dist/ binary) run as a user runs it.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { DirectorStatusReply, EndpointView, InstanceDetailReply, InstanceView, PilotView, StopInstancesReply } from '../../../src/protocol/index.js';
import { ADMIN_TOKEN, SERVER, admin, killAll, killProcessesWith, processesWith, runCommand, startServer, tempDir, waitFor, type Server } from '../harness.js';

const tmp = tempDir('vmpilot-serve-director-');
// the agents run as root and their payloads as slot accounts, which must pass through to their directories
chmodSync(tmp.dir, 0o711);
afterAll(() => tmp.cleanup());
afterEach(() => {
  killAll();
  // agents the director started are not the harness's children: a failed test must not leave them running
  killProcessesWith(tmp.dir);
});

/** A config file with `quick` (idle 3 s, at most 2 instances) and `steady` (idle 300 s) process endpoints. */
function config(name: string, extra = ''): string {
  const file = path.join(tmp.dir, `${name}.yaml`);
  const work = path.join(tmp.dir, `${name}-instances`);
  writeFileSync(
    file,
    `${extra}endpoints:
  quick:
    driver: process
    process: { workDir: ${work}/quick }
    shapes:
      small: { cores: 1, memoryMb: 500 }
    limits: { instances: 2 }
    timeouts: { idleSec: 3, payloadGraceSec: 2 }
  steady:
    driver: process
    process: { workDir: ${work}/steady }
    shapes:
      small: { cores: 1, memoryMb: 500 }
    limits: { instances: 2 }
    timeouts: { idleSec: 300, payloadGraceSec: 2, drainGraceSec: 120 }
`,
  );
  return file;
}

const LONG = 90_000;

function clients(server: Server) {
  const api = admin(server.url);
  const cli = (...args: string[]) => runCommand([SERVER, ...args, '--server', server.url, '--token', ADMIN_TOKEN]);
  const get = async <T>(route: string) => {
    const r = await api.call<T>('GET', route);
    if (r.status !== 200) throw new Error(`GET ${route} → ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const instance = (id: number) => get<InstanceDetailReply>(`/v1/instances/${id}`);
  return { api, cli, get, instance };
}

/** Nothing of the instance runs any more: neither its wrapper (named by its key) nor an agent in its directory. */
function nothingRuns(i: InstanceView): boolean {
  return processesWith(`vmpilot-instance-${i.key}`).length === 0 && processesWith(i.key).length === 0;
}

describe('the director in serve', () => {
  it('instances start: the instance registers, its pilot runs a payload, halts when idle, and the instance ends deleted with nothing left', async () => {
    const server = await startServer(path.join(tmp.dir, 'start.db'), ['--config', config('start')]);
    const { api, cli, instance } = clients(server);
    const started = await cli('instances', 'start', '--endpoint', 'quick');
    expect(started.code, started.stderr).toBe(0);
    const id = Number(/^instance (\d+): quick\/small requested/.exec(started.stdout)?.[1]);
    expect(id).toBeGreaterThan(0);
    // queued while the instance comes: counted as met by it, so nothing more is started
    const payload = await api.submit({ command: ['sh', '-c', 'echo ran on an instance started by hand'], group: 'atlas' });

    // its pilot registered: seen as registered or, if this host was slow to ask, already past it
    const registered = await waitFor('the instance to register', async () => {
      const i = await instance(id);
      if (i.pilotId !== null) return i;
      // an instance that ended without a pilot will never register: the timeout says why it ended
      if (i.state === 'failed' || i.state === 'deleted') throw new Error(`it ended ${i.state}: ${i.history.map((h) => `${h.state} (${h.reason})`).join(' → ')}`);
      return undefined;
    }, LONG);
    expect(registered).toMatchObject({ endpoint: 'quick', shape: 'small', manual: true, forGroup: null });
    expect(registered.pilotId).not.toBeNull();
    await waitFor('the payload to be done', async () => (await api.job(payload)).state === 'done', LONG);
    const job = await api.job(payload);
    expect(job.pilotId).toBe(registered.pilotId);
    expect(job.outputTail).toContain('ran on an instance started by hand');
    const pilots: PilotView[] = await api.pilots();
    expect(pilots.find((p) => p.id === registered.pilotId)?.instanceId).toBe(id);

    const deleted = await waitFor('the instance to be deleted', async () => {
      const i = await instance(id);
      return i.state === 'deleted' && i;
    }, LONG);
    expect(deleted.history.map((h) => h.state)).toEqual(expect.arrayContaining(['requested', 'registered', 'halted', 'deleted']));
    expect(deleted.pilot).toEqual({ id: registered.pilotId, state: 'halted' });
    expect(nothingRuns(deleted)).toBe(true);
    // one instance only: the queued payload never made the director start a second
    expect((await api.call<InstanceView[]>('GET', '/v1/instances')).body.map((i) => i.id)).toEqual([id]);

    const shown = await cli('instance', String(id));
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/^state\s+deleted$/m);
    expect(shown.stdout).toMatch(/--- history ---\nAT\s+STATE\s+REASON\n/);
    const listed = await cli('instances', '--state', 'deleted', '--endpoint', 'quick');
    expect(listed.stdout).toMatch(new RegExp(`^${id}\\s+quick\\s+small\\s+deleted\\s+1\\s+${registered.pilotId}\\s+by hand\\s`, 'm'));
    await server.stop();
  }, 180_000);

  it('a submit alone makes the director start a machine (the poke, not the cycle), and the payload gets done', async () => {
    // cycles an hour apart: after the first one at start, only the submit's poke can start anything
    const server = await startServer(path.join(tmp.dir, 'poke.db'), ['--config', config('poke', 'directorCycleSec: 3600\n')]);
    const { api, get } = clients(server);
    const first = await waitFor('the first cycle', async () => (await get<DirectorStatusReply>('/v1/director')).lastCycle ?? undefined);
    expect(first.decision.demand.payloads).toBe(0);
    expect(await get<InstanceView[]>('/v1/instances')).toEqual([]);

    const payload = await api.submit({ command: ['sh', '-c', 'echo started for me'], group: 'cms' });
    const made = await waitFor('an instance for the queued payload', async () => (await get<InstanceView[]>('/v1/instances'))[0], LONG);
    expect(made).toMatchObject({ endpoint: 'quick', manual: false, forGroup: 'cms' });
    await waitFor('the payload to be done', async () => (await api.job(payload)).state === 'done', LONG);
    const job = await api.job(payload);
    expect(job.outputTail).toContain('started for me');
    expect((await api.pilots()).find((p) => p.id === job.pilotId)?.instanceId).toBe(made.id);
    const status = await get<DirectorStatusReply>('/v1/director');
    expect(status.lastCycle!.at).toBeGreaterThan(first.at);
    expect(status.lastCycle!.actions.some((a) => a.kind === 'start' && a.instanceId === made.id)).toBe(true);
    await waitFor('its pilot to halt when idle', async () => (await api.pilots()).find((p) => p.id === job.pilotId)?.state === 'halted', LONG);
    await waitFor('its agent to be gone', () => nothingRuns(made) || undefined, LONG);
    await server.stop();
  }, 180_000);

  it('instances stop drains a registered instance, which then ends deleted', async () => {
    const server = await startServer(path.join(tmp.dir, 'stop.db'), ['--config', config('stop')]);
    const { api, cli, instance } = clients(server);
    const started = await cli('instances', 'start', '--endpoint', 'steady', '--json');
    expect(started.code, started.stderr).toBe(0);
    const id = (JSON.parse(started.stdout) as { instances: InstanceView[] }).instances[0]!.id;
    const registered = await waitFor('the instance to register', async () => {
      const i = await instance(id);
      return i.state === 'registered' && i;
    }, LONG);

    const stopped = await cli('instances', 'stop', String(id), '--json');
    expect(stopped.code, stopped.stderr).toBe(0);
    expect((JSON.parse(stopped.stdout) as StopInstancesReply).results).toEqual([expect.objectContaining({ id, outcome: 'draining', state: 'registered' })]);
    const deleted = await waitFor('the instance to be deleted', async () => {
      const i = await instance(id);
      return i.state === 'deleted' && i;
    }, LONG);
    expect(deleted.drainAt).not.toBeNull();
    // its pilot was sent the drain, acknowledged it, and halted
    const sent = await api.call<{ instruction: { type: string; reason?: string }; doneAt: number | null }[]>('GET', `/v1/pilots/${registered.pilotId}/instructions`);
    expect(sent.body).toEqual([expect.objectContaining({ instruction: expect.objectContaining({ type: 'drain', reason: 'stopped by an operator' }), doneAt: expect.any(Number) })]);
    expect(deleted.pilot).toEqual({ id: registered.pilotId, state: 'halted' });
    expect(nothingRuns(deleted)).toBe(true);

    // stopping it again: already ended; an unknown id is named, and the command fails for it
    const again = await cli('instances', 'stop', String(id), '999');
    expect(again.code).toBe(3);
    expect(again.stdout).toBe(`${id}: already-ended: instance ${id} has already ended (deleted: ${deleted.reason})\n999: unknown: no instance 999\n`);
    expect(again.stderr).toContain('no instance 999');
    await server.stop();
  }, 180_000);

  it('endpoint disable: starts are refused with the reason, director status says so, and it stays disabled across a restart', async () => {
    const db = path.join(tmp.dir, 'disable.db');
    const file = config('disable');
    let server = await startServer(db, ['--config', file]);
    let c = clients(server);
    const off = await c.cli('endpoint', 'disable', 'steady');
    expect(off.code, off.stderr).toBe(0);
    expect(off.stdout).toMatch(/^endpoint steady disabled/);

    const refused = await c.cli('instances', 'start', '--endpoint', 'steady');
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('endpoint steady is disabled: enable it first (vmpilot-server endpoint enable steady)');
    const unknown = await c.cli('endpoint', 'disable', 'nowhere');
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain('no endpoint "nowhere"; configured: quick, steady');

    const disabledInStatus = async () => {
      const s = await c.cli('director', 'status');
      return /\nsteady \(disabled\)\n[\s\S]*why not more: {4}disabled/.test(s.stdout) && s.stdout;
    };
    await waitFor('director status to show steady disabled', disabledInStatus, LONG);
    await server.stop();

    server = await startServer(db, ['--config', file]);
    c = clients(server);
    const listed = await c.get<EndpointView[]>('/v1/endpoints');
    expect(listed.map((e) => [e.name, e.enabled, e.disabledByOperator])).toEqual([
      ['quick', true, false],
      ['steady', false, true],
    ]);
    const table = await c.cli('endpoints');
    expect(table.stdout).toMatch(/^steady\s+process\s+no \(endpoint disable\)\s/m);
    await waitFor('director status to show steady still disabled after the restart', disabledInStatus, LONG);
    expect((await c.cli('instances', 'start', '--endpoint', 'steady')).code).toBe(3);
    expect(await c.get<InstanceView[]>('/v1/instances')).toEqual([]);
    await server.stop();
  }, 180_000);

  it('instances start past limits.instances is refused naming the limit; a SIGTERM ends the server while its instances run on', async () => {
    const server = await startServer(path.join(tmp.dir, 'limit.db'), ['--config', config('limit')]);
    const { cli, get, instance } = clients(server);
    const refused = await cli('instances', 'start', '--endpoint', 'quick', '--count', '3');
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('endpoint quick: limits.instances is 2 and 0 are live; 3 more would pass it');
    expect(await get<InstanceView[]>('/v1/instances')).toEqual([]);
    const help = await runCommand([SERVER, 'instances', 'start', '--help']);
    expect(help.stdout).toMatch(/Example:\n {2}vmpilot-server instances start --endpoint/);

    // up to the limit, then one more: refused, counting the live ones
    const started = await cli('instances', 'start', '--endpoint', 'steady', '--count', '2', '--json');
    expect(started.code, started.stderr).toBe(0);
    const made = (JSON.parse(started.stdout) as { instances: InstanceView[] }).instances;
    const more = await cli('instances', 'start', '--endpoint', 'steady');
    expect(more.code).toBe(3);
    expect(more.stderr).toContain('endpoint steady: limits.instances is 2 and 2 are live; 1 more would pass it');
    for (const i of made) await waitFor(`instance ${i.id} to register`, async () => (await instance(i.id)).state === 'registered', LONG);

    // SIGTERM: the director is closed with the rest and the server ends cleanly, without waiting for
    // its machines, which run on for the next start to find
    expect(await server.stop()).toEqual({ code: 0, signal: null });
    expect(server.stderr()).toContain('"msg":"stopped"');
    for (const i of made) expect(processesWith(`vmpilot-instance-${i.key}`), `instance ${i.id} runs on`).not.toEqual([]);
  }, 120_000);
});
