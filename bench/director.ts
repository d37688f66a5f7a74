/**
 * The director's benchmarks, on its real code (bundled by bench/director.mjs):
 *
 * - `cycleCost`: one whole cycle of the real Director (src/server/director/
 *   loop.ts: reconcile, demand, supply, decide, record) over the in-memory
 *   store and the fake driver, with a large queue, many endpoints and many
 *   live instances, timed with performance.now().
 * - `simulateDay`: a simulated day of bursts on one endpoint. The same world
 *   (machines boot in `bootSec`, their pilots run queued payloads first come
 *   first served and halt after `idleSec` with nothing to run) is driven by
 *   three rules: vmpilot's Director itself; a VMDIRAC-like rule (each cycle
 *   start `min(1, max − active, queued − booting)` machines); and a
 *   Vcycle-like rule (ignores the queue: below the limit, start a tenth of
 *   it each cycle, unless backed off after a machine "fizzled": it ended
 *   within `fizzleSec` of its start). It reports machine core-hours bought
 *   per useful core-hour and the longest wait of each.
 *
 * Nothing here touches a network or a database: what is measured is the
 * director's own work and its decisions.
 */
import { credentialHash, resourcePrefix } from '../src/server/director/credential.js';
import type { QueuedWork } from '../src/server/director/demand.js';
import { FakeCloud, FakeDriver } from '../src/server/director/drivers/fake.js';
import { type EndpointConfig, endpointsFrom } from '../src/server/director/endpoint-config.js';
import { Director, type CycleRecord } from '../src/server/director/loop.js';
import { MemoryDirectorStore, countedQueue } from '../src/server/director/memory-store.js';
import { FakeClock } from '../src/shared/clock.js';
import { silentLogger } from '../src/shared/log.js';
import { queueOrder } from '../src/server/queue/pick.js';
import { rng } from './seeded.js';


function makeDirector(endpoints: readonly EndpointConfig[], store: MemoryDirectorStore, cloud: FakeCloud, clock: FakeClock, everyMs: number): Director {
  let n = 0;
  return new Director({
    store,
    clock,
    log: silentLogger(),
    endpoints,
    drivers: new Map(endpoints.map((e) => [e.name, new FakeDriver(cloud, resourcePrefix('bench', e.name))])),
    directorId: 'bench',
    serverUrl: 'http://127.0.0.1:9',
    demandPolicy: { shares: new Map(), defaultShare: 1, defaultWallSec: 3600 },
    secrets: { key: (prefix) => `${prefix}k${++n}`, credential: () => `vmpi_bench-${++n}` },
    everyMs,
  });
}

/** The `q`th percentile of `xs` (nearest rank; 0 when empty). */
export const percentile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((q / 100) * s.length))] ?? 0;
};

