import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  RequirementError,
  describeUnmet,
  formatRequirements,
  meetsRequirements,
  normaliseRequirements,
  parseArch,
  platformMeets,
  unmetRequirements,
  type Capabilities,
  type GpuInfo,
  type Requirements,
} from '../../../src/protocol/index.js';

const gpu = (id: string, memoryMb: number | null = 16000): GpuInfo => ({ id, model: 'Test GPU', memoryMb });

const node = (c: Partial<Capabilities> = {}): Capabilities => ({
  arch: 'x86_64',
  cpuLevel: 3,
  platform: 'el9',
  site: 'CERN',
  tags: ['cvmfs'],
  gpus: [],
  scratchMb: 50_000,
  ...c,
});

function errorOf(f: () => unknown): RequirementError {
  try {
    f();
  } catch (err) {
    if (err instanceof RequirementError) return err;
    throw err;
  }
  throw new Error('no error thrown');
}

describe('normaliseRequirements', () => {
  it('takes lists as arrays or comma-separated strings, counts as numbers or digits, and spells architectures one way', () => {
    expect(
      normaliseRequirements({ gpus: '2', gpuMemoryMb: 16000, arch: 'amd64-v3, arm64', platform: ['EL9', 'debian>=12'], site: 'CERN,RAL', notSite: ['DESY'], tag: 'cvmfs', scratchMb: '2000' }),
    ).toEqual({ arch: ['x86_64-v3', 'aarch64'], platform: ['el9', 'debian>=12'], site: ['CERN', 'RAL'], notSite: ['DESY'], tag: ['cvmfs'], gpus: 2, gpuMemoryMb: 16000, scratchMb: 2000 });
  });

  it('drops duplicates, empty entries and gpus 0', () => {
    expect(normaliseRequirements({ site: 'CERN,,CERN', gpus: 0 })).toEqual({ site: ['CERN'] });
    expect(normaliseRequirements(null)).toEqual({});
  });

  it('names the key, the value and what was expected', () => {
    const e = errorOf(() => normaliseRequirements({ arch: 'x86_64-v5' }));
    expect([e.key, e.value]).toEqual(['arch', 'x86_64-v5']);
    expect(e.message).toMatch(/^arch "x86_64-v5": expected an architecture .*-v1 to -v4/);
    expect(errorOf(() => normaliseRequirements({ gpus: 'two' })).message).toBe('gpus "two": expected a whole number from 0 to 64');
    expect(errorOf(() => normaliseRequirements({ platform: 'el>=nine' })).message).toMatch(/^platform "el>=nine": expected a platform/);
    expect(errorOf(() => normaliseRequirements({ site: 'CERN;rm' })).message).toMatch(/^site "CERN;rm": expected site names/);
    expect(errorOf(() => normaliseRequirements({ colour: 'red' })).message).toMatch(/^colour "red": expected one of the requirement keys arch, platform/);
    expect(errorOf(() => normaliseRequirements({ gpuMemoryMb: 8000 })).message).toMatch(/^gpuMemoryMb 8000: expected gpus as well/);
    expect(errorOf(() => normaliseRequirements({ tag: [] })).message).toBe('tag []: expected at least one name');
  });

  it('is idempotent and its one-line form names every key it keeps', () => {
    fc.assert(
      fc.property(requirementsArb, (r) => {
        const once = normaliseRequirements(r);
        expect(normaliseRequirements(once)).toEqual(once);
        const line = formatRequirements(once);
        for (const k of Object.keys(once)) expect(line).toContain(`${k}=`);
      }),
    );
  });
});

describe('architectures and platforms', () => {
  it('reads x86-64 levels as "that level or higher"', () => {
    expect(parseArch('x86-64-v2')).toEqual({ arch: 'x86_64', level: 2 });
    expect(parseArch('aarch64-v2')).toBeNull();
    expect(meetsRequirements({ arch: ['x86_64-v3'] }, node({ cpuLevel: 4 }))).toBe(true);
    expect(meetsRequirements({ arch: ['x86_64-v3'] }, node({ cpuLevel: 2 }))).toBe(false);
    expect(meetsRequirements({ arch: ['x86_64'] }, node({ cpuLevel: null }))).toBe(true);
    expect(meetsRequirements({ arch: ['aarch64'] }, node())).toBe(false);
  });

  it('compares platform versions by their numbers within one family', () => {
    expect(platformMeets('el>=8', 'el9')).toBe(true);
    expect(platformMeets('el>=10', 'el9')).toBe(false);
    expect(platformMeets('ubuntu<=22.04', 'ubuntu20.04')).toBe(true);
    expect(platformMeets('ubuntu<=22.04', 'ubuntu24.04')).toBe(false);
    expect(platformMeets('el>=8', 'debian12')).toBe(false);
    expect(platformMeets('el9', 'el9')).toBe(true);
  });
});

