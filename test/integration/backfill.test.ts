import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, admin, killAll, recorded, startAgent, startServer, tempDir, waitFor, type Exit, type Server } from './harness.js';

/** Each payload's run from its own record: id → start and end (ns). */
function runs(log: string): Map<number, { start: bigint; end: bigint; cores: number }> {
  const out = new Map<number, { start: bigint; end: bigint; cores: number }>();
  for (const line of readFileSync(log, 'utf8').trim().split('\n')) {
    const [id, cores, start, end] = line.split(' ');
    out.set(Number(id), { start: BigInt(start!), end: BigInt(end!), cores: Number(cores) });
  }
  return out;
}

/**
 * One 4-core pilot reserving its cores at once (`--starvation 0`) for a
 * 4-core payload while a 3-core one runs: the free core is lent to a short
 * payload, never to one with no wall time or a wall time past the moment the
 * reserved payload can start. The 3-core payload runs until the test opens
 * its gate, once the short one is done: nothing depends on how fast the
 * agent and server schedule.
 */
describe('backfill on a pilot holding cores for a reserved payload', () => {
  const tmp = tempDir();
  const log = path.join(tmp.dir, 'payloads.log');
  const gate = path.join(tmp.dir, 'gate');
  let server: Server;
  let api: ReturnType<typeof admin>;
  const ids: Record<'running' | 'reserved' | 'noWall' | 'tooLong' | 'short', number> = { running: 0, reserved: 0, noWall: 0, tooLong: 0, short: 0 };
  let exit: Exit;

  beforeAll(async () => {
    // replies at least every second, so the agent hears of the reserved payload soon after it is queued
    server = await startServer(path.join(tmp.dir, 'server.db'), ['--match-wait-max', '1']);
    api = admin(server.url);
    const cores = (n: number) => ({ min: n, max: n, wholeNode: false });
    ids.running = await api.submit({ command: [path.join(FIXTURES, 'record.sh'), log, `until:${gate}`], cores: cores(3), wallSec: 120 });
    const agent = startAgent(server.url, { cores: 4, idleTimeoutSec: 2, stateDir: path.join(tmp.dir, 'agent'), extra: ['--starvation', '0', '--grace', '1'] });
    await waitFor('the 3-core payload running', async () => (await api.job(ids.running)).state === 'running');
    // a reply designates the 4-core payload to this pilot, which then holds its cores, lending the free one
    ids.reserved = await api.submit({ command: recorded(log, 0.5), cores: cores(4), wallSec: 30 });
    await waitFor('the agent holding cores and lending one', () => /"lending":\{"wallSec":\d+,"spareCores":0\},"msg":"holding cores for a reserved payload"/.test(agent.stderr()));
    ids.noWall = await api.submit({ command: recorded(log, 0.5), cores: cores(1) });
    ids.tooLong = await api.submit({ command: recorded(log, 0.5), cores: cores(1), wallSec: 3600 });
    ids.short = await api.submit({ command: recorded(log, 0.5), cores: cores(1), wallSec: 20 });
    // the short one is lent the free core and ends while the 3-core one still runs; the claim that
    // handed it out passed over the two before it in the queue, which are still waiting
    await waitFor('the short payload to run in the lent core', async () => (await api.job(ids.short)).state === 'done');
    expect((await api.job(ids.running)).state).toBe('running');
    expect([(await api.job(ids.noWall)).state, (await api.job(ids.tooLong)).state]).toEqual(['queued', 'queued']);
    writeFileSync(gate, '');
    exit = await agent.exited;
  }, 90_000);

  afterAll(async () => {
    await server?.stop();
    killAll();
    tmp.cleanup();
  });

  it('runs every payload once, to done', async () => {
    expect(exit.code).toBe(0);
    const jobs = await api.jobs();
    expect(jobs.map((j) => j.state)).toEqual(jobs.map(() => 'done'));
    expect([...runs(log).keys()].sort((a, b) => a - b)).toEqual(Object.values(ids).sort((a, b) => a - b));
  });

  it('lends the idle core to the short payload while the 3-core one runs', () => {
    const r = runs(log);
    expect(r.get(ids.short)!.start).toBeGreaterThan(r.get(ids.running)!.start);
    expect(r.get(ids.short)!.end).toBeLessThan(r.get(ids.running)!.end);
    expect(r.get(ids.short)!.end).toBeLessThanOrEqual(r.get(ids.reserved)!.start);
  });

  it('lends nothing to a payload with no wall time, or one that would run past the start of the reserved one', () => {
    const r = runs(log);
    expect(r.get(ids.noWall)!.start).toBeGreaterThanOrEqual(r.get(ids.reserved)!.start);
    expect(r.get(ids.tooLong)!.start).toBeGreaterThanOrEqual(r.get(ids.reserved)!.start);
    expect(r.get(ids.reserved)!.start).toBeGreaterThanOrEqual(r.get(ids.running)!.end);
  });
});
