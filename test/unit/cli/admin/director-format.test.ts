import { describe, expect, it } from 'vitest';
import type { DirectorStatusReply, EndpointView, InstanceDetailReply, InstanceView } from '../../../../src/protocol/index.js';
import { instanceStatesOption, startRequest } from '../../../../src/cli/admin/director.js';
import { directorStatusText, endpointTable, instanceCostTable, instanceDetail, instanceTable, startText, stopText, switchText } from '../../../../src/cli/admin/director-format.js';
import { isVmpilotError } from '../../../../src/shared/errors.js';

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5);

const endpointOf = (o: Partial<EndpointView> = {}): EndpointView => ({
  name: 'laptop',
  driver: 'process',
  enabled: true,
  enabledInConfig: true,
  disabledByOperator: false,
  serverUrl: null,
  shapes: [{ name: 'small', cores: 2, memoryMb: 2000, lifetimeSec: 86400, costPerHour: 0, price: null, maxCostPerHour: null }],
  limits: { instances: 4, cores: 8, startsPerCycle: 2 },
  groups: [
    { group: 'atlas', maxInstances: null, maxCores: 6 },
    { group: '*', maxInstances: null, maxCores: null },
  ],
  live: { instances: 3, cores: 6, byState: { registered: { instances: 2, cores: 4 }, booting: { instances: 1, cores: 2 } } },
  backoff: [],
  ...o,
});

const instanceOf = (o: Partial<InstanceView> = {}): InstanceView => ({
  id: 7,
  key: 'vmp-abcd1234-laptop-xyz',
  endpoint: 'laptop',
  shape: 'small',
  cores: 2,
  memoryMb: 2000,
  forGroup: 'atlas',
  groups: null,
  state: 'registered',
  reason: 'pilot 3 registered',
  driverId: 'vmp-abcd1234-laptop-xyz',
  pilotId: 3,
  costPerHour: 0.5,
  costSoFar: 0.25,
  manual: false,
  requestedAt: T0,
  startedAt: T0,
  bootedAt: T0,
  registeredAt: T0 + 2000,
  drainAt: null,
  endedAt: null,
  deletedAt: null,
  ...o,
});

describe('endpoints', () => {
  it('a row per endpoint: driver, enabled, shapes, live by state, cores of the limit, limits, groups', () => {
    const text = endpointTable([endpointOf(), endpointOf({ name: 'hpc', driver: 'slurm', enabled: false, disabledByOperator: true, groups: null, live: { instances: 0, cores: 0, byState: {} } })], T0);
    const [head, first, second] = text.split('\n');
    expect(head).toMatch(/^NAME\s+DRIVER\s+ENABLED\s+SHAPES\s+LIVE\s+CORES\s+LIMITS\s+GROUPS$/);
    expect(first).toMatch(/^laptop\s+process\s+yes\s+small:2c\/2000MB\/0\s+3 \(registered 2, booting 1\)\s+6\/8\s+4 inst, 2\/cycle\s+atlas\(6 cores\) \*$/);
    expect(second).toMatch(/^hpc\s+slurm\s+no \(endpoint disable\)\s+.*\s0\s+0\/8\s+.*all$/);
  });

  it('says which offerings are backed off, until when and why', () => {
    const text = endpointTable([endpointOf({ backoff: [{ shape: 'small', until: T0 + 120_000, failures: 2, kind: 'fizzle', reason: 'ended 3 s after its start\x1b[2J' }] })], T0);
    expect(text).toContain('backoff: laptop/small for 2m00s more (until 2026-01-02T03:06:05.000Z; 2 failures in a row; fizzle: ended 3 s after its start\\e[2J)');
  });

  it('says when none are configured', () => {
    expect(endpointTable([], T0)).toMatch(/^no endpoints are configured/);
  });
});