/** One cycle's cost with `queued` payloads, `endpoints` endpoints and about `instances` live instances. */
export async function cycleCost(o: { queued: number; endpoints: number; instances: number; cycles: number }) {
  const perEndpoint = Math.ceil(o.instances / o.endpoints);
  const raw: Record<string, unknown> = {};
  for (let e = 0; e < o.endpoints; e++) {
    raw[`ep${e}`] = {
      driver: 'process',
      process: { workDir: `/tmp/ep${e}` },
      shapes: { small: { cores: 4, memoryMb: 8000, costPerHour: 0.1 + e / 1000 }, large: { cores: 16, memoryMb: 32000, costPerHour: 0.4 + e / 1000 } },
      // the live instances fill most of each endpoint: every cycle still has a few starts to decide
      limits: { instances: perEndpoint + 2, startsPerCycle: 2 },
    };
  }
  const endpoints = endpointsFrom(raw, 'bench.yaml');
  const clock = new FakeClock();
  const store = new MemoryDirectorStore();
  const cloud = new FakeCloud(clock);
  cloud.startRunning = true;
  const director = makeDirector(endpoints, store, cloud, clock, 5000);
  const r = rng(7);
  let id = 1;
  const groups = ['atlas', 'cms', 'lhcb', 'alice', 'belle', 'dune', 'km3net', 'virgo', 'ctao', 'euclid'];
  const work = (n: number): QueuedWork[] =>
    Array.from({ length: n }, () => {
      const cores = r() < 0.8 ? 1 : r() < 0.7 ? 4 : 8;
      return { id: id++, group: groups[Math.floor(r() * groups.length)]!, priority: 0, cores: { min: cores, max: cores, wholeNode: false }, memoryMb: 2000 * cores, wallSec: 3600, submittedAt: clock.now() - Math.floor(r() * 3_600_000) };
    });
  // the live instances, made directly (as earlier cycles would have): recorded, created at the
  // fake cloud and running, each with its pilot registered with the instance's credential
  let k = 0;
  for (const ep of endpoints) {
    for (let i = 0; i < perEndpoint && k < o.instances; i++, k++) {
      const shape = ep.shapes[i % ep.shapes.length]!;
      const key = `${resourcePrefix('bench', ep.name)}live${k}`;
      const credential = `vmpi_live-${k}`;
      const rec = await store.createInstance({ key, endpoint: ep.name, shape: shape.name, cores: shape.cores, memoryMb: shape.memoryMb, forGroup: groups[k % groups.length]!, requirementClass: '', groups: null, credentialHash: credentialHash(credential), costPerHour: shape.costPerHour, manual: false }, clock.now());
      const res = cloud.add(key, { key, shape: shape.name, cores: shape.cores, memoryMb: shape.memoryMb, lifetimeSec: 86_400, bootstrap: { serverUrl: 'http://127.0.0.1:9', credential, idleTimeoutSec: 300, graceSec: 30, lifetimeSec: 86_400 } });
      await store.updateInstance(rec.id, { state: 'starting', reason: 'created', driverId: res.id }, clock.now());
      store.registerPilot(credential, { cores: shape.cores, coresUsed: shape.cores, registeredAt: clock.now() });
    }
  }
  // a cycle takes in what it finds (registered instances), not timed
  await director.cycle();
  await clock.advance(5000);
  // busy pilots, and the big queue the timed cycles read
  for (const p of store.pilotsById.values()) store.setPilot(p.id, { coresUsed: p.cores, memoryUsedMb: p.memoryMb, lastContactAt: clock.now(), payloadsRun: 3 });
  // the queue as the store holds it for queuedWork: counted per group, priority and need, in the
  // queue's order (the SQLite store counts in its GROUP BY query, not timed here; the director
  // store contract keeps both stores' answers the same)
  store.queued = countedQueue(work(o.queued).sort(queueOrder), o.queued);
  const times: number[] = [];
  let last: CycleRecord | null = null;
  for (let c = 0; c < o.cycles; c++) {
    for (const p of store.pilotsById.values()) store.setPilot(p.id, { lastContactAt: clock.now() });
    const t0 = performance.now();
    last = await director.cycle();
    times.push(performance.now() - t0);
    await clock.advance(5000);
  }
  return {
    liveInstances: (await store.liveInstances()).length,
    cycleP50: percentile(times, 50),
    cycleMax: Math.max(...times),
    startsLastCycle: last!.decision.starts.length,
  };
}

/** One payload of the trace. */
interface TracePayload {
  id: number;
  submitAt: number;
  cores: number;
  runSec: number;
}

