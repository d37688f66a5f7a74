/**
 * Packing simulator: the real matching code — the server's picker and the
 * offer it reads from a match request (src/server/queue/pick.ts), its
 * reservation designation (reservations.ts), the agent's match request,
 * starvation rule, backfill and admission check (src/agent/matcher: what the
 * picker hands out is started only when `admit` says so) — driven by a
 * simulated clock over a workload trace on 100 nodes of 8 to 64 cores. The
 * claim loop is the simulator's own: at each arrival or end, every node in
 * turn asks until nothing more fits, with no network, no long poll, no
 * transaction and no time between asking and starting. Like the real
 * server, the picker sees the first CANDIDATE_WINDOW queued payloads (per
 * group; here one group). Beside two baselines on the same trace:
 *  - first fit with no reservation (how DIRAC's pool pilot fills a node);
 *  - one single-core pilot per core (the classic one-slot pilot): it can
 *    run only the 1-core payloads, so its utilisation is their share of the
 *    trace's work (`oneCoreShare`).
 * Reports core utilisation, mean and p95 wait per size class, and the longest
 * wait. With a GPU share in the trace (`gpuNodeShare`, `gpuShare`), some
 * nodes have GPUs and some payloads ask for one: the real requirement
 * matching and the picker's rule that keeps a GPU node's cores for queued
 * GPU work (gpu-cores.ts) decide, against the same picker without that rule
 * and first fit; it reports GPU utilisation and the GPU payloads' wait too.
 * Run by bench/packing.mjs (which bundles this file).
 */
import { admit, nextMatchRequest, reservationNow, type MatchInputs } from '../src/agent/matcher/matcher.js';
import { waitingFromReply, type WaitingRequest } from '../src/agent/matcher/starvation.js';
import type { Assignment, Capabilities, CoreRequest } from '../src/protocol/index.js';
import { CANDIDATE_WINDOW, fairSharePicker, offerOf } from '../src/server/queue/pick.js';
import { designate, type Designations } from '../src/server/queue/reservations.js';
import type { Candidate, Offer } from '../src/server/queue/offer.js';
import { rng } from './seeded.js';

export type SizeClass = '1' | '2' | '4' | '8' | 'whole';

interface Job {
  id: number;
  size: SizeClass;
  cores: CoreRequest;
  arrival: number;
  duration: number;
  /** The wall time the user declared: the duration times a factor in [1, 2), rounded up. */
  wallSec: number;
  /** GPUs it asks for (0: none). */
  gpus: number;
  start: number | null;
}

interface Node {
  total: number;
  used: number;
  running: { start: number; ends: number; cores: number; wallSec: number; gpus: string[] }[];
  waiting: WaitingRequest | null;
  capabilities: Capabilities;
  /** Ids of its GPUs no payload holds. */
  freeGpus: string[];
}


const REQUEST: Record<SizeClass, CoreRequest> = {
  '1': { min: 1, max: 1, wholeNode: false },
  '2': { min: 2, max: 2, wholeNode: false },
  '4': { min: 4, max: 4, wholeNode: false },
  '8': { min: 8, max: 8, wholeNode: false },
  whole: { min: 1, max: 1, wholeNode: true },
};

export interface TraceOptions {
  nodes: number;
  hours: number;
  /** Offered load as a fraction of total cores (1.0 keeps the cluster just saturated). */
  load: number;
  seed: number;
  /** The share of nodes with GPUs (default 0), each with `gpusPerNode` of them. */
  gpuNodeShare?: number;
  gpusPerNode?: number;
  /** The share of payloads (of 1 to 8 cores) that ask for one GPU (default 0). */
  gpuShare?: number;
}

/**
 * Node sizes and a trace of arrivals: a mix of 1-, 2-, 4-, 8-core and
 * whole-node payloads. Each declares a wall time as users do: its duration
 * times a factor drawn uniformly from [1, 2) (from a generator of its own, so
 * arrivals, sizes and durations are the same trace as without wall times).
 * GPU nodes and GPU payloads are drawn from generators of their own too.
 */
