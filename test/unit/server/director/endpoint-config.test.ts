import { describe, expect, it } from 'vitest';
import { serverConfigFrom } from '../../../../src/server/config.js';
import { endpointsFrom, quotaFor } from '../../../../src/server/director/endpoint-config.js';
import { isVmpilotError } from '../../../../src/shared/errors.js';

const minimal = { driver: 'process', process: { workDir: '/var/lib/vmpilot/instances' }, shapes: { small: { cores: 2, memoryMb: 2000 } } };
const configError = (raw: unknown): string => {
  try {
    endpointsFrom(raw, 'server.yaml');
  } catch (err) {
    expect(isVmpilotError(err, 'VMP_CONFIG'), String(err)).toBe(true);
    return (err as Error).message;
  }
  throw new Error('no error');
};

describe('endpoints in serve --config', () => {
  it('reads a full endpoint of every driver, in the order written, with the defaults filled in', () => {
    const c = serverConfigFrom({
      groups: { atlas: { share: 70 } },
      endpoints: {
        laptop: {
          ...minimal,
          limits: { instances: 4, cores: 8, startsPerCycle: 2 },
          groups: { atlas: { maxCores: 6 }, '*': {} },
          timeouts: { bootSec: 60, registrationSec: 90, maxLifetimeSec: 3600, idleSec: 30 },
        },
        hpc: {
          driver: 'slurm',
          slurm: { ssh: { host: 'login.example.org', user: 'pilot', key: '/etc/vmpilot/id_ed25519', options: ['StrictHostKeyChecking=yes'] }, queue: 'debug', env: { SLURM_CONF: '/etc/slurm/slurm.conf' } },
          shapes: { node: { cores: 8, memoryMb: 16000, lifetimeSec: 86400, costPerHour: 0.2 } },
        },
        spot: {
          driver: 'qemu',
          qemu: { image: '/srv/images/debian.qcow2', kernel: '/srv/images/vmlinuz', initrd: '/srv/images/initrd.img', workDir: '/srv/vms' },
          shapes: { m: { cores: 2, memoryMb: 2048, price: { file: '/srv/prices.json' }, maxCostPerHour: 0.1 } },
          enabled: false,
        },
      },
    });
    expect(c.endpoints.map((e) => e.name)).toEqual(['laptop', 'hpc', 'spot']);
    const [laptop, hpc, spot] = c.endpoints;
    expect(laptop).toMatchObject({ enabled: true, limits: { instances: 4, cores: 8, startsPerCycle: 2 }, timeouts: { bootSec: 60, registrationSec: 90, maxLifetimeSec: 3600, idleSec: 30, drainGraceSec: 600 } });
    expect(laptop!.shapes[0]).toEqual({ name: 'small', cores: 2, memoryMb: 2000, lifetimeSec: 7 * 86400, costPerHour: 0, price: null, maxCostPerHour: null });
    expect(quotaFor(laptop!, 'atlas')).toEqual({ maxInstances: null, maxCores: 6 });
    expect(quotaFor(laptop!, 'cms')).toEqual({ maxInstances: null, maxCores: null });
    expect(hpc!.driver).toMatchObject({ kind: 'slurm', queue: 'debug', agent: 'executable', drainBeforeSec: 300, ssh: { host: 'login.example.org', port: 22, user: 'pilot', controlPersistSec: 600, reverse: null } });
    const [rev] = endpointsFrom({ r: { driver: 'pbs', pbs: { ssh: { host: 'login', reverse: { listen: 18443, to: '[::1]:8443' } } }, shapes: { s: { cores: 1, memoryMb: 100 } } } }, 'f');
    expect(rev!.driver).toMatchObject({ ssh: { reverse: { listen: { host: '127.0.0.1', port: 18443 }, to: { host: '::1', port: 8443 } } } });
    // defaults: 10 instances, cores = instances × the largest shape, a tenth of the limit per cycle
    expect(hpc!.limits).toEqual({ instances: 10, cores: 80, startsPerCycle: 1 });
    expect(quotaFor(hpc!, 'anyone')).toEqual({ maxInstances: null, maxCores: null });
    expect(spot).toMatchObject({ enabled: false, driver: { kind: 'qemu', accel: 'auto', append: 'root=/dev/vda rw console=ttyS0' } });
    expect(spot!.shapes[0]!.price).toEqual({ file: '/srv/prices.json', key: 'm', maxAgeSec: 3600 });
    expect(Object.isFrozen(spot)).toBe(true);
  });

  it('a group not listed is not served when groups are given without "*"', () => {
    const [e] = endpointsFrom({ a: { ...minimal, groups: { atlas: { maxInstances: 2 } } } }, 'f');
    expect(quotaFor(e!, 'atlas')).toEqual({ maxInstances: 2, maxCores: null });
    expect(quotaFor(e!, 'cms')).toBeNull();
  });

  it('names the full key, the value and what was expected', () => {
    expect(configError({ Laptop: minimal })).toBe('server.yaml: endpoints.Laptop is not a usable endpoint name: a-z, 0-9 and -, 1 to 24, starting with a letter');
    expect(configError({ a: { ...minimal, driver: 'azure' } })).toBe('server.yaml: endpoints.a.driver is "azure"; expected one of process, slurm, pbs, sge, qemu, ec2, openstack, opennebula');
    expect(configError({ a: { ...minimal, shapes: { small: { cores: 0, memoryMb: 2000 } } } })).toBe('server.yaml: endpoints.a.shapes.small.cores is 0; expected a whole number from 1 to 4096');
    expect(configError({ a: { ...minimal, shapes: { small: { cores: 2 } } } })).toBe('server.yaml: endpoints.a.shapes.small.memoryMb is missing; expected a whole number from 64 to 67108864');
    expect(configError({ a: { ...minimal, shapes: {} } })).toMatch(/^server\.yaml: endpoints\.a\.shapes is empty; name at least one shape/);
    expect(configError({ a: { ...minimal, limits: { instance: 3 } } })).toBe('server.yaml: endpoints.a.limits.instance is not a known key (known under endpoints.a.limits: instances, cores, startsPerCycle)');
    expect(configError({ a: { ...minimal, limits: { startsPerCycle: 0 } } })).toBe('server.yaml: endpoints.a.limits.startsPerCycle is 0; expected a whole number from 1 to 10000');
    expect(configError({ a: { ...minimal, groups: { atlas: { maxCores: -1 } } } })).toBe('server.yaml: endpoints.a.groups.atlas.maxCores is -1; expected a whole number from 0 to 100000000');
    expect(configError({ a: { ...minimal, timeouts: { bootSec: '1m' } } })).toBe('server.yaml: endpoints.a.timeouts.bootSec is "1m"; expected a whole number from 1 to 2592000');
    expect(configError({ a: { ...minimal, process: { workDir: 'relative/dir' } } })).toMatch(/^server\.yaml: endpoints\.a\.process\.workDir is "relative\/dir"; expected an absolute path/);
    expect(configError({ a: { ...minimal, slurm: { queue: 'x' } } })).toBe('server.yaml: endpoints.a.slurm is set but the driver is process: put the driver\'s settings under endpoints.a.process');
    expect(configError({ a: { ...minimal, shapes: { s: { cores: 1, memoryMb: 100, costPerHour: 1, price: { file: '/p.json' } } } } })).toMatch(/endpoints\.a\.shapes\.s\.price and costPerHour exclude each other/);
    expect(configError({ a: { driver: 'slurm', slurm: { ssh: { host: 'login; rm -rf /' } }, shapes: { s: { cores: 1, memoryMb: 100 } } } })).toBe('server.yaml: endpoints.a.slurm.ssh.host is "login; rm -rf /"; expected a host name or address');
    const reverse = (r: unknown) => configError({ a: { driver: 'slurm', slurm: { ssh: { host: 'login', reverse: r } }, shapes: { s: { cores: 1, memoryMb: 100 } } } });
    expect(reverse({ to: '127.0.0.1:8443' })).toMatch(/^server\.yaml: endpoints\.a\.slurm\.ssh\.reverse\.listen is missing: the port/);
    expect(reverse({ listen: 18443 })).toMatch(/endpoints\.a\.slurm\.ssh\.reverse\.to is missing: the server's own listening address/);
    expect(reverse({ listen: 18443, to: 8443 })).toMatch(/endpoints\.a\.slurm\.ssh\.reverse\.to must be HOST:PORT \(a port from 1 to 65535\), e\.g\. 127\.0\.0\.1:8443/);
    expect(reverse({ listen: '0.0.0.0:99999', to: '127.0.0.1:8443' })).toMatch(/reverse\.listen must be HOST:PORT/);
    expect(reverse({ listen: 1, to: 'x:1', via: 2 })).toMatch(/reverse\.via is not a known key/);
    expect(configError({ a: { driver: 'slurm', slurm: { env: { SLURM_CONF: '$(reboot)' } }, shapes: { s: { cores: 1, memoryMb: 100 } } } })).toMatch(/endpoints\.a\.slurm\.env\.SLURM_CONF is "\$\(reboot\)"; expected a one-line value/);
    expect(configError({ a: { driver: 'slurm', slurm: { sgePe: 'smp' }, shapes: { s: { cores: 1, memoryMb: 100 } } } })).toBe('server.yaml: endpoints.a.slurm.sgePe is for the sge driver only, not slurm');
    expect(configError({ a: { driver: 'sge', shapes: { s: { cores: 1, memoryMb: 100, lifetimeSec: 60 } } } })).toBe('server.yaml: endpoints.a.shapes.s lifetimeSec is 60; a batch job needs at least 120');
    expect(configError({ a: { driver: 'qemu', qemu: { image: '/i.qcow2', workDir: '/w', kernel: '/k' }, shapes: { s: { cores: 1, memoryMb: 512 } } } })).toBe('server.yaml: endpoints.a.qemu.initrd is missing: kernel and initrd go together');
    expect(configError({ a: { driver: 'qemu', qemu: { image: '/i.qcow2', workDir: '/w' }, serverUrl: 'http://x:1', shapes: { s: { cores: 1, memoryMb: 512 } } } })).toMatch(/endpoints\.a\.serverUrl cannot be set for the qemu driver/);
    expect(configError({ a: { ...minimal, backoff: { baseSec: 600, maxSec: 60 } } })).toBe('server.yaml: endpoints.a.backoff.maxSec is 60; expected at least baseSec (600)');
    expect(configError([minimal])).toBe('server.yaml: endpoints is [{"driver":"process","process":{"workDir":"/var/lib/vmpilot/instances"},"shapes":{"small":{"cores":2,"memoryMb":2000}}}]; expected a mapping of keys to values');
  });

  it('a bad endpoint makes the whole configuration fail, naming the file', () => {
    expect(() => serverConfigFrom({ endpoints: { a: { ...minimal, enabled: 'yes' } } }, 'server.yaml')).toThrow('server.yaml: endpoints.a.enabled is "yes"; expected true or false');
    expect(serverConfigFrom({}).endpoints).toEqual([]);
  });
});
