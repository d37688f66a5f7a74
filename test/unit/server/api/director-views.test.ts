import { describe, expect, it } from 'vitest';
import { instanceStatesOf } from '../../../../src/server/api/director-routes.js';
import { costSoFar, endpointView, instanceCosts, instanceView } from '../../../../src/server/api/director-views.js';
import { recordFailure } from '../../../../src/server/director/failure-memory.js';
import type { InstanceRecord } from '../../../../src/server/director/ports.js';
import { isVmpilotError } from '../../../../src/shared/errors.js';
import { T0, endpoint, instance } from '../director/fixtures.js';

const HOUR = 3_600_000;
const rec = (id: number, o: Partial<InstanceRecord> = {}): InstanceRecord =>
  instance(id, { forGroup: 'atlas', groups: ['atlas'], state: 'registered', reason: 'r', driverId: `d${id}`, credentialHash: 'f'.repeat(64), costPerHour: 0.5, ...o });

describe('cost so far', () => {
  it('runs from the start (else the request) to the deletion, the end, or now', () => {
    expect(costSoFar(rec(1), T0 + 2 * HOUR)).toBeCloseTo(1);
    expect(costSoFar(rec(1, { startedAt: T0 + HOUR }), T0 + 3 * HOUR)).toBeCloseTo(1);
    expect(costSoFar(rec(1, { startedAt: T0, endedAt: T0 + HOUR }), T0 + 10 * HOUR)).toBeCloseTo(0.5);
    expect(costSoFar(rec(1, { startedAt: T0, endedAt: T0 + HOUR, deletedAt: T0 + 2 * HOUR }), T0 + 10 * HOUR)).toBeCloseTo(1);
    expect(costSoFar(rec(1, { costPerHour: 0 }), T0 + 10 * HOUR)).toBe(0);
  });

  it('an instance view never carries its credential hash', () => {
    const v = instanceView(rec(1), T0 + HOUR);
    expect(JSON.stringify(v)).not.toContain('f'.repeat(64));
    expect(v).toMatchObject({ id: 1, state: 'registered', costSoFar: 0.5, groups: ['atlas'] });
  });
});

describe('instance cost per group', () => {
  it('sums instance-hours, core-hours and cost per group started for and endpoint; by hand under (by hand); sorted', () => {
    const rows = instanceCosts(
      [
        rec(1, { startedAt: T0, deletedAt: T0 + 2 * HOUR }), // atlas on a: 2 h × 0.5, 4 cores
        rec(2, { startedAt: T0 + HOUR }), // atlas on a: running, 1 h so far
        rec(3, { endpoint: 'b', forGroup: 'cms', groups: ['cms'], cores: 2, costPerHour: 0.1, startedAt: T0, endedAt: T0 + 3 * HOUR }),
        rec(4, { manual: true, forGroup: null, groups: null, costPerHour: 1, startedAt: T0, deletedAt: T0 + HOUR / 2 }),
      ],
      T0 + 2 * HOUR,
    );
    expect(rows.map((r) => [r.group, r.endpoint, r.instances])).toEqual([
      ['(by hand)', 'a', 1],
      ['atlas', 'a', 2],
      ['cms', 'b', 1],
    ]);
    const [hand, atlas, cms] = rows;
    expect(atlas!.instanceHours).toBeCloseTo(3);
    expect(atlas!.coreHours).toBeCloseTo(12);
    expect(atlas!.cost).toBeCloseTo(1.5);
    expect(cms).toMatchObject({ instanceHours: 3, coreHours: 6 });
    expect(cms!.cost).toBeCloseTo(0.3);
    expect(hand).toMatchObject({ instanceHours: 0.5, coreHours: 2, cost: 0.5 });
    expect(instanceCosts([], T0)).toEqual([]);
  });
});

describe('endpoint view', () => {
  const ep = endpoint('a', { limits: { instances: 4, cores: 16 }, groups: { atlas: { maxCores: 8 }, '*': {} } });

  it('counts live instances by state, and says who disabled it', () => {
    const live = [rec(1), rec(2, { state: 'booting' }), rec(3, { state: 'booting', cores: 2 }), rec(4, { endpoint: 'b' }), rec(5, { state: 'deleted' })];
    const v = endpointView(ep, new Set(['a']), live, new Map(), T0);
    expect(v.live).toEqual({ instances: 3, cores: 10, byState: { registered: { instances: 1, cores: 4 }, booting: { instances: 2, cores: 6 } } });
    expect(v).toMatchObject({ name: 'a', driver: 'process', enabled: false, enabledInConfig: true, disabledByOperator: true });
    expect(v.groups).toEqual([
      { group: 'atlas', maxInstances: null, maxCores: 8 },
      { group: '*', maxInstances: null, maxCores: null },
    ]);
    expect(v.limits).toMatchObject({ instances: 4, cores: 16 });
  });

  it('shows an offering backed off until its time, and not after', () => {
    const memory = recordFailure(new Map(), 'a/s', 'fizzle', 'pilot halted with 400 after 3 s', T0, ep.backoff);
    const v = endpointView(ep, new Set(), [], memory, T0 + 1000);
    expect(v.backoff).toEqual([{ shape: 's', until: T0 + ep.backoff.baseSec * 1000, failures: 1, kind: 'fizzle', reason: 'pilot halted with 400 after 3 s' }]);
    expect(endpointView(ep, new Set(), [], memory, T0 + ep.backoff.baseSec * 1000).backoff).toEqual([]);
  });
});

describe('the state filter of GET /v1/instances', () => {
  it('takes one, comma-separated or repeated states', () => {
    expect(instanceStatesOf(undefined)).toBeUndefined();
    expect(instanceStatesOf('booting')).toEqual(['booting']);
    expect(instanceStatesOf('booting,registered')).toEqual(['booting', 'registered']);
    expect(instanceStatesOf(['booting', 'registered,halted', 'booting'])).toEqual(['booting', 'registered', 'halted']);
  });

  it('refuses a state that is not one, naming the valid ones', () => {
    let err: unknown;
    try {
      instanceStatesOf(['booting', 'running']);
    } catch (e) {
      err = e;
    }
    expect(isVmpilotError(err, 'VMP_BAD_REQUEST')).toBe(true);
    expect((err as Error).message).toBe('query.state "running" is not an instance state (requested, starting, booting, registered, halted, failed, deleted)');
  });
});