export function makeTrace(o: TraceOptions): Trace {
  const r = rng(o.seed);
  const wallFactor = rng(o.seed ^ 0x5bd1e995);
  const gpuDraw = rng(o.seed ^ 0x27d4eb2f);
  const nodes = Array.from({ length: o.nodes }, () => [8, 16, 32, 64][Math.floor(r() * 4)]!);
  const gpus = nodes.map(() => (gpuDraw() < (o.gpuNodeShare ?? 0) ? (o.gpusPerNode ?? 4) : 0));
  const totalCores = nodes.reduce((s, n) => s + n, 0);
  const mix: [SizeClass, number][] = [['1', 0.5], ['2', 0.15], ['4', 0.15], ['8', 0.15], ['whole', 0.05]];
  const meanNode = totalCores / o.nodes;
  const meanCores = mix.reduce((s, [c, p]) => s + p * (c === 'whole' ? meanNode : Number(c)), 0);
  // durations: 10 minutes to 3 hours, log-uniform
  const duration = () => Math.round(600 * Math.exp(r() * Math.log(18)));
  const meanDuration = (600 * (18 - 1)) / Math.log(18);
  const ratePerSec = (o.load * totalCores) / (meanCores * meanDuration);
  const jobs: Job[] = [];
  for (let t = 0, id = 1; t < o.hours * 3600; id++) {
    t += -Math.log(1 - r()) / ratePerSec;
    let x = r();
    let size: SizeClass = '1';
    for (const [c, p] of mix) {
      if (x < p) {
        size = c;
        break;
      }
      x -= p;
    }
    const d = duration();
    const gpu = size !== 'whole' && gpuDraw() < (o.gpuShare ?? 0) ? 1 : 0;
    jobs.push({ id, size, cores: REQUEST[size], arrival: Math.round(t), duration: d, wallSec: Math.ceil(d * (1 + wallFactor())), gpus: gpu, start: null });
  }
  return { nodes, gpus, jobs };
}

/** Node sizes (cores), their GPUs, and the payloads. */
export interface Trace {
  nodes: number[];
  /** GPUs of each node (absent: none anywhere). */
  gpus?: number[];
  jobs: Job[];
}

export type Policy = 'vmpilot' | 'first-fit' | 'single-core-pilots';

export interface Outcome {
  policy: Policy;
  utilisation: number;
  wait: Record<SizeClass, { mean: number; p95: number; never: number }>;
  longestWait: number;
  longestPayload: number;
  /** The longest declared wall time. */
  longestWall: number;
  /** Payloads the picker handed out that the agent's admission check gave back (not started then). */
  released: number;
  /** The 1-core payloads' core-seconds within the measured window, over the cores' (what one-core pilots can use at most). */
  oneCoreShare: number;
  /** With GPUs in the trace: the share of GPU time used, the GPU payloads' wait, and the CPU-only payloads' mean wait. */
  gpu?: { utilisation: number; wait: { mean: number; p95: number; never: number }; longestWait: number; cpuOnlyMeanWait: number };
}

/** What the simulated server does beyond picking. */
export interface SimOptions {
  /** The server honours MatchRequest.backfill (vmpilot only; default true). */
  backfill?: boolean;
  /** How many queued payloads the picker sees (default the server's CANDIDATE_WINDOW; Infinity: all). */
  window?: number;
  /** The picker keeps a GPU node's cores for queued GPU work (vmpilot only; default true). */
  keepGpuCores?: boolean;
}

const percentile = (v: number[], p: number) => {
  if (v.length === 0) return 0;
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
};

