import { describe, expect, it } from 'vitest';
import { supplyFrom } from '../../../../src/server/director/supply.js';
import { T0, instance, pilot } from './fixtures.js';

const life = () => 3600;

describe('supply', () => {
  it('counts the free cores of serving pilots and the whole of machines coming', () => {
    const s = supplyFrom([pilot(1, { cores: 8, coresUsed: 5, memoryUsedMb: 3000 }), pilot(2, { state: 'booting' })], [instance(1, { state: 'starting' }), instance(2, { state: 'booting', endpoint: 'b' })], life, T0);
    expect(s.total).toEqual({ freeCores: 3, comingCores: 12, machines: 4 });
    expect(s.slots.find((x) => x.id === 'pilot:1')).toMatchObject({ freeCores: 3, totalCores: 8, freeMemoryMb: 5000, coming: false });
    expect(s.byEndpoint.get('a')).toEqual({ freeCores: 0, comingCores: 4, machines: 1 });
    expect(s.byEndpoint.get('')).toEqual({ freeCores: 3, comingCores: 4, machines: 2 });
  });

  it('counts an instance whose pilot registered once, through its pilot, never also by its shape', () => {
    // the pilot registered before the director saw the instance move on: still `booting`, but tied
    const s = supplyFrom([pilot(7, { cores: 4, coresUsed: 1 })], [instance(1, { state: 'booting', pilotId: 7 })], life, T0);
    expect(s.total).toEqual({ freeCores: 3, comingCores: 0, machines: 1 });
    expect(s.slots.map((x) => [x.id, x.endpoint])).toEqual([['pilot:7', 'a']]);
  });

  it('never forgets a machine coming whose pilot the store does not list', () => {
    const s = supplyFrom([], [instance(1, { state: 'booting', pilotId: 9 }), instance(2, { state: 'requested' })], life, T0);
    expect(s.total.comingCores).toBe(8);
  });

  it('offers nothing from draining, halting, stalled or halted pilots, or from instances past registration without one', () => {
    const pilots = (['draining', 'halting', 'stalled', 'halted', 'error'] as const).map((state, i) => pilot(i + 1, { state }));
    const s = supplyFrom(pilots, [instance(1, { state: 'registered', pilotId: 99 }), instance(2, { state: 'halted' }), instance(3, { state: 'failed' })], life, T0);
    expect(s.slots).toEqual([]);
  });

  it('says how long each machine has left: a pilot its deadline, a coming instance its lifetime less its age', () => {
    const s = supplyFrom([pilot(1, { deadline: T0 + 600_000 })], [instance(1, { state: 'starting', requestedAt: T0 - 600_000 })], life, T0);
    expect(s.slots.map((x) => x.remainingSec)).toEqual([3000, 600]);
  });
});
