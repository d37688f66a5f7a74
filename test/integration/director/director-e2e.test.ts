/**
 * The director end to end with real processes: the built server started with
 * `serve --config` holding `process` endpoints (its tokens in its
 * environment), whose director starts the built agent as local processes that
 * register with their instances' one-time credentials; work submitted over
 * HTTP as a user does. Agents run with `--isolation none` (extraArgs): the
 * payloads here are sleeps, and slot accounts would only slow this 2-core
 * machine down.
 */
import { chmodSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { CoreRequest, DirectorStatusReply, EndpointView, InstanceDetailReply, InstanceView, PayloadView, PilotView, SubmitRequest } from '../../../src/protocol/index.js';
import { ADMIN_TOKEN, SERVER, admin, freePort, killAll, killProcessesWith, processesWith, runCommand, startServer, tempDir, waitFor, type Server } from '../harness.js';

const tmp = tempDir('vmpilot-director-e2e-');
chmodSync(tmp.dir, 0o711);
afterAll(() => tmp.cleanup());
afterEach(() => {
  killAll();
  // agents the director started are not the harness's children: a failed test must not leave them running
  killProcessesWith(tmp.dir);
});

const LONG = 60_000;

/** Write `name.yaml` (a top-level `directorCycleSec: 1` before `body`) and return its path. */
function config(name: string, body: string): string {
  const file = path.join(tmp.dir, `${name}.yaml`);
  writeFileSync(file, `directorCycleSec: 1\n${body}`);
  return file;
}

/** The built server on `db` with `--config file`, its tokens in its environment. */
function serve(db: string, file: string, listen?: string): Promise<Server> {
  return startServer(db, ['--config', file, '--log-level', 'warn'], { tokensInEnv: true, ...(listen ? { listen } : {}) });
}

function clients(server: Server) {
  const api = admin(server.url);
  const get = async <T>(route: string) => {
    const r = await api.call<T>('GET', route);
    if (r.status !== 200) throw new Error(`GET ${route} → ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const batch = async (payloads: SubmitRequest[]) => {
    const r = await api.call<{ ids: number[] }>('POST', '/v1/payloads/batch', { payloads });
    if (r.status !== 201) throw new Error(`batch → ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.ids;
  };
  // the admin CLI as a user runs it: server and token in its environment
  const cli = (...args: string[]) => runCommand([SERVER, ...args], { VMPILOT_SERVER: server.url, VMPILOT_TOKEN: ADMIN_TOKEN });
  return { api, get, batch, cli, instances: () => get<InstanceView[]>('/v1/instances') };
}

const cores = (min: number, max = min, wholeNode = false): CoreRequest => ({ min, max, wholeNode });
const sleep = (sec: number) => ['sleep', String(sec)];
const dirs = (workDir: string) => (existsSync(workDir) ? readdirSync(workDir) : []);
const marker = (key: string) => `vmpilot-instance-${key}`;

/**
 * The instance's wrappers: processes named by its marker that lead their own process group (the
 * driver starts each wrapper detached). A wrapper's child between its fork and its exec still carries
 * the marker, but sits in the wrapper's group: not counted.
 */
function wrappersOf(key: string): number[] {
  return processesWith(marker(key)).filter((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) === pid;
    } catch {
      return false;
    }
  });
}

/** Every payload done, in one attempt: it ran once (one `running` in its history) and was never queued again. */
async function doneOnce(api: ReturnType<typeof admin>, ids: number[]): Promise<PayloadView[]> {
  await waitFor(`${ids.length} payloads to be done`, async () => {
    for (const id of ids) if ((await api.job(id)).state !== 'done') return false;
    return true;
  }, LONG);
  const jobs: PayloadView[] = [];
  for (const id of ids) {
    const job = await api.job(id);
    expect(job.attempts, `payload ${id}`).toBe(1);
    const ran = (await api.history(id)).filter((h) => h.state === 'running');
    expect(ran.length, `payload ${id} runs: ${JSON.stringify(ran)}`).toBe(1);
    jobs.push(job);
  }
  return jobs;
}

