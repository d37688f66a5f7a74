import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fakeAssignment } from '../../../../src/agent/control/fake-control-plane.js';
import { freeGpus, freeScratchMb, place } from '../../../../src/agent/matcher/requirements.js';
import type { Capabilities, GpuInfo } from '../../../../src/protocol/index.js';

const gpus = (n: number, memoryMb = 16000): GpuInfo[] => Array.from({ length: n }, (_, i) => ({ id: String(i), memoryMb }));
const caps = (c: Partial<Capabilities> = {}): Capabilities => ({ arch: 'x86_64', cpuLevel: 3, site: 'CERN', tags: [], gpus: gpus(2), scratchMb: 10_000, ...c });

describe('the agent checks what it is handed, and chooses its GPUs', () => {
  it('gives a GPU payload the first free GPUs that have its memory', () => {
    const node = caps({ gpus: [{ id: '0', memoryMb: 8000 }, { id: '1', memoryMb: 40000 }, { id: '2', memoryMb: 40000 }] });
    const a = fakeAssignment(1, { requirements: { gpus: 1, gpuMemoryMb: 32000 } });
    expect(place(a, { capabilities: node, free: { gpus: node.gpus!, scratchMb: null } })).toEqual({ kind: 'place', gpus: ['1'] });
    expect(place(fakeAssignment(2, { requirements: { gpus: 2 } }), { capabilities: node, free: { gpus: node.gpus!.slice(1), scratchMb: null } })).toEqual({ kind: 'place', gpus: ['1', '2'] });
    expect(place(fakeAssignment(3), { capabilities: node, free: { gpus: node.gpus!, scratchMb: null } })).toEqual({ kind: 'place', gpus: [] });
  });

  it('gives back, saying why, what the node does not meet now', () => {
    const node = caps();
    expect(place(fakeAssignment(1, { requirements: { gpus: 2 } }), { capabilities: node, free: { gpus: gpus(1), scratchMb: null } })).toEqual({
      kind: 'release',
      message: 'not started: needs 2 GPUs free (this node: 1 free of 2)',
    });
    expect(place(fakeAssignment(2, { requirements: { site: ['RAL'] } }), { capabilities: node, free: { gpus: [], scratchMb: null } })).toEqual({
      kind: 'release',
      message: 'not started: needs site RAL (this node: site CERN)',
    });
    expect(place(fakeAssignment(3, { requirements: { scratchMb: 6000 } }), { capabilities: node, free: { gpus: [], scratchMb: 5000 } }).kind).toBe('release');
  });

  it('counts scratch declared by held payloads against the node’s', () => {
    expect(freeScratchMb(10_000, [fakeAssignment(1, { requirements: { scratchMb: 4000 } }), fakeAssignment(2), undefined])).toBe(6000);
    expect(freeScratchMb(null, [])).toBeNull();
  });

  it('never gives one GPU to two payloads held at once, whatever starts and ends (property)', () => {
    const devices = gpus(4);
    const step = fc.oneof(fc.record({ start: fc.integer({ min: 0, max: 3 }) }), fc.record({ end: fc.nat(20) }));
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
        const held = new Map<number, string[]>();
        let id = 0;
        for (const s of steps) {
          if ('start' in s) {
            const free = freeGpus(devices, held.values());
            const r = place(fakeAssignment(++id, s.start > 0 ? { requirements: { gpus: s.start } } : {}), { capabilities: caps({ gpus: devices }), free: { gpus: free, scratchMb: null } });
            if (r.kind === 'place') {
              expect(r.gpus).toHaveLength(s.start);
              held.set(id, r.gpus);
            } else expect(free.length).toBeLessThan(s.start);
          } else {
            const ids = [...held.keys()];
            if (ids.length) held.delete(ids[s.end % ids.length]!);
          }
          const all = [...held.values()].flat();
          expect(new Set(all).size).toBe(all.length);
        }
      }),
    );
  });
});
