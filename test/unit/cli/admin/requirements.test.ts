import { describe, expect, it } from 'vitest';
import { jobsFromYaml } from '../../../../src/cli/admin/bulk.js';
import { submitRequest } from '../../../../src/cli/admin/commands.js';
import { payloadDetail } from '../../../../src/cli/admin/format.js';
import type { PayloadView } from '../../../../src/protocol/index.js';
import { isVmpilotError } from '../../../../src/shared/errors.js';

const none = { env: [] as string[] };

function usageMessage(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    expect(isVmpilotError(err, 'VMP_USAGE')).toBe(true);
    return (err as Error).message;
  }
  throw new Error('no usage error');
}

describe('submit requirement flags', () => {
  it('turn into normalised requirements; list flags repeat and take commas', () => {
    const r = submitRequest(['./train.sh'], {
      ...none,
      gpus: '2',
      gpuMemoryMb: '16000',
      arch: ['x86-64-v3', 'arm64'],
      platform: ['el>=9'],
      site: ['CERN,RAL'],
      notSite: ['DESY'],
      tag: ['cvmfs', 'apptainer'],
      scratchMb: '20000',
    });
    expect(r.requirements).toEqual({
      arch: ['x86_64-v3', 'aarch64'],
      platform: ['el>=9'],
      site: ['CERN', 'RAL'],
      notSite: ['DESY'],
      tag: ['cvmfs', 'apptainer'],
      gpus: 2,
      gpuMemoryMb: 16000,
      scratchMb: 20000,
    });
    expect(submitRequest(['x'], { ...none, arch: [], gpus: '0' })).toEqual({ command: ['x'] });
  });

  it('name the flag, the value and what was expected', () => {
    expect(usageMessage(() => submitRequest(['x'], { ...none, gpus: 'many' }))).toBe('--gpus "many": expected a whole number from 0 to 64');
    expect(usageMessage(() => submitRequest(['x'], { ...none, arch: ['sparc-v9'] }))).toMatch(/^--arch "sparc-v9": expected an architecture/);
    expect(usageMessage(() => submitRequest(['x'], { ...none, gpuMemoryMb: '8000' }))).toMatch(/^--gpu-memory-mb 8000: expected gpus as well/);
    expect(usageMessage(() => submitRequest(['x'], { ...none, notSite: ['a b'] }))).toMatch(/^--not-site "a b": expected site names/);
  });
});

describe('submit files', () => {
  it('take the same requirement keys, as lists or comma-separated strings, with defaults', () => {
    const list = jobsFromYaml(`
defaults: { tag: cvmfs }
payloads:
  - { command: [./train.sh], gpus: 2, arch: x86_64-v3, site: [CERN, RAL] }
  - { command: [./reco.sh], notSite: "DESY,RAL", scratchMb: 5000 }
`);
    expect(list[0]!.requirements).toEqual({ arch: ['x86_64-v3'], site: ['CERN', 'RAL'], tag: ['cvmfs'], gpus: 2 });
    expect(list[1]!.requirements).toEqual({ notSite: ['DESY', 'RAL'], tag: ['cvmfs'], scratchMb: 5000 });
  });

  it('name the payload, the key, the value and what was expected', () => {
    expect(() => jobsFromYaml('- { command: [a] }\n- { command: [b], platform: "el 9" }', 'jobs.yaml')).toThrow(/^jobs\.yaml: payloads\[1\]\.platform "el 9": expected a platform/);
    expect(() => jobsFromYaml('- { command: [a], gpu: 1 }', 'jobs.yaml')).toThrow(/payloads\[0\]\.gpu is not a payload field \(known: .*gpus/);
  });
});

describe('job ID', () => {
  const view: PayloadView = {
    id: 7, name: 'train', group: 'default', command: ['./train.sh'], cores: { min: 1, max: 1, wholeNode: false }, memoryMb: null, wallSec: null, priority: 0,
    state: 'queued', pilotId: null, allocatedCores: null, exitCode: null, signal: null, submittedAt: 0, assignedAt: null, startedAt: null, endedAt: null, attempts: 0, message: null,
  };

  it('shows what the payload requires and, queued with no pilot able to run it, why it waits', () => {
    const text = payloadDetail({ ...view, requirements: { site: ['CERN'], gpus: 1 }, waiting: 'no live pilot has a GPU (live pilots: no GPU)' }, 0);
    expect(text).toMatch(/^requires\s+site=CERN gpus=1$/m);
    expect(text).toMatch(/^waiting\s+no live pilot has a GPU \(live pilots: no GPU\)$/m);
    const plain = payloadDetail({ ...view, waiting: null }, 0);
    expect(plain).toMatch(/^requires\s+-$/m);
    expect(plain).not.toMatch(/^waiting/m);
  });
});
