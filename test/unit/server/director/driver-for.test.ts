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
        f: { driver: 'ec2', ec2: { region: 'eu-west-1', imageId: 'ami-0123456789abcdef0', shapes: { s: { instanceTypes: ['t3.small'] } } }, shapes },
        g: { driver: 'openstack', openstack: { authUrl: 'http://127.0.0.1:9/v3', auth: { username: 'u', password: 'p', project: 'x' }, image: 'debian', shapes: { s: { flavor: 'm1.small' } } }, shapes },
        h: { driver: 'opennebula', opennebula: { endpoint: 'http://127.0.0.1:9/RPC2', user: 'u', password: 'p', shapes: { s: { templateId: 1 } } }, shapes },
      },
      'test',
    );
    const deps = { clock: new FakeClock(), directorId: 'test', agentDir: '/opt/vmpilot', agentFile: () => TEMPLATE_AGENT, node: '/usr/bin/node', baseEnv: {} };
    const drivers = eps.map((e) => driverFor(e, deps));
    expect(drivers.map((d) => d.kind)).toEqual(['process', 'slurm', 'pbs', 'sge', 'qemu', 'ec2', 'openstack', 'opennebula']);
    for (const d of drivers) void d.close();
  });
});