/** A day (ms from 0) of a quiet background and four bursts, seeded. */
export function dayOfBursts(seed: number): TracePayload[] {
  const r = rng(seed);
  const out: TracePayload[] = [];
  let id = 1;
  const runSec = () => Math.round(600 + r() * r() * 5400); // 10 min to 1.5 h, mostly short
  for (let t = 0; t < 86_400_000; t += 90_000 + Math.floor(r() * 180_000)) out.push({ id: id++, submitAt: t, cores: 1, runSec: runSec() });
  for (const [hour, n] of [[2, 600], [7, 1500], [13, 300], [19, 1000]] as const) {
    for (let i = 0; i < n; i++) out.push({ id: id++, submitAt: hour * 3_600_000 + Math.floor(r() * 600_000), cores: r() < 0.85 ? 1 : 4, runSec: runSec() });
  }
  return out.sort((a, b) => a.submitAt - b.submitAt || a.id - b.id);
}

/** A machine of the simulated world. */
interface Machine {
  key: string;
  cores: number;
  createdAt: number;
  bootAt: number;
  registeredAt: number | null;
  endedAt: number | null;
  running: { payload: TracePayload; endAt: number }[];
  idleSince: number;
  ran: number;
  draining: boolean;
  pilotId: number | null;
  credential: string;
}

/** What a rule does each cycle: start machines (given the world), or, for vmpilot, its Director. */
type Rule = 'vmpilot' | 'vmdirac' | 'vcycle';

