import { describe, expect, it } from 'vitest';
import type { Capabilities } from '../../../../src/protocol/index.js';
import { waitingReason, type Need, type Runner } from '../../../../src/server/queue/waiting.js';

const need = (n: Partial<Need> = {}): Need => ({ cores: { min: 1, max: 1, wholeNode: false }, memoryMb: null, ...n });
const pilot = (id: number, capabilities: Capabilities | null, cores = 4, memoryMb = 8000): Runner => ({ label: `pilot ${id}`, cores, memoryMb, capabilities });

const cpuAtRal = pilot(1, { arch: 'x86_64', cpuLevel: 3, site: 'RAL', tags: [], gpus: [] });
const gpuAtCern = pilot(2, { arch: 'x86_64', cpuLevel: 3, site: 'CERN', tags: ['cvmfs'], gpus: [{ id: '0' }, { id: '1' }] });

describe('waitingReason', () => {
  it('is null when some live pilot could run it, busy or not', () => {
    expect(waitingReason(need({ requirements: { gpus: 1 } }), [cpuAtRal, gpuAtCern])).toBeNull();
    expect(waitingReason(need(), [cpuAtRal])).toBeNull();
  });

  it('names the requirement no live pilot meets, and what they have', () => {
    expect(waitingReason(need({ requirements: { gpus: 1 } }), [cpuAtRal])).toBe('no live pilot has a GPU (live pilots: no GPU)');
    expect(waitingReason(need({ requirements: { gpus: 4 } }), [cpuAtRal, gpuAtCern])).toBe('no live pilot has 4 GPUs (live pilots: no GPU, 2 GPUs)');
    expect(waitingReason(need({ requirements: { site: ['DESY'], arch: ['aarch64'] } }), [cpuAtRal, gpuAtCern])).toBe(
      'no live pilot has arch aarch64 (live pilots: x86_64-v3); no live pilot has site DESY (live pilots: site RAL, site CERN)',
    );
    expect(waitingReason(need({ cores: { min: 16, max: 16, wholeNode: false } }), [cpuAtRal])).toBe('no live pilot has 16 cores (live pilots: 4 cores)');
    // the example of docs/protocol.md
    const smallGpus = pilot(5, { arch: 'x86_64', cpuLevel: 3, gpus: [{ id: '0', memoryMb: 16384 }] });
    expect(waitingReason(need({ requirements: { arch: ['x86_64-v3'], gpus: 1, gpuMemoryMb: 32000 } }), [smallGpus, cpuAtRal])).toBe(
      'no live pilot has a GPU of 32000 MiB or more (live pilots: GPUs of 16384 MiB, no GPU)',
    );
  });

  it('says when each need is met somewhere but never all on one pilot', () => {
    expect(waitingReason(need({ requirements: { gpus: 1, site: ['RAL'] } }), [cpuAtRal, gpuAtCern])).toBe(
      'no live pilot has all of it at once: pilot 1 lacks a GPU; pilot 2 lacks site RAL',
    );
  });

  it('counts only pilots that isolate for a payload whose group requires isolation', () => {
    const isolated = { ...cpuAtRal, label: 'pilot 6', isolated: true };
    expect(waitingReason(need({ requiresIsolation: true }), [cpuAtRal, gpuAtCern])).toBe('no live pilot has payload isolation (live pilots: isolation none)');
    expect(waitingReason(need({ requiresIsolation: true }), [cpuAtRal, isolated])).toBeNull();
    expect(waitingReason(need({ requiresIsolation: true, requirements: { gpus: 1 } }), [isolated, gpuAtCern])).toBe(
      'no live pilot has all of it at once: pilot 6 lacks a GPU; pilot 2 lacks payload isolation',
    );
    // a group that does not require it waits for no isolation
    expect(waitingReason(need(), [cpuAtRal])).toBeNull();
  });

  it('says so when there is no live pilot at all, and counts a pilot that declared nothing as having nothing', () => {
    expect(waitingReason(need(), [])).toBe('no live pilot');
    expect(waitingReason(need({ requirements: { tag: ['cvmfs'] } }), [pilot(3, null)])).toBe('no live pilot has tag cvmfs (live pilots: no tags)');
  });
});
