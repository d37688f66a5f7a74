import { describe, expect, it } from 'vitest';
import { driverFor } from '../../../../src/server/director/drivers/index.js';
import { endpointsFrom } from '../../../../src/server/director/endpoint-config.js';
import { FakeClock } from '../../../../src/shared/clock.js';
import { TEMPLATE_AGENT } from '../delivery/examples.js';

describe('driverFor', () => {
  it('makes each endpoint\'s driver from its settings', () => {
    const shapes = { s: { cores: 1, memoryMb: 512 } };
    const eps = endpointsFrom(
      {
        a: { driver: 'process', process: { workDir: '/tmp/a' }, shapes },
        b: { driver: 'slurm', slurm: { ssh: { host: 'login' } }, shapes },
        c: { driver: 'pbs', shapes },
        d: { driver: 'sge', shapes },
        e: { driver: 'qemu', qemu: { image: '/i.qcow2', workDir: '/tmp/e' }, shapes },
      },
      'test',
    );
    const deps = { clock: new FakeClock(), directorId: 'test', agentDir: '/opt/vmpilot', agentFile: () => TEMPLATE_AGENT, node: '/usr/bin/node', baseEnv: {} };
    expect(eps.map((e) => driverFor(e, deps).kind)).toEqual(['process', 'slurm', 'pbs', 'sge', 'qemu']);
  });
});