describe('unmetRequirements', () => {
  it('says which requirement a node does not meet, and what it has', () => {
    const u = unmetRequirements({ site: ['RAL'], tag: ['cvmfs', 'apptainer'], gpus: 1 }, node());
    expect(u.map((x) => x.key)).toEqual(['site', 'tag', 'gpus']);
    expect(u[0]).toEqual({ key: 'site', wants: 'site RAL', has: 'site CERN' });
    expect(u[2]).toEqual({ key: 'gpus', wants: 'a GPU', has: 'no GPU' });
    expect(describeUnmet(unmetRequirements({ gpus: 2 }, node({ gpus: [gpu('0'), gpu('1')] }), { gpus: [gpu('1')], scratchMb: 0 }))).toBe('needs 2 GPUs free (this node: 1 free of 2)');
  });

  it('counts free GPUs, of the memory asked, only when told what is free', () => {
    const caps = node({ gpus: [gpu('0', 40000), gpu('1', 16000)] });
    const r: Requirements = { gpus: 1, gpuMemoryMb: 32000 };
    expect(meetsRequirements(r, caps)).toBe(true);
    expect(meetsRequirements(r, caps, { gpus: [gpu('1', 16000)], scratchMb: 0 })).toBe(false);
    expect(meetsRequirements(r, caps, { gpus: [gpu('0', 40000)], scratchMb: 0 })).toBe(true);
    expect(describeUnmet(unmetRequirements(r, caps, { gpus: [gpu('1', 16000)], scratchMb: 0 }))).toBe('needs a GPU of 32000 MiB or more free (this node: 0 free of 2)');
    expect(unmetRequirements({ gpus: 2, gpuMemoryMb: 32000 }, caps).map((x) => x.key)).toEqual(['gpuMemoryMb']);
  });

  it('treats an unknown capability as unmet, except that a node with no site is at none of the banned ones', () => {
    expect(meetsRequirements({ platform: ['el9'] }, {})).toBe(false);
    expect(meetsRequirements({ notSite: ['RAL'] }, {})).toBe(true);
    expect(meetsRequirements({ notSite: ['CERN'] }, node())).toBe(false);
    expect(meetsRequirements({ scratchMb: 10 }, node({ scratchMb: null }))).toBe(false);
    expect(meetsRequirements({}, null)).toBe(true);
  });

  it('agrees with meetsRequirements, and more capability never unmeets what was met', () => {
    fc.assert(
      fc.property(requirementsArb, capsArb, capsArb, (raw, a, extra) => {
        const r = normaliseRequirements(raw);
        expect(meetsRequirements(r, a)).toBe(unmetRequirements(r, a).length === 0);
        const more: Capabilities = { ...a, tags: [...(a.tags ?? []), ...(extra.tags ?? [])], gpus: [...(a.gpus ?? []), ...(extra.gpus ?? [])], cpuLevel: Math.max(a.cpuLevel ?? 0, extra.cpuLevel ?? 0) || null };
        if (meetsRequirements(r, a)) expect(meetsRequirements(r, more)).toBe(true);
      }),
    );
  });

  it('a node that meets a requirement with what is free meets it without', () => {
    fc.assert(
      fc.property(requirementsArb, capsArb, fc.nat(5), fc.option(fc.nat(100_000), { nil: null }), (raw, caps, k, scratch) => {
        const r = normaliseRequirements(raw);
        const free = { gpus: (caps.gpus ?? []).slice(0, k), scratchMb: scratch === null ? null : Math.min(scratch, caps.scratchMb ?? 0) };
        if (meetsRequirements(r, caps, free)) expect(meetsRequirements(r, caps)).toBe(true);
      }),
    );
  });
});

const SITES = ['CERN', 'RAL', 'DESY', 'IN2P3-CC'];
const TAGS = ['cvmfs', 'apptainer', 'gpu', 'ib'];

/** Raw requirements as users write them (strings and lists mixed). */
const requirementsArb = fc.record(
  {
    gpus: fc.integer({ min: 0, max: 4 }),
    arch: fc.subarray(['x86_64', 'x86_64-v2', 'x86-64-v3', 'amd64-v4', 'aarch64', 'arm64'], { minLength: 1 }),
    platform: fc.subarray(['el8', 'el9', 'el>=9', 'debian12', 'ubuntu<=22.04'], { minLength: 1 }).map((l) => l.join(',')),
    site: fc.subarray(SITES, { minLength: 1 }),
    notSite: fc.subarray(SITES, { minLength: 1 }),
    tag: fc.subarray(TAGS, { minLength: 1 }),
    scratchMb: fc.integer({ min: 1, max: 100_000 }),
  },
  { requiredKeys: [] },
);

/** Node capabilities, some unknown. */
const capsArb: fc.Arbitrary<Capabilities> = fc.record(
  {
    arch: fc.constantFrom('x86_64', 'aarch64'),
    cpuLevel: fc.option(fc.integer({ min: 1, max: 4 }), { nil: null }),
    platform: fc.constantFrom('el8', 'el9', 'debian12', 'ubuntu20.04'),
    site: fc.constantFrom(...SITES),
    tags: fc.subarray(TAGS),
    gpus: fc.array(fc.record({ id: fc.string({ minLength: 1, maxLength: 4 }), memoryMb: fc.option(fc.integer({ min: 1000, max: 80_000 }), { nil: null }) }), { maxLength: 4 }),
    scratchMb: fc.option(fc.nat(200_000), { nil: null }),
  },
  { requiredKeys: [] },
);
