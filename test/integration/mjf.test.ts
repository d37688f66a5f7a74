/**
 * Machine/Job Features end to end (issue 22, issue 12 point 3): the real
 * agent against a real server and a site's MJF served over loopback HTTP
 * (Vcycle-like: Apache with ETag/Last-Modified), running real payloads.
 */
import { readFileSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AGENT, FIXTURES, admin, killAll, recorded, runCommand, startAgent, startServer, tempDir, waitFor, type Server } from './harness.js';
import { gridka, SiteServer, vcycle, writeSide } from '../unit/agent/mjf/sites.js';

const isRoot = process.getuid?.() === 0;

describe('Machine/Job Features with a real agent', () => {
  const tmp = tempDir('vmpilot-mjf-');
  let server: Server;
  let api: ReturnType<typeof admin>;
  const sites: SiteServer[] = [];
  let n = 0;

  /** A Vcycle-like site of its own: its features directory tree and the HTTP server in front of it. */
  async function site(shutdownInSec: number) {
    const root = path.join(tmp.dir, `site${++n}`);
    const nowSec = Math.floor(Date.now() / 1000);
    const v = vcycle(nowSec, { processors: 1 });
    await writeSide(path.join(root, 'machinefeatures'), { ...v.machine, shutdowntime: nowSec + shutdownInSec });
    await writeSide(path.join(root, 'jobfeatures'), { ...v.job, shutdowntime_job: nowSec + shutdownInSec });
    const http = await new SiteServer(root, true).start();
    sites.push(http);
    const moveShutdown = (atSec: number) => writeFile(path.join(root, 'machinefeatures', 'shutdowntime'), `${atSec}\n`);
    return { http, moveShutdown, flags: ['--machine-features', `${http.url}/machinefeatures`, '--job-features', `${http.url}/jobfeatures`] };
  }

  const newPilot = async (known: number) =>
    waitFor('the agent to register', async () => {
      const pilots = await api.pilots();
      return pilots.length > known ? pilots.at(-1)! : undefined;
    });

  beforeAll(async () => {
    server = await startServer(path.join(tmp.dir, 'server.db'));
    api = admin(server.url);
  });
  afterEach(() => {
    killAll((child) => child !== server.child);
  });
  afterAll(async () => {
    await server?.stop();
    killAll();
    for (const s of sites) await s.stop();
    tmp.cleanup();
  });

  it('the site moves shutdowntime closer: the payload, re-reading $JOBFEATURES every second, sees the new shutdowntime_job at least grace before its SIGTERM; vmpilot mjf shows the value stale once the site is down', async () => {
    const s = await site(7200);
    const stateDir = path.join(tmp.dir, 'agent-move');
    const log = path.join(tmp.dir, 'watch.log');
    const known = (await api.pilots()).length;
    const agent = startAgent(server.url, { cores: 1, idleTimeoutSec: 3600, stateDir, extra: ['--grace', '4', ...s.flags] });
    const pilot = await newPilot(known);
    const id = await api.submit({ command: [path.join(FIXTURES, 'mjf', 'watch-features.sh'), log], group: 'mjf' });
    await waitFor('the payload to read its features', () => readFileSync(log, 'utf8').includes('SEEN'), 30_000).catch(async (err: unknown) => {
      throw new Error(`${String(err)}\n${JSON.stringify(await api.job(id))}\n${agent.stderr()}`);
    });
    const deadline = Math.floor(Date.now() / 1000) + 25;
    await s.moveShutdown(deadline);
    const exit = await agent.exited;
    expect(exit.code, agent.stderr()).toBe(0);
    expect((await api.pilots()).find((p) => p.id === pilot.id)).toMatchObject({ state: 'halted', shutdownCode: 100 });

    const lines = readFileSync(log, 'utf8').trim().split('\n');
    const seen = lines.filter((l) => l.startsWith('SEEN ')).map((l) => l.split(' '));
    const term = lines.find((l) => l.startsWith('TERM '));
    const grace = Number(seen[0]![4]);
    expect(grace).toBe(4);
    const sigtermAt = deadline - grace;
    const first = seen.find((f) => f[2] === String(sigtermAt));
    expect(first, `the payload never saw shutdowntime_job ${sigtermAt}:\n${lines.join('\n')}`).toBeDefined();
    expect(term, lines.join('\n')).toBeDefined();
    const seenAt = Number(first![1]);
    const termAt = Number(term!.split(' ')[1]);
    // the order of events: the new shutdowntime_job (and $MACHINEFEATURES/shutdowntime) read, grace seconds and more,
    // then SIGTERM, not before the moment shutdowntime_job named, and before the site's deadline
    expect(first![3]).toBe(String(deadline));
    expect(termAt - seenAt).toBeGreaterThanOrEqual(grace);
    expect(termAt).toBeGreaterThanOrEqual(sigtermAt);
    expect(termAt).toBeLessThan(deadline);
    // the provided directories hold key names only
    const provided = readFileSync(path.join(stateDir, 'machinefeatures', 'shutdowntime'), 'utf8');
    expect(provided).toBe(`${deadline}\n`);

    // the site's MJF server fails: `vmpilot mjf` beside the agent's state shows what the agent went by, stale
    s.http.down();
    const mjf = await runCommand([AGENT, 'mjf', '--json', '--state-dir', stateDir, ...s.flags]);
    expect(mjf.code, mjf.stderr).toBe(0);
    const out = JSON.parse(mjf.stdout) as { machine: { values: Record<string, number>; stale: Record<string, { problem: string; readAt: string | null }> } };
    expect(out.machine.values.shutdowntime).toBe(deadline);
    expect(out.machine.stale.shutdowntime).toMatchObject({ problem: expect.stringContaining('HTTP 503'), readAt: expect.any(String) });
  }, 120_000);

  it('deadline moved closer while a match is open: a payload with a wall time that no longer fits is not started and stays queued; one that fits runs', async () => {
    const s = await site(7200);
    const known = (await api.pilots()).length;
    const agent = startAgent(server.url, { cores: 1, idleTimeoutSec: 3600, stateDir: path.join(tmp.dir, 'agent-fit'), extra: ['--grace', '4', ...s.flags] });
    const pilot = await newPilot(known);
    await waitFor('the pilot to serve', async () => (await api.pilots()).find((p) => p.id === pilot.id)?.state === 'running');
    // the site moves shutdowntime to 10 minutes from now; work arrives for the request the server holds
    await s.moveShutdown(Math.floor(Date.now() / 1000) + 600);
    const long = await api.submit({ command: ['sleep', '3600'], wallSec: 3600, group: 'fit' });
    const log = path.join(tmp.dir, 'fit.log');
    const short = await api.submit({ command: recorded(log, 0.1), wallSec: 60, group: 'fit' });
    await waitFor('the payload that fits to run', async () => (await api.job(short)).state === 'done', 30_000).catch(async (err: unknown) => {
      throw new Error(`${String(err)}\n${JSON.stringify(await api.job(long))}`);
    });
    expect(await api.job(long)).toMatchObject({ state: 'queued', pilotId: null, startedAt: null, exitCode: null });
    expect(await api.job(short)).toMatchObject({ state: 'done', pilotId: pilot.id });
    await api.instruct(pilot.id, { type: 'halt', reason: 'test over' });
    expect((await agent.exited).code).toBe(0);
    expect(await api.job(long)).toMatchObject({ state: 'queued' });
    // not for the agents of the tests after this one
    expect((await api.call('POST', `/v1/payloads/${long}/kill`)).status).toBeLessThan(300);
  }, 90_000);

  it('vmpilot probe --json on a GridKa Grid Engine node: the job’s allocated_CPU 8, not log_cores 32, and why', async () => {
    const g = gridka(Math.floor(Date.now() / 1000), { slots: 8, logCores: 32 });
    const machine = await writeSide(path.join(tmp.dir, 'gridka', 'machinefeatures'), g.machine);
    const job = await writeSide(path.join(tmp.dir, 'gridka', `jobfeatures.${g.env.JOB_ID}`), g.job);
    const r = await runCommand([AGENT, 'probe', '--json', '--state-dir', path.join(tmp.dir, 'gridka', 'state')], { ...g.env, MACHINEFEATURES: machine, JOBFEATURES: job });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { cores: { value: number; source: string; origins: Record<string, string>; reason: string } };
    expect(out.cores).toMatchObject({ value: 8, source: 'mjf', origins: { mjf: '$JOBFEATURES/allocated_CPU', batch: 'NSLOTS', 'mjf-machine': '$MACHINEFEATURES/log_cores' } });
    expect(out.cores.reason).toMatch(/job's own allocation.*mjf-machine 32/);
  });

  it('under umask 077 with --payload-user nobody, the payload reads $MACHINEFEATURES and $JOBFEATURES', async () => {
    expect(isRoot, 'this test needs root (to run payloads as nobody)').toBe(true);
    const s = await site(7200);
    // the payload user reaches the state directory (the agent opens the state directory itself to it, not its parents)
    await chmod(tmp.dir, 0o711);
    const stateDir = path.join(tmp.dir, 'agent-umask');
    await mkdir(stateDir, { mode: 0o700 });
    const known = (await api.pilots()).length;
    const old = process.umask(0o077);
    let agent;
    try {
      agent = startAgent(server.url, { cores: 1, idleTimeoutSec: 3600, stateDir, isolation: 'auto', extra: ['--grace', '1', '--payload-user', 'nobody', ...s.flags] });
    } finally {
      process.umask(old);
    }
    const pilot = await newPilot(known);
    const id = await api.submit({
      command: ['sh', '-c', 'set -e; id -un; cat "$MACHINEFEATURES/total_cpu" "$JOBFEATURES/allocated_cpu"; ls -A "$MACHINEFEATURES" "$JOBFEATURES"'],
      group: 'umask',
    });
    await waitFor('the payload to end', async () => ['done', 'failed'].includes((await api.job(id)).state), 30_000).catch(async (err: unknown) => {
      throw new Error(`${String(err)}\n${JSON.stringify(await api.job(id))}\n${agent.stderr()}`);
    });
    const job = await api.job(id);
    expect(job, job.outputTail ?? '').toMatchObject({ state: 'done', exitCode: 0 });
    expect(job.outputTail).toContain('nobody');
    expect(job.outputTail).not.toContain('Permission denied');
    expect(job.outputTail).not.toMatch(/\.tmp/);
    await api.instruct(pilot.id, { type: 'halt', reason: 'test over' });
    expect((await agent.exited).code).toBe(0);
  }, 90_000);
});
