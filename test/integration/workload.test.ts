import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, admin, killAll, recorded, startAgent, startServer, tempDir, type Exit, type Server } from './harness.js';

/** One run as the payload recorded it: its id, cores, start and end (ns), and the agent that ran it. */
interface Run {
  id: number;
  cores: number;
  start: bigint;
  end: bigint;
  /** The agent's state directory (the payload's directory is <state>/payloads/<id>). */
  agent: string;
}

/** Every run in the payloads' own log (test/fixtures/record.sh). */
function runs(log: string): Run[] {
  return readFileSync(log, 'utf8').trim().split('\n').map((line) => {
    const [id, cores, start, end, dir] = line.split(' ');
    return { id: Number(id), cores: Number(cores), start: BigInt(start!), end: BigInt(end!), agent: path.dirname(path.dirname(dir!)) };
  });
}

/**
 * Per agent, the most cores its payloads held at any instant and the most
 * payloads it ran at once, from the payloads' own records alone (what ran
 * where, on how many cores, from when to when), not from the server's.
 */
function peaks(list: Run[]): Map<string, { cores: number; payloads: number }> {
  const events = new Map<string, { t: bigint; cores: number; payloads: number }[]>();
  for (const r of list) {
    const e = events.get(r.agent) ?? [];
    e.push({ t: r.start, cores: r.cores, payloads: 1 }, { t: r.end, cores: -r.cores, payloads: -1 });
    events.set(r.agent, e);
  }
  const out = new Map<string, { cores: number; payloads: number }>();
  for (const [agent, e] of events) {
    // at equal times, ends come before starts: a core freed may be reused at once
    e.sort((a, b) => (a.t === b.t ? a.cores - b.cores : a.t < b.t ? -1 : 1));
    const now = { cores: 0, payloads: 0 };
    const peak = { cores: 0, payloads: 0 };
    for (const x of e) {
      now.cores += x.cores;
      now.payloads += x.payloads;
      peak.cores = Math.max(peak.cores, now.cores);
      peak.payloads = Math.max(peak.payloads, now.payloads);
    }
    out.set(agent, peak);
  }
  return out;
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
    // three single-core payloads that can only end once all three have started: on two pilots,
    // however fast or slow they are scheduled, two of them run side by side on one pilot
    const meet = [path.join(FIXTURES, 'record.sh'), log, `meet:${path.join(tmp.dir, 'meet')}:3`];
    for (let i = 0; i < 3; i++) ids[`meet${i}`] = await api.submit({ command: meet, cores: one, group: 'alice' });
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
    expect(runs(log).map((r) => r.id).sort((a, b) => a - b)).toEqual(jobs.map((j) => j.id).sort((a, b) => a - b));
  });

  it('gives each payload the cores it asked for, and never more cores than a pilot has, by the payloads\' own records', async () => {
    const jobs = await api.jobs();
    const byId = new Map(jobs.map((j) => [j.id, j]));
    expect(byId.get(ids.two!)!.allocatedCores).toBe(2);
    expect(byId.get(ids.three!)!.allocatedCores).toBe(3);
    expect(byId.get(ids.whole!)!.allocatedCores).toBe(4);
    const range = byId.get(ids.range!)!.allocatedCores!;
    expect(range).toBeGreaterThanOrEqual(2);
    expect(range).toBeLessThanOrEqual(4);
    // each payload ran on the cores it was given ($VMPILOT_CORES), on one of the two agents
    const list = runs(log);
    for (const r of list) expect(r.cores, `payload ${r.id}`).toBe(byId.get(r.id)!.allocatedCores);
    const agents = peaks(list);
    expect([...agents.keys()].every((a) => [1, 2].some((n) => a === path.join(tmp.dir, `agent${n}`)))).toBe(true);
    for (const [agent, peak] of agents) expect(peak.cores, `cores held at once on ${path.basename(agent)}`).toBeLessThanOrEqual(4);
  });

  it('runs payloads side by side on one pilot', async () => {
    const most = Math.max(...[...peaks(runs(log)).values()].map((p) => p.payloads));
    expect(most).toBeGreaterThanOrEqual(2);
  });

  it('halts both pilots for lack of work, with shutdown code 300 and exit status 0', async () => {
    expect(exits.map((e) => e.code)).toEqual([0, 0]);
    const pilots = await api.pilots();
    expect(pilots).toHaveLength(2);
    for (const p of pilots) expect(p).toMatchObject({ state: 'halted', shutdownCode: 300 });
  });
});