/** The world, stepped every `tickSec`, with the rule's cycle every `cycleSec`. */
export async function simulateDay(rule: Rule, o: { seed: number; maxInstances: number; cores: number; bootSec: number; idleSec: number; fizzleSec: number; backoffSec: number; cycleSec: number; tickSec: number }) {
  const trace = dayOfBursts(o.seed);
  const clock = new FakeClock(0);
  const machines = new Map<string, Machine>();
  const queue: TracePayload[] = [];
  const waits: number[] = [];
  let useful = 0;
  let next = 0;
  let backoffUntil = 0;
  let extra = 0;
  const [endpoint] = endpointsFrom(
    {
      cloud: {
        driver: 'process',
        process: { workDir: '/tmp/sim' },
        shapes: { vm: { cores: o.cores, memoryMb: o.cores * 4000, costPerHour: 0.05 * o.cores } },
        limits: { instances: o.maxInstances },
        timeouts: { bootSec: o.bootSec * 4, registrationSec: o.bootSec * 4, idleSec: o.idleSec },
      },
    },
    'sim.yaml',
  );
  const store = new MemoryDirectorStore();
  const cloud = new FakeCloud(clock);
  const director = rule === 'vmpilot' ? makeDirector([endpoint!] as EndpointConfig[], store, cloud, clock, o.cycleSec * 1000) : null;
  const start = (now: number) => {
    const key = `sim-${++extra}`;
    machines.set(key, { key, cores: o.cores, createdAt: now, bootAt: now + o.bootSec * 1000, registeredAt: null, endedAt: null, running: [], idleSince: now, ran: 0, draining: false, pilotId: null, credential: '' });
  };
  const live = () => [...machines.values()].filter((m) => m.endedAt === null);
  const end = clock.now() + 86_400_000;
  for (let now = 0; ; now += o.tickSec * 1000) {
    await clock.advance(now - clock.now());
    while (next < trace.length && trace[next]!.submitAt <= now) queue.push(trace[next++]!);
    // machines: boot, finish payloads, take work first come first served, halt when idle long enough
    for (const m of live()) {
      if (m.registeredAt === null) {
        if (now < m.bootAt) continue;
        m.registeredAt = now;
        m.idleSince = now;
        if (director) m.pilotId = store.registerPilot(m.credential, { cores: m.cores, registeredAt: now })?.id ?? null;
      }
      for (const r of m.running.filter((x) => x.endAt <= now)) useful += (r.payload.cores * r.payload.runSec) / 3600;
      m.running = m.running.filter((x) => x.endAt > now);
      if (m.running.length === 0 && m.idleSince < 0) m.idleSince = now;
      let free = m.cores - m.running.reduce((s, x) => s + x.payload.cores, 0);
      for (let i = 0; !m.draining && free > 0 && i < queue.length; ) {
        const p = queue[i]!;
        if (p.cores > free) {
          i++;
          continue;
        }
        queue.splice(i, 1);
        m.running.push({ payload: p, endAt: now + p.runSec * 1000 });
        waits.push((now - p.submitAt) / 1000);
        free -= p.cores;
        m.ran++;
        m.idleSince = -1;
      }
      if (m.running.length === 0 && m.idleSince >= 0 && now - m.idleSince >= o.idleSec * 1000) m.endedAt = now;
    }
    const done = now >= end && next >= trace.length && queue.length === 0 && live().length === 0;
    if (done || now > end + 6 * 3_600_000) break;
    if (now % (o.cycleSec * 1000) !== 0) continue;
    // the rule's cycle
    const active = live();
    if (rule === 'vmdirac') {
      const booting = active.filter((m) => m.registeredAt === null).length;
      const n = Math.max(0, Math.min(1, o.maxInstances - active.length, queue.length - booting));
      for (let i = 0; i < n; i++) start(now);
    } else if (rule === 'vcycle') {
      for (const m of machines.values()) {
        if (m.endedAt !== null && m.endedAt > now - o.cycleSec * 1000 && m.endedAt - m.createdAt < o.fizzleSec * 1000) backoffUntil = Math.max(backoffUntil, now + o.backoffSec * 1000);
      }
      if (now >= backoffUntil) {
        const n = Math.min(Math.ceil(o.maxInstances / 10), o.maxInstances - active.length);
        for (let i = 0; i < n; i++) start(now);
      }
    } else {
      // vmpilot's own Director over the store and the fake cloud: the world tells them what it sees
      store.queued = queue.map((p) => ({ id: p.id, group: 'g', priority: 0, cores: { min: p.cores, max: p.cores, wholeNode: false }, memoryMb: null, wallSec: null, submittedAt: p.submitAt }));
      for (const m of machines.values()) {
        if (m.pilotId === null) continue;
        const used = m.running.reduce((s, x) => s + x.payload.cores, 0);
        const state = m.endedAt !== null ? 'halted' : 'running';
        store.setPilot(m.pilotId, { state, coresUsed: used, lastContactAt: now, payloadsRun: m.ran, ...(m.endedAt !== null ? { haltedAt: m.endedAt, shutdownCode: 300 } : {}) });
      }
      const drainsBefore = store.drains.length;
      await director!.cycle();
      for (const d of store.drains.slice(drainsBefore)) {
        const m = [...machines.values()].find((x) => x.pilotId === d.pilotId);
        if (m) m.draining = true;
      }
      // machines the cloud now has that the world does not, and those it deleted
      for (const r of cloud.resources.values()) {
        if (!machines.has(r.key)) {
          machines.set(r.key, { key: r.key, cores: r.request.cores, createdAt: now, bootAt: now + o.bootSec * 1000, registeredAt: null, endedAt: null, running: [], idleSince: now, ran: 0, draining: false, pilotId: null, credential: r.request.bootstrap.credential });
        }
      }
      const inCloud = new Set([...cloud.resources.values()].map((r) => r.key));
      for (const m of machines.values()) {
        // deleted by the director: a machine still running anything is a bug the figures would hide
        if (!inCloud.has(m.key) && m.endedAt === null) {
          if (m.running.length > 0) throw new Error(`the director deleted ${m.key} while it ran ${m.running.length} payloads`);
          m.endedAt = now;
        }
      }
    }
  }
  const bought = [...machines.values()].reduce((s, m) => s + (m.cores * ((m.endedAt ?? clock.now()) - m.createdAt)) / 3_600_000, 0);
  return {
    payloads: trace.length,
    ran: waits.length,
    machines: machines.size,
    boughtCoreHours: bought,
    usefulCoreHours: useful,
    boughtPerUseful: bought / useful,
    longestWaitSec: Math.max(...waits),
    p95WaitSec: percentile(waits, 95),
  };
}
