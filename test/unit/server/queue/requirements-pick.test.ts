import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { meetsRequirements, type Capabilities, type GpuInfo, type Requirements } from '../../../../src/protocol/index.js';
import { coresKeptForGpus } from '../../../../src/server/queue/gpu-cores.js';
import { fairSharePicker, fits, offerOf, pick, queueOrder } from '../../../../src/server/queue/pick.js';
import { designate, type Designations } from '../../../../src/server/queue/reservations.js';
import type { Candidate, Offer } from '../../../../src/server/queue/offer.js';
import { matchRequest } from '../helpers.js';

const gpus = (n: number, memoryMb = 16000): GpuInfo[] => Array.from({ length: n }, (_, i) => ({ id: String(i), model: 'T4', memoryMb }));
const GPU_NODE: Capabilities = { arch: 'x86_64', cpuLevel: 3, platform: 'el9', site: 'CERN', tags: ['cvmfs'], gpus: gpus(2), scratchMb: 100_000 };
const CPU_NODE: Capabilities = { arch: 'x86_64', cpuLevel: 2, platform: 'debian12', site: 'RAL', tags: [], gpus: [], scratchMb: 100_000 };

/** The offer of a pilot with `caps`, as the server builds it from its match request. */
const offerFrom = (caps: Capabilities, o: { freeCores?: number; totalCores?: number; freeGpus?: string[]; freeScratchMb?: number } = {}): Offer =>
  offerOf(
    matchRequest({
      freeCores: o.freeCores ?? 8,
      totalCores: o.totalCores ?? 8,
      freeGpus: o.freeGpus ?? (caps.gpus ?? []).map((g) => g.id),
      freeScratchMb: o.freeScratchMb ?? caps.scratchMb ?? 0,
    }),
    0,
    caps,
  );

let nextId = 1;
const cand = (requirements: Requirements | null, c: Partial<Candidate> = {}): Candidate => {
  const id = c.id ?? nextId++;
  return { id, group: 'default', priority: 0, cores: { min: 1, max: 1, wholeNode: false }, memoryMb: null, wallSec: null, submittedAt: id, requirements, ...c };
};