describe('instances', () => {
  it('a row per instance, draining said, by hand said', () => {
    const text = instanceTable([instanceOf(), instanceOf({ id: 8, manual: true, forGroup: null, drainAt: T0, pilotId: null, costSoFar: 0.001 })], T0 + 90_000);
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^ID\s+ENDPOINT\s+SHAPE\s+STATE\s+CORES\s+PILOT\s+FOR\s+AGE\s+COST\s+REASON$/);
    expect(lines[1]).toMatch(/^7\s+laptop\s+small\s+registered\s+2\s+3\s+atlas\s+1m30s\s+0\.25\s+pilot 3 registered$/);
    expect(lines[2]).toMatch(/^8\s+laptop\s+small\s+registered \(draining\)\s+2\s+-\s+by hand\s+1m30s\s+0\.0010\s+/);
  });

  it('one instance: its fields, pilot with its state, cost, and its history', () => {
    const d: InstanceDetailReply = {
      ...instanceOf(),
      pilot: { id: 3, state: 'running' },
      history: [
        { state: 'requested', reason: 'started by hand', at: T0 },
        { state: 'registered', reason: 'pilot 3 registered', at: T0 + 2000 },
      ],
    };
    const text = instanceDetail(d);
    expect(text).toMatch(/^id\s+7$/m);
    expect(text).toMatch(/^pilot\s+3 \(running\)$/m);
    expect(text).toMatch(/^cost\s+0\.25 so far at 0\.50 per hour$/m);
    expect(text).toContain('--- history ---');
    expect(text).toMatch(/^2026-01-02T03:04:07\.000Z\s+registered\s+pilot 3 registered$/m);
  });

  it('start, stop and switch answers', () => {
    expect(startText({ instances: [instanceOf({ id: 9, state: 'requested' })] })).toBe('instance 9: laptop/small requested (the director creates it now)');
    expect(stopText({ results: [{ id: 9, outcome: 'draining', state: 'registered', message: 'instance 9: pilot 3 drains' }, { id: 99, outcome: 'unknown', state: null, message: 'no instance 99' }] })).toBe(
      '9: draining: instance 9: pilot 3 drains\n99: unknown: no instance 99',
    );
    expect(switchText({ name: 'hpc', enabled: false, disabledByOperator: true })).toMatch(/^endpoint hpc disabled: nothing more is started there \(kept across restarts/);
    expect(switchText({ name: 'hpc', enabled: true, disabledByOperator: false })).toBe('endpoint hpc enabled');
  });
});

describe('director status', () => {
  const status: DirectorStatusReply = {
    directorId: 'abcd1234',
    running: true,
    everySec: 5,
    endpoints: ['laptop', 'hpc'],
    lastCycle: {
      at: T0,
      decision: {
        at: T0,
        demand: { payloads: 10, cores: 20 },
        onSupply: { payloads: 2, cores: 4 },
        onStarts: { payloads: 4, cores: 8 },
        supply: { freeCores: 4, comingCores: 0, machines: 1 },
        starts: [],
        endpoints: [
          {
            endpoint: 'laptop',
            enabled: true,
            demand: { payloads: 8, cores: 16 },
            supply: { freeCores: 4, comingCores: 2, machines: 2 },
            live: { instances: 2, cores: 4 },
            started: [{ shape: 'small', instances: 2, cores: 4, payloads: 4 }],
            notMore: [
              { reason: 'limit', detail: 'limits.instances is 4', payloads: 3 },
              { reason: 'quota', detail: 'atlas maxCores 6', payloads: 1 },
            ],
          },
          { endpoint: 'hpc', enabled: false, demand: { payloads: 8, cores: 16 }, supply: { freeCores: 0, comingCores: 0, machines: 0 }, live: { instances: 0, cores: 0 }, started: [], notMore: [{ reason: 'disabled', detail: 'endpoint disable', payloads: 8 }] },
        ],
      },
      actions: [{ kind: 'start', endpoint: 'laptop', instanceId: 5, detail: 'small for 2 queued payload(s) of atlas', error: null }, { kind: 'delete', endpoint: 'laptop', instanceId: 2, detail: 'failed', error: 'VMP_DRIVER: kill: no such process' }],
      unmanaged: [],
    },
  };

  it('per endpoint: demand seen, supply counted, started, and every reason it did not start more', () => {
    const text = directorStatusText(status, T0 + 3000);
    expect(text).toContain('director abcd1234: running, a cycle every 5 s and after each submit');
    expect(text).toContain('last cycle 2026-01-02T03:04:05.000Z (3s ago): 10 payloads queued (20 cores); 2 fit the supply, 4 the starts');
    expect(text).toContain(
      [
        'laptop',
        '  demand seen:     8 payloads, 16 cores',
        '  supply counted:  4 free cores, 2 cores coming, 2 machines',
        '  live:            2 instances, 4 cores',
        '  started:         2 × small (4 cores, for 4 payloads)',
        '  why not more:    limit: limits.instances is 4 (3 payloads)',
        '                   quota: atlas maxCores 6 (1 payload)',
      ].join('\n'),
    );
    expect(text).toContain('hpc (disabled)\n');
    expect(text).toContain('  why not more:    disabled: endpoint disable (8 payloads)');
    expect(text).toContain('  delete laptop #2: failed FAILED: VMP_DRIVER: kill: no such process');
  });

  it('per start: the offer chosen, its price per hour and per core-hour with where it came from, alike starts on one line, and the offers that lost', () => {
    const start = { endpoint: 'aws', shape: 'spot', cores: 2, memoryMb: 4000, forGroup: 'atlas', requirementClass: '', payloads: 2, usefulCores: 2, costPerHour: 0.04, lifetimeSec: 3600 };
    const priced = {
      ...start,
      pricePerCoreHour: 0.02,
      priceFrom: 'driver' as const,
      priceDetail: 'ec2 spot price history: m5.large in eu-west-1a',
      lost: [
        { endpoint: 'aws', shape: 'od', reason: 'dearer', detail: '0.0600 per useful core-hour against 0.0222 on aws/spot', pricePerCoreHour: 0.0535 },
        { endpoint: 'hpc', shape: null, reason: 'limit', detail: 'instances: 4 of 4', pricePerCoreHour: null },
      ],
    };
    const text = directorStatusText({ ...status, lastCycle: { ...status.lastCycle!, decision: { ...status.lastCycle!.decision, starts: [priced, priced, { ...start, forGroup: 'cms', costPerHour: 0 }] } } }, T0);
    expect(text).toContain(
      [
        'starts (the offer chosen, its price, and the offers that lost):',
        '  2 × aws/spot for atlas (4 payloads): 0.04/h, 0.0200 per core-hour (driver: ec2 spot price history: m5.large in eu-west-1a)',
        '    lost: aws/od: dearer: 0.0600 per useful core-hour against 0.0222 on aws/spot (0.0535 per core-hour)',
        '          hpc: limit: instances: 4 of 4',
        // a cycle recorded before the offer's record: its price only
        '  1 × aws/spot for cms (2 payloads): 0/h, 0.0000 per core-hour',
        '',
      ].join('\n'),
    );
    expect(directorStatusText(status, T0)).not.toContain('starts (');
  });

  it("standing by: says whose director holds the lease, and until when", () => {
    const text = directorStatusText({ ...status, standby: { holder: 'host-b http://10.1.1.2:8443', until: T0 + 30_000 } }, T0);
    expect(text.split('\n')[1]).toMatch(/^standing by: the director of host-b http:\/\/10\.1\.1\.2:8443 holds the lease until .+ \(one director at a time on one database\)/);
    expect(directorStatusText({ ...status, standby: null }, T0)).not.toContain('standing by');
  });

  it('without a director, and before the first cycle', () => {
    expect(directorStatusText({ directorId: null, running: false, everySec: null, endpoints: [], lastCycle: null }, T0)).toBe('no director: no endpoints are configured in serve --config (docs/director.md)');
    expect(directorStatusText({ ...status, lastCycle: null }, T0)).toMatch(/\nno cycle yet$/);
  });
});

