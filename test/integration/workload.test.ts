import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PayloadView } from '../../src/protocol/index.js';
import { admin, killAll, recorded, startAgent, startServer, tempDir, waitFor, type Exit, type Server } from './harness.js';

/** Per pilot, the most cores in use at any instant, from the payloads' own start and end times. */
function peakCores(log: string, jobs: PayloadView[]): Map<number, number> {
  const pilotOf = new Map(jobs.map((j) => [j.id, j.pilotId]));
  const events = new Map<number, { t: bigint; delta: number }[]>();
  for (const line of readFileSync(log, 'utf8').trim().split('\n')) {
    const [id, cores, start, end] = line.split(' ');
    const pilot = pilotOf.get(Number(id));
    if (pilot == null) throw new Error(`payload ${id} has no pilot`);
    const list = events.get(pilot) ?? [];
    list.push({ t: BigInt(start!), delta: Number(cores) }, { t: BigInt(end!), delta: -Number(cores) });
    events.set(pilot, list);
  }
  const peaks = new Map<number, number>();
  for (const [pilot, list] of events) {
    // at equal times, ends come before starts: a core freed may be reused at once
    list.sort((a, b) => (a.t === b.t ? a.delta - b.delta : a.t < b.t ? -1 : 1));
    let used = 0;
    let peak = 0;
    for (const e of list) peak = Math.max(peak, (used += e.delta));
    peaks.set(pilot, peak);
  }
  return peaks;
}

describe('a mixed workload on two 4-core pilots', () => {
  const tmp = tempDir();
  const log = path.join(tmp.dir, 'payloads.log');
  let server: Server;
  let api: ReturnType<typeof admin>;
  const ids: Record<string, number> = {};
  let exits: Exit[];

  beforeAll(async () => {
    server = await startServer(path.join(tmp.dir, 'server.db'));
    api = admin(server.url);
    const one = { min: 1, max: 1, wholeNode: false };
    for (let i = 0; i < 6; i++) ids[`single${i}`] = await api.submit({ command: recorded(log, 0.5), cores: one, group: 'atlas' });
    ids.two = await api.submit({ command: recorded(log, 1), cores: { min: 2, max: 2, wholeNode: false }, group: 'lhcb' });
    ids.three = await api.submit({ command: recorded(log, 1), cores: { min: 3, max: 3, wholeNode: false }, group: 'lhcb' });
    ids.range = await api.submit({ command: recorded(log, 1), cores: { min: 2, max: 8, wholeNode: false }, group: 'lhcb' });
    ids.whole = await api.submit({ command: recorded(log, 1), cores: { min: 1, max: 1, wholeNode: true }, group: 'cms' });
    ids.fails = await api.submit({ command: recorded(log, 0.2, 3), cores: one, group: 'cms' });
    const agents = [1, 2].map((n) => startAgent(server.url, { cores: 4, idleTimeoutSec: 2, stateDir: path.join(tmp.dir, `agent${n}`) }));
    exits = await Promise.all(agents.map((a) => a.exited));
  });

  afterAll(async () => {
    await server?.stop();
    killAll();
    tmp.cleanup();
  });

  it('runs every payload once, to done or failed as its exit code says', async () => {
    const jobs = await api.jobs();
    expect(jobs).toHaveLength(Object.keys(ids).length);
    for (const job of jobs) {
      if (job.id === ids.fails) expect(job).toMatchObject({ state: 'failed', exitCode: 3 });
      else expect(job).toMatchObject({ state: 'done', exitCode: 0 });
    }
    const ran = readFileSync(log, 'utf8').trim().split('\n').map((l) => Number(l.split(' ')[0]));
    expect(ran.sort((a, b) => a - b)).toEqual(jobs.map((j) => j.id).sort((a, b) => a - b));
  });

  it('gives each payload the cores it asked for, and never more cores than a pilot has', async () => {
    const jobs = await api.jobs();
    const byId = new Map(jobs.map((j) => [j.id, j]));
    expect(byId.get(ids.two!)!.allocatedCores).toBe(2);
    expect(byId.get(ids.three!)!.allocatedCores).toBe(3);
    expect(byId.get(ids.whole!)!.allocatedCores).toBe(4);
    const range = byId.get(ids.range!)!.allocatedCores!;
    expect(range).toBeGreaterThanOrEqual(2);
    expect(range).toBeLessThanOrEqual(4);
    for (const [, peak] of peakCores(log, jobs)) expect(peak).toBeLessThanOrEqual(4);
  });

  it('runs payloads side by side on one pilot', async () => {
    const peaks = peakCores(log, await api.jobs());
    expect(Math.max(...peaks.values())).toBeGreaterThan(1);
  });

  it('halts both pilots for lack of work, with shutdown code 300 and exit status 0', async () => {
    expect(exits.map((e) => e.code)).toEqual([0, 0]);
    const pilots = await api.pilots();
    expect(pilots).toHaveLength(2);
    for (const p of pilots) expect(p).toMatchObject({ state: 'halted', shutdownCode: 300 });
  });
});