describe('the picker and requirements', () => {
  it('offers a pilot only what its capabilities meet', () => {
    const gpuJob = cand({ gpus: 1 }, { id: 1 });
    const ralJob = cand({ site: ['RAL'] }, { id: 2 });
    const v3Job = cand({ arch: ['x86_64-v3'] }, { id: 3 });
    expect(pick([gpuJob, ralJob, v3Job], offerFrom(CPU_NODE))).toEqual({ id: 2, cores: 1 });
    expect(pick([ralJob, v3Job], offerFrom(GPU_NODE))).toEqual({ id: 3, cores: 1 });
    expect(pick([gpuJob, ralJob], offerFrom(GPU_NODE))).toEqual({ id: 1, cores: 1 });
  });

  it('hands a pilot that declared nothing (an older agent) only payloads without requirements', () => {
    const plain = offerOf(matchRequest(), 0, null);
    expect(pick([cand({ tag: ['cvmfs'] }, { id: 10 })], plain)).toBeNull();
    expect(pick([cand({ tag: ['cvmfs'] }, { id: 10 }), cand(null, { id: 11 })], plain)).toEqual({ id: 11, cores: 1 });
  });

  it('counts GPUs like cores: only the free ones, and ids it does not know are ignored', () => {
    const two = cand({ gpus: 2 }, { id: 20 });
    expect(pick([two], offerFrom(GPU_NODE, { freeGpus: ['1'] }))).toBeNull();
    expect(pick([two], offerFrom(GPU_NODE, { freeGpus: ['1', 'GPU-not-mine'] }))).toBeNull();
    expect(pick([two], offerFrom(GPU_NODE, { freeGpus: ['0', '1'] }))).toEqual({ id: 20, cores: 1 });
  });

  it('gives GPU memory only from GPUs that have it', () => {
    const mixed: Capabilities = { ...GPU_NODE, gpus: [{ id: '0', memoryMb: 40000 }, { id: '1', memoryMb: 16000 }] };
    const big = cand({ gpus: 1, gpuMemoryMb: 32000 }, { id: 30 });
    expect(pick([big], offerFrom(mixed, { freeGpus: ['1'] }))).toBeNull();
    expect(pick([big], offerFrom(mixed, { freeGpus: ['0'] }))).toEqual({ id: 30, cores: 1 });
  });

  it('counts scratch like memory', () => {
    const scratch = cand({ scratchMb: 60_000 }, { id: 40 });
    expect(pick([scratch], offerFrom(GPU_NODE, { freeScratchMb: 50_000 }))).toBeNull();
    expect(pick([scratch], offerFrom(GPU_NODE, { freeScratchMb: 70_000 }))).toEqual({ id: 40, cores: 1 });
  });

  it('never designates a large payload to a pilot that cannot run it', () => {
    const designations: Designations = new Map();
    const big = cand({ gpus: 1 }, { id: 50, cores: { min: 4, max: 4, wholeNode: false } });
    expect(designate(designations, [big], 1, { totalCores: 8, memoryMb: 8000, remainingSec: null, capabilities: CPU_NODE }, 0, 60_000)).toBeNull();
    expect(designate(designations, [big], 2, { totalCores: 8, memoryMb: 8000, remainingSec: null, capabilities: GPU_NODE }, 0, 60_000)).toMatchObject({ cores: 4 });
  });

  it('has a GPU pilot reserve only for GPU work while GPU work it could run is queued', () => {
    const designations: Designations = new Map();
    const gpuPilot = { totalCores: 8, memoryMb: 8000, remainingSec: null, capabilities: GPU_NODE };
    const wholeCpu = cand(null, { id: 60, cores: { min: 1, max: 1, wholeNode: true } });
    const gpuSmall = cand({ gpus: 1 }, { id: 61, cores: { min: 2, max: 2, wholeNode: false } });
    // GPU work queued: the large CPU-only payload is not reserved for here, the GPU one is
    expect(designate(designations, [wholeCpu, gpuSmall], 2, gpuPilot, 0, 60_000)).toMatchObject({ cores: 2 });
    expect(designations.get(60)).toBeUndefined();
    // no GPU work queued: it may reserve for CPU work as any pilot does
    designations.clear();
    expect(designate(designations, [wholeCpu], 2, gpuPilot, 0, 60_000)).toMatchObject({ cores: 8 });
    // GPU work arrives: the CPU-only designation lapses
    expect(designate(designations, [wholeCpu, gpuSmall], 2, gpuPilot, 1, 60_000)).toMatchObject({ cores: 2 });
    expect(designations.get(60)).toBeUndefined();
  });

  it('hands out only what the pilot meets, never more GPUs than are free (property)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(candidateArb, { maxLength: 12, selector: (c) => c.id }), capsArb, fc.nat(8), fc.integer({ min: 1, max: 16 }), (list, caps, k, total) => {
        const free = (caps.gpus ?? []).slice(0, k).map((g) => g.id);
        const offer = offerFrom(caps, { freeCores: total, totalCores: total, freeGpus: free });
        const choice = fairSharePicker()(list, offer);
        if (!choice) return;
        const c = list.find((x) => x.id === choice.id)!;
        expect(meetsRequirements(c.requirements, caps)).toBe(true);
        expect(c.requirements?.gpus ?? 0).toBeLessThanOrEqual(free.length);
        expect(fits(c, offer)).not.toBeNull();
      }),
    );
  });
});