/** At the end: every instance deleted, nothing of any left in `workDirs`, no agent of any running. */
async function nothingLeft(list: () => Promise<InstanceView[]>, workDirs: string[]): Promise<InstanceView[]> {
  let last: InstanceView[] = [];
  const all = await waitFor('every instance to be deleted', async () => {
    last = await list();
    return last.length > 0 && last.every((i) => i.state === 'deleted') && last;
  }, LONG).catch((err: Error) => {
    const left = workDirs.flatMap((w) => dirs(w).map((d) => `${d}: ${readdirSync(path.join(w, d)).join(' ')}`));
    throw new Error(`${err.message}; last seen: ${JSON.stringify(last.map((i) => [i.id, i.state, i.reason]))}; left: ${left.join('; ')}`);
  });
  for (const w of workDirs) await waitFor(`${w} to hold no instance directory`, () => dirs(w).length === 0, LONG);
  for (const i of all) {
    await waitFor(`no process of instance ${i.id} (${i.key})`, () => processesWith(marker(i.key)).length === 0 && processesWith(i.key).length === 0, LONG);
  }
  return all;
}

/** Sample while the test runs, every 100 ms, until `stop()`. */
function sampler(sample: () => Promise<void> | void) {
  let running = true;
  const errors: unknown[] = [];
  const done = (async () => {
    while (running) {
      try {
        await sample();
      } catch (err) {
        errors.push(err);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    errors,
    stop: async () => {
      running = false;
      await done;
    },
  };
}

describe('the director end to end (process driver)', () => {
  it('30 payloads of mixed sizes and groups from an empty system: each done once, never more instances than the limit, all deleted, nothing left', async () => {
    const work = path.join(tmp.dir, 'mixed-instances');
    const file = config(
      'mixed',
      `groups: { atlas: { share: 50 }, cms: { share: 30 }, lhcb: { share: 20 } }
endpoints:
  pool:
    driver: process
    process: { workDir: ${work}, extraArgs: [--isolation, none] }
    shapes:
      quad: { cores: 4, memoryMb: 2000 }
    limits: { instances: 3, cores: 40, startsPerCycle: 3 }   # cores high: the instance limit is the one that binds
    timeouts: { idleSec: 2, payloadGraceSec: 2 }
`,
    );
    const server = await serve(path.join(tmp.dir, 'mixed.db'), file);
    const c = clients(server);
    const kinds = [cores(1), cores(2), cores(1, 3), cores(1), cores(2), cores(1, 1, true)];
    const groups = ['atlas', 'cms', 'lhcb'];
    const payloads: SubmitRequest[] = Array.from({ length: 30 }, (_, n) => ({
      command: sleep(0.2 + (n % 4) * 0.2),
      cores: kinds[n % kinds.length]!,
      group: groups[n % groups.length]!,
      name: `mixed-${n}`,
    }));

    let maxLive = 0;
    const seen = new Set<number>();
    const watch = sampler(async () => {
      const is = await c.instances();
      const live = is.filter((i) => i.state !== 'deleted').length;
      maxLive = Math.max(maxLive, live);
      for (const i of is) seen.add(i.id);
      expect(live, `live instances: ${JSON.stringify(is.map((i) => [i.id, i.state]))}`).toBeLessThanOrEqual(3);
    });
    const ids = await c.batch(payloads);
    const jobs = await doneOnce(c.api, ids);
    const all = await nothingLeft(c.instances, [work]);
    await watch.stop();
    expect(watch.errors).toEqual([]);
    // the queue needed more than 3 machines of 4 cores at once: the limit is what held the director back
    expect(maxLive).toBe(3);

    // Bound on instances created: a pilot halts only after idleSec (2 s) with nothing running, and while
    // the queue holds work every pilot with all its cores free takes some (a whole-node payload fits an
    // empty 4-core pilot), so no instance ends while work is queued; once the queue is empty there is no
    // demand and nothing is started. So the director never needed more than the first machines it
    // started, of which at most limits.instances (3) were live: in all at most 3 were ever created.
    expect(all.length).toBeLessThanOrEqual(3);
    expect(all.every((i) => i.endpoint === 'pool' && !i.manual)).toBe(true);
    // every payload ran on a pilot of one of these instances
    const pilots = await c.api.pilots();
    const instanceOf = new Map(pilots.map((p: PilotView) => [p.id, p.instanceId]));
    const ids3 = new Set(all.map((i) => i.id));
    for (const j of jobs) expect(ids3.has(instanceOf.get(j.pilotId!) ?? -1), `payload ${j.id} on pilot ${j.pilotId}`).toBe(true);
    expect(seen.size).toBe(all.length);
    await server.stop();
  }, 120_000);

  it('the server SIGKILLed while its director starts instances, then restarted on the same database: no duplicate, no leak, each payload done once', async () => {
    const work = path.join(tmp.dir, 'crash-instances');
    const file = config(
      'crash',
      `endpoints:
  pool:
    driver: process
    process: { workDir: ${work}, extraArgs: [--isolation, none] }
    shapes:
      duo: { cores: 2, memoryMb: 1000 }
    limits: { instances: 2, startsPerCycle: 2 }
    timeouts: { idleSec: 2, payloadGraceSec: 2, orphanSec: 60 }   # the least allowed; no orphan may exist at all (below)
    backoff: { baseSec: 1 }   # a create the crash cut short fails its instance (a fizzle): no long hold-back
`,
    );
    const db = path.join(tmp.dir, 'crash.db');
    // the same address each time: the agents a killed server leaves running find the restarted one there
    const listen = `127.0.0.1:${await freePort()}`;
    const work4 = (tag: string) => Array.from({ length: 4 }, (_, n) => ({ command: sleep(1), cores: cores(1), group: 'atlas', name: `${tag}-${n}` }));

    // Outside the server (which dies): every directory in workDir, and at every sample at most one agent per key.
    const dirsSeen = new Set<string>();
    const watch = sampler(() => {
      for (const d of dirs(work)) {
        dirsSeen.add(d);
        expect(wrappersOf(d).length, `agents of ${d}`).toBeLessThanOrEqual(1);
      }
    });
    const directorId = async (server: Server) => (await clients(server).get<DirectorStatusReply>('/v1/director')).directorId;

    // round 1: killed once an instance is requested or starting
    let server = await serve(db, file, listen);
    const id1 = await directorId(server);
    expect(id1).toMatch(/^[a-z0-9]{4,12}$/);
    let c = clients(server);
    const ids = await c.batch(work4('first'));
    const caught = await waitFor('an instance requested or starting', async () => (await c.instances()).find((i) => i.state === 'requested' || i.state === 'starting'), LONG);
    server.child.kill('SIGKILL');
    expect(await server.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(['requested', 'starting']).toContain(caught.state);

    // round 2: restarted, then killed right after a submit returns, before its poke's cycle shows anything
    server = await serve(db, file, listen);
    c = clients(server);
    ids.push(...(await c.batch(work4('second'))));
    server.child.kill('SIGKILL');
    await server.exited;

    server = await serve(db, file, listen);
    c = clients(server);
    // the director id is kept in the settings: the same after each restart, so the old resources are still ours
    expect(await directorId(server)).toBe(id1);
    await doneOnce(c.api, ids);
    const all = await nothingLeft(c.instances, [work]);
    await watch.stop();
    expect(watch.errors.map(String)).toEqual([]);

    const prefix = `vmp-${id1}-pool-`;
    expect(all.every((i) => i.key.startsWith(prefix)), JSON.stringify(all.map((i) => i.key))).toBe(true);
    // no resource without a record: every directory ever made is an instance's key (none was an orphan)
    const keys = new Set(all.map((i) => i.key));
    expect([...dirsSeen].filter((d) => !keys.has(d))).toEqual([]);
    // one machine per record: no instance had two pilots register for it
    const pilots = await c.api.pilots();
    for (const i of all) expect(pilots.filter((p) => p.instanceId === i.id).length, `pilots of instance ${i.id}`).toBeLessThanOrEqual(1);
    // never more live than the limit allowed, across the crashes: 8 payloads of 1 core on 2-core machines
    // are 4 machines' worth, and at most 2 at once; each machine halts only after the queue is empty
    // (idleSec 2 > the 1 s payloads), but a crash can cost a machine that never registered: at most 2 per round
    expect(all.length).toBeLessThanOrEqual(6);
    await server.stop();
  }, 120_000);

  it('an endpoint whose driver fails backs off, and the next endpoint takes the work', async () => {
    const brokenWork = path.join(tmp.dir, 'failing-broken');
    const goodWork = path.join(tmp.dir, 'failing-good');
    // broken: listed first and cheaper, so the decision prefers it; its `node` fails at once, so every
    // instance's machine ends before a pilot registers (a fizzle)
    const file = config(
      'failing',
      `endpoints:
  broken:
    driver: process
    process: { workDir: ${brokenWork}, node: /bin/false }
    shapes:
      one: { cores: 1, memoryMb: 500, costPerHour: 0 }
    limits: { instances: 2 }
    timeouts: { idleSec: 2, payloadGraceSec: 2 }
  good:
    driver: process
    process: { workDir: ${goodWork}, extraArgs: [--isolation, none] }
    shapes:
      one: { cores: 1, memoryMb: 500, costPerHour: 1 }
    limits: { instances: 1 }
    timeouts: { idleSec: 2, payloadGraceSec: 2 }
`,
    );
    const server = await serve(path.join(tmp.dir, 'failing.db'), file);
    const c = clients(server);
    // five 1 s payloads on one 1-core machine: demand stays unmet for seconds, so the cycles show why broken does not take it
    const ids = await c.batch(Array.from({ length: 5 }, (_, n) => ({ command: sleep(1), cores: cores(1), group: 'atlas', name: `fail-${n}` })));

    const held = await waitFor('director status to show broken backed off', async () => {
      const r = await c.cli('director', 'status', '--json');
      if (r.code !== 0) throw new Error(r.stderr);
      const s = JSON.parse(r.stdout) as DirectorStatusReply;
      return s.lastCycle?.decision.endpoints.find((e) => e.endpoint === 'broken')?.notMore.find((n) => n.reason === 'backoff');
    }, LONG);
    expect(held.detail).toMatch(/^broken\/one backed off for \d+ s more \(\d+ failures?(?: in a row)?; last: fizzle: its (?:machine|resource \S+) ended before its pilot registered \(agent exited 1\)\)$/);
    expect(held.payloads).toBeGreaterThan(0);
    const endpoints = await c.get<EndpointView[]>('/v1/endpoints');
    const backoff = endpoints.find((e) => e.name === 'broken')!.backoff;
    expect(backoff).toEqual([expect.objectContaining({ shape: 'one', kind: 'fizzle', failures: expect.any(Number) })]);
    expect(backoff[0]!.until).toBeGreaterThan(Date.now());
    expect(endpoints.find((e) => e.name === 'good')!.backoff).toEqual([]);

    const jobs = await doneOnce(c.api, ids);
    const all = await nothingLeft(c.instances, [brokenWork, goodWork]);
    const pilots = await c.api.pilots();
    const endpointOf = new Map(all.map((i) => [i.id, i.endpoint]));
    for (const j of jobs) expect(endpointOf.get(pilots.find((p) => p.id === j.pilotId)!.instanceId ?? -1), `payload ${j.id}`).toBe('good');
    // broken was tried first (cheaper), failed, and its instance was discarded: failed, then deleted
    const broken = all.filter((i) => i.endpoint === 'broken');
    expect(broken.length).toBeGreaterThanOrEqual(1);
    for (const b of broken) {
      const detail = await c.get<InstanceDetailReply>(`/v1/instances/${b.id}`);
      expect(detail.history.map((h) => h.state)).toEqual(expect.arrayContaining(['requested', 'failed', 'deleted']));
      expect(detail.pilotId).toBeNull();
    }
    await server.stop();
  }, 120_000);
});
