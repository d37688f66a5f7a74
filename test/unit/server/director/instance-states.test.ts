import { describe, expect, it } from 'vitest';
import { INSTANCE_STATES, instanceTransitionAllowed, isComing, type InstanceState } from '../../../../src/server/director/instance-states.js';

const next = (from: InstanceState) => INSTANCE_STATES.filter((to) => to !== from && instanceTransitionAllowed(from, to));

describe('instance transitions', () => {
  it('follow requested → starting → booting → registered → halted → deleted, steps forward may be skipped', () => {
    expect(next('requested')).toEqual(['starting', 'booting', 'registered', 'halted', 'failed', 'deleted']);
    expect(next('starting')).toEqual(['booting', 'registered', 'halted', 'failed', 'deleted']);
    expect(next('booting')).toEqual(['registered', 'halted', 'failed', 'deleted']);
    expect(next('registered')).toEqual(['halted', 'failed', 'deleted']);
  });

  it('never go back along the line', () => {
    expect(instanceTransitionAllowed('booting', 'starting')).toBe(false);
    expect(instanceTransitionAllowed('registered', 'requested')).toBe(false);
    expect(instanceTransitionAllowed('halted', 'registered')).toBe(false);
  });

  it('a failed instance only gets deleted; a halted one is not a failure; deleted is final', () => {
    expect(next('failed')).toEqual(['deleted']);
    expect(next('halted')).toEqual(['deleted']);
    expect(next('deleted')).toEqual([]);
  });

  it('staying in a state is allowed (facts such as the drain time change)', () => {
    for (const s of INSTANCE_STATES) expect(instanceTransitionAllowed(s, s)).toBe(true);
  });

  it('counts as coming supply only before its pilot registered', () => {
    expect(INSTANCE_STATES.filter(isComing)).toEqual(['requested', 'starting', 'booting']);
  });
});