/** Simulate one policy over the trace with a simulated clock (seconds). */
export function simulate(trace: Trace, policy: Policy, starvationSec: number, opts: SimOptions = {}): Outcome {
  const backfill = opts.backfill ?? true;
  const window = opts.window ?? CANDIDATE_WINDOW;
  const pick = fairSharePicker(new Map(), 1, new Set(), { keepGpuCores: policy === 'vmpilot' && (opts.keepGpuCores ?? true) });
  const jobs = trace.jobs.map((j) => ({ ...j, start: null as number | null }));
  const nodeSizes = policy === 'single-core-pilots' ? trace.nodes.flatMap((n) => Array<number>(n).fill(1)) : trace.nodes;
  const nodeGpus = policy === 'single-core-pilots' ? nodeSizes.map(() => 0) : (trace.gpus ?? trace.nodes.map(() => 0));
  const nodes: Node[] = nodeSizes.map((total, i) => {
    const ids = Array.from({ length: nodeGpus[i]! }, (_, g) => String(g));
    return { total, used: 0, running: [], waiting: null, capabilities: { gpus: ids.map((id) => ({ id, memoryMb: 40960 })) }, freeGpus: ids };
  });
  const totalGpus = nodeGpus.reduce((s, n) => s + n, 0);
  let busyGpuSec = 0;
  const queue = new Map<number, Job>();
  const horizon = Math.max(...jobs.map((j) => j.arrival));
  const warmup = Math.min(horizon / 2, Math.max(...jobs.map((j) => j.duration)));
  let next = 0;
  let busyCoreSec = 0;
  let now = 0;
  const totalCores = trace.nodes.reduce((s, n) => s + n, 0);
  const designations: Designations = new Map();
  const candidate = (j: Job): Candidate => ({
    id: j.id,
    group: 'all',
    priority: 0,
    cores: j.cores,
    memoryMb: null,
    wallSec: j.wallSec,
    submittedAt: j.arrival * 1000,
    requirements: j.gpus > 0 ? { gpus: j.gpus } : null,
  });
  /** The first `window` queued payloads (in id order, as the server reads them) that `keep` keeps. */
  const candidates = (keep: (j: Job) => boolean = () => true) => {
    const list: Candidate[] = [];
    for (const j of queue.values()) {
      if (list.length >= window) break;
      if (keep(j)) list.push(candidate(j));
    }
    return list;
  };

  /** What the agent's match request and admission depend on, for one node now. */
  const inputsFor = (node: Node): MatchInputs => ({
    totalCores: node.total,
    usedCores: node.used,
    freeMemoryMb: 1e9,
    state: 'serving',
    now: now * 1000,
    deadline: null,
    graceSec: 0,
    holding: [],
    waitMaxSec: 20,
    largestWaiting: node.waiting,
    starvationSec,
    running: node.running.map((r) => ({ cores: r.cores, wallSec: r.wallSec, wallFrom: r.start * 1000, admittedAt: r.start * 1000 })),
    freeGpus: node.freeGpus,
  });

  const offerFor = (node: Node): Offer | null => {
    if (policy !== 'vmpilot') {
      if (node.used >= node.total) return null;
      return offerOf({ freeCores: node.total - node.used, totalCores: node.total, freeMemoryMb: 1e9, remainingSec: null, holding: [], waitSec: 0, freeGpus: node.freeGpus }, 0, node.capabilities);
    }
    const request = nextMatchRequest(inputsFor(node));
    if (!request || request.freeCores <= 0) return null;
    return offerOf(request, 0, node.capabilities);
  };
  const started = new Set<number>();
  let released = 0;

  /** Every node asks until nothing more fits, as agents with open match requests do. */
  const matchAll = () => {
    if (queue.size === 0) return;
    // a one-core pilot can only ever take one-core payloads: give it only those
    const keep = policy === 'single-core-pilots' ? (j: Job) => !j.cores.wholeNode && j.cores.min === 1 : undefined;
    let list = candidates(keep);
    for (const node of nodes) {
      for (;;) {
        if (node.used >= node.total || list.length === 0) break;
        if (policy === 'vmpilot') {
          // the server's reply tells the agent the largest request waiting for it
          const lw = designate(designations, list, nodes.indexOf(node) + 1, { totalCores: node.total, memoryMb: 1e9, remainingSec: null, capabilities: node.capabilities }, now * 1000, 3_600_000);
          node.waiting = waitingFromReply(lw && { ...lw, backfill }, now * 1000, node.waiting);
        }
        const offer = offerFor(node);
        if (!offer) break;
        const choice = pick(list, offer);
        if (!choice) break;
        const job = queue.get(choice.id)!;
        if (policy === 'vmpilot') {
          // the agent checks what it was handed before it starts it; what it gives back stays queued
          const a: Assignment = { id: job.id, name: `p${job.id}`, group: 'all', command: ['sim'], env: {}, cores: choice.cores, memoryMb: null, wallSec: job.wallSec };
          const decision = admit(a, node.total, node.used, started, 'serving', null, reservationNow(inputsFor(node)));
          if (decision.kind !== 'start') {
            released++;
            break;
          }
        }
        started.add(job.id);
        queue.delete(choice.id);
        list = candidates(keep);
        job.start = now;
        node.used += choice.cores;
        if (node.used > node.total) throw new Error(`over-committed a ${node.total}-core node: ${node.used} cores in use`);
        if (job.gpus > node.freeGpus.length) throw new Error(`over-committed the GPUs of a node: ${job.gpus} asked, ${node.freeGpus.length} free`);
        // the first free GPUs, as the agent gives them (agent/matcher/requirements.ts)
        const gpus = node.freeGpus.splice(0, job.gpus);
        node.running.push({ start: now, ends: now + job.duration, cores: choice.cores, wallSec: job.wallSec, gpus });
        if (queue.size === 0) return;
      }
    }
  };

  for (;;) {
    const nextArrival = next < jobs.length ? jobs[next]!.arrival : Infinity;
    let nextEnd = Infinity;
    for (const n of nodes) for (const r of n.running) nextEnd = Math.min(nextEnd, r.ends);
    const t = Math.min(nextArrival, nextEnd);
    if (t === Infinity || t > horizon) break;
    // utilisation counts from the end of the warm-up (the longest payload) to the horizon
    const from = Math.max(now, warmup);
    if (t > from) {
      for (const n of nodes) {
        busyCoreSec += n.used * (t - from);
        if (n.freeGpus.length < n.capabilities.gpus!.length) busyGpuSec += (n.capabilities.gpus!.length - n.freeGpus.length) * (t - from);
      }
    }
    now = t;
    for (const n of nodes) {
      const ended = n.running.filter((r) => r.ends <= now);
      if (ended.length > 0) {
        n.running = n.running.filter((r) => r.ends > now);
        n.used -= ended.reduce((s, r) => s + r.cores, 0);
        for (const r of ended) n.freeGpus.push(...r.gpus);
      }
    }
    while (next < jobs.length && jobs[next]!.arrival <= now) {
      const j = jobs[next++]!;
      queue.set(j.id, j);
    }
    matchAll();
  }

  // wait of payloads still queued at the horizon counts up to the horizon
  const sizes: SizeClass[] = ['1', '2', '4', '8', 'whole'];
  const wait = Object.fromEntries(
    sizes.map((s) => {
      const mine = jobs.filter((j) => j.size === s);
      const waits = mine.map((j) => (j.start ?? horizon) - j.arrival);
      return [s, { mean: waits.reduce((a, b) => a + b, 0) / Math.max(1, waits.length), p95: percentile(waits, 95), never: mine.filter((j) => j.start === null).length }];
    }),
  ) as Outcome['wait'];
  const allWaits = jobs.map((j) => (j.start ?? horizon) - j.arrival);
  // core-seconds of 1-core work that the trace offers inside the measured window
  const overlap = (a: number, b: number) => Math.max(0, Math.min(b, horizon) - Math.max(a, warmup));
  const oneCoreSec = trace.jobs.filter((j) => j.size === '1').reduce((sum, j) => sum + overlap(j.arrival, j.arrival + j.duration), 0);
  const waitOf = (j: Job) => (j.start ?? horizon) - j.arrival;
  const gpuJobs = jobs.filter((j) => j.gpus > 0);
  const cpuJobs = jobs.filter((j) => j.gpus === 0);
  const gpuWaits = gpuJobs.map(waitOf);
  const gpu =
    totalGpus > 0
      ? {
          utilisation: busyGpuSec / (totalGpus * (horizon - warmup)),
          wait: { mean: gpuWaits.reduce((a, b) => a + b, 0) / Math.max(1, gpuWaits.length), p95: percentile(gpuWaits, 95), never: gpuJobs.filter((j) => j.start === null).length },
          longestWait: gpuWaits.length ? Math.max(...gpuWaits) : 0,
          cpuOnlyMeanWait: cpuJobs.reduce((s, j) => s + waitOf(j), 0) / Math.max(1, cpuJobs.length),
        }
      : undefined;
  return {
    ...(gpu ? { gpu } : {}),
    released,
    oneCoreShare: oneCoreSec / (totalCores * (horizon - warmup)),
    policy,
    utilisation: busyCoreSec / (totalCores * (horizon - warmup)),
    wait,
    longestWait: Math.max(...allWaits),
    longestPayload: Math.max(...jobs.map((j) => j.duration)),
    longestWall: Math.max(...jobs.map((j) => j.wallSec)),
  };
}