describe('a GPU node keeps cores for queued GPU work', () => {
  const cpu = (id: number, cores = 1) => cand(null, { id, cores: { min: cores, max: cores, wholeNode: false } });
  const gpuJob = (id: number, cores: number) => cand({ gpus: 1 }, { id, cores: { min: cores, max: cores, wholeNode: false } });

  it('keeps the cores the GPU payload needs, even when a CPU payload comes first', () => {
    // 6 of 8 cores free: the 4 the GPU payload needs are kept, so the 4-core CPU payload first in line waits
    expect(pick([cpu(1, 4), gpuJob(2, 4)], offerFrom(GPU_NODE, { freeCores: 6 }))).toEqual({ id: 2, cores: 4 });
    // only 3 free: the GPU payload cannot start yet, and the CPU payload may not take the cores it gathers
    expect(pick([cpu(3, 2), gpuJob(4, 4)], offerFrom(GPU_NODE, { freeCores: 3 }))).toBeNull();
    // beyond the kept cores CPU work still fits: 1 kept for a 1-core GPU payload, 2 left
    expect(pick([cpu(7, 2), gpuJob(8, 1)], offerFrom(GPU_NODE, { freeCores: 3, freeGpus: ['0'] }))).toEqual({ id: 7, cores: 2 });
    expect(pick([gpuJob(8, 1)], offerFrom(GPU_NODE, { freeCores: 1, freeGpus: ['0'] }))).toEqual({ id: 8, cores: 1 });
  });

  it('keeps nothing when no GPU is free, when no GPU work is queued, or for GPU work this pilot cannot run', () => {
    expect(pick([cpu(10, 4), gpuJob(11, 4)], offerFrom(GPU_NODE, { freeCores: 4, freeGpus: [] }))).toEqual({ id: 10, cores: 4 });
    expect(pick([cpu(12, 8)], offerFrom(GPU_NODE))).toEqual({ id: 12, cores: 8 });
    const elsewhere = cand({ gpus: 1, site: ['RAL'] }, { id: 13, cores: { min: 4, max: 4, wholeNode: false } });
    expect(pick([cpu(14, 8), elsewhere], offerFrom(GPU_NODE))).toEqual({ id: 14, cores: 8 });
  });

  it('keeps the cores of as many GPU payloads as there are free GPUs', () => {
    const list = [gpuJob(20, 3), gpuJob(21, 3), gpuJob(22, 3)];
    expect(coresKeptForGpus(list, offerFrom(GPU_NODE, { freeCores: 8 }), (c, o) => fits(c, o) !== null)).toBe(6);
    expect(coresKeptForGpus(list, offerFrom(GPU_NODE, { freeCores: 4 }), (c, o) => fits(c, o) !== null)).toBe(4);
    expect(coresKeptForGpus(list, offerFrom(GPU_NODE, { freeGpus: ['1'] }), (c, o) => fits(c, o) !== null)).toBe(3);
  });

  it('first fit (keepGpuCores off) fills the GPU node with CPU work', () => {
    const firstFit = fairSharePicker(new Map(), 1, new Set(), { keepGpuCores: false });
    expect(firstFit([cpu(30, 2), gpuJob(31, 4)], offerFrom(GPU_NODE, { freeCores: 3 }))).toEqual({ id: 30, cores: 2 });
  });

  it('never lets CPU-only work into the cores kept for GPU work that fits this pilot (property)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(gpuOrCpuArb, { maxLength: 12, selector: (c) => c.id }), fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 16 }), fc.nat(2), (list, total, freeRaw, k) => {
        const free = Math.min(freeRaw, total);
        const offer = offerFrom(GPU_NODE, { freeCores: free, totalCores: total, freeGpus: ['0', '1'].slice(0, k) });
        const choice = pick(list, offer);
        if (!choice) return;
        const c = list.find((x) => x.id === choice.id)!;
        if ((c.requirements?.gpus ?? 0) > 0) return;
        // the GPU payloads are given the free GPUs in the picker's order (one group: priority, then first in)
        const kept = coresKeptForGpus([...list].sort(queueOrder), offer, (x, o) => fits(x, o) !== null);
        expect(choice.cores).toBeLessThanOrEqual(free - kept);
      }),
      { numRuns: 500 },
    );
  });
});

const candidateArb: fc.Arbitrary<Candidate> = fc
  .record({
    id: fc.integer({ min: 1, max: 1_000_000 }),
    cores: fc.integer({ min: 1, max: 8 }),
    gpus: fc.integer({ min: 0, max: 3 }),
    site: fc.option(fc.subarray(['CERN', 'RAL'], { minLength: 1 }), { nil: undefined }),
    tag: fc.option(fc.subarray(['cvmfs', 'ib'], { minLength: 1 }), { nil: undefined }),
    arch: fc.option(fc.subarray(['x86_64-v3', 'aarch64'], { minLength: 1 }), { nil: undefined }),
  })
  .map(({ id, cores, gpus: g, ...rest }) => {
    const requirements: Requirements = { ...(g > 0 ? { gpus: g } : {}), ...Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) };
    return cand(Object.keys(requirements).length ? requirements : null, { id, cores: { min: cores, max: cores, wholeNode: false } });
  });

/** CPU-only and GPU payloads this GPU node can run: what the rule that keeps cores is about. */
const gpuOrCpuArb: fc.Arbitrary<Candidate> = fc
  .record({ id: fc.integer({ min: 1, max: 1_000_000 }), cores: fc.integer({ min: 1, max: 8 }), gpus: fc.integer({ min: 0, max: 2 }) })
  .map(({ id, cores, gpus: g }) => cand(g > 0 ? { gpus: g } : null, { id, cores: { min: cores, max: cores, wholeNode: false } }));

const capsArb: fc.Arbitrary<Capabilities> = fc.record({
  arch: fc.constantFrom('x86_64', 'aarch64'),
  cpuLevel: fc.integer({ min: 1, max: 4 }),
  site: fc.constantFrom('CERN', 'RAL'),
  tags: fc.subarray(['cvmfs', 'ib']),
  gpus: fc.integer({ min: 0, max: 4 }).map((n) => gpus(n)),
});