describe('command options', () => {
  it('instances start needs --endpoint; --count is a whole number from 1 to 1000', () => {
    expect(startRequest({ endpoint: 'laptop' })).toEqual({ endpoint: 'laptop' });
    expect(startRequest({ endpoint: 'laptop', shape: 'small', count: '3' })).toEqual({ endpoint: 'laptop', shape: 'small', count: 3 });
    for (const bad of [{}, { endpoint: 'laptop', count: '0' }, { endpoint: 'laptop', count: 'two' }]) {
      let err: unknown;
      try {
        startRequest(bad);
      } catch (e) {
        err = e;
      }
      expect(isVmpilotError(err, 'VMP_USAGE'), JSON.stringify(bad)).toBe(true);
    }
  });

  it('--state names instance states only', () => {
    expect(instanceStatesOption('booting,registered')).toBe('booting,registered');
    expect(() => instanceStatesOption('booting,running')).toThrow('--state "booting,running": "running" is not an instance state (requested, starting, booting, registered, halted, failed, deleted)');
  });
});

describe('accounting --instances', () => {
  it('a row per group and endpoint with instance-hours, core-hours and cost, and a total', () => {
    const text = instanceCostTable([
      { group: '(by hand)', endpoint: 'aws', instances: 1, instanceHours: 0.5, coreHours: 2, cost: 0.02 },
      { group: 'atlas', endpoint: 'aws', instances: 3, instanceHours: 2.25, coreHours: 9, cost: 1.5 },
    ]);
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^GROUP\s+ENDPOINT\s+INSTANCES\s+INSTANCE-HOURS\s+CORE-HOURS\s+COST$/);
    expect(lines[1]).toMatch(/^\(by hand\)\s+aws\s+1\s+0\.50\s+2\.00\s+0\.02$/);
    expect(lines[2]).toMatch(/^atlas\s+aws\s+3\s+2\.25\s+9\.00\s+1\.50$/);
    expect(lines[3]).toMatch(/^\(all\)\s+4\s+2\.75\s+11\.00\s+1\.52$/);
    expect(instanceCostTable([])).toBe('no instances have been started');
  });
});
