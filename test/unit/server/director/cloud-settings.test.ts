/**
 * The cloud drivers' settings in `serve --config` (cloud-settings.ts): a
 * full endpoint of each read with its defaults, and every kind of bad value
 * refused with VMP_CONFIG naming its full key, the value and what was
 * expected.
 */
import { describe, expect, it } from 'vitest';
import { endpointsFrom } from '../../../../src/server/director/endpoint-config.js';
import { isVmpilotError } from '../../../../src/shared/errors.js';

const ec2 = {
  driver: 'ec2',
  ec2: {
    region: 'eu-west-1',
    imageId: 'ami-0123456789abcdef0',
    subnets: { 'eu-west-1a': 'subnet-0a1a1a1a' },
    securityGroupIds: ['sg-0a0b0c0d'],
    onDemandPrices: { 'm5.xlarge': 0.214 },
    shapes: { m: { instanceTypes: ['m5.xlarge', 'm5a.xlarge'], market: 'spot', maxPrice: 0.1 } },
  },
  shapes: { m: { cores: 4, memoryMb: 16000, price: { from: 'driver' } } },
};
const openstack = {
  driver: 'openstack',
  openstack: {
    authUrl: 'https://keystone.example.org:5000/v3/',
    auth: { username: 'pilot', passwordFile: '/etc/vmpilot/openstack-password', project: 'physics' },
    image: 'debian-12',
    network: 'private',
    publicIp: true,
    floatingPool: 'public',
    shapes: { m: { flavor: 'm1.large' } },
  },
  shapes: { m: { cores: 4, memoryMb: 8000, costPerHour: 0.12 } },
};
const opennebula = {
  driver: 'opennebula',
  opennebula: { endpoint: 'https://one.example.org:2633/RPC2', user: 'pilot', passwordFile: '/etc/vmpilot/one-password', shapes: { m: { templateId: 7 } } },
  shapes: { m: { cores: 2, memoryMb: 4096 } },
};

const configError = (raw: unknown): string => {
  try {
    endpointsFrom(raw, 'server.yaml');
  } catch (err) {
    expect(isVmpilotError(err, 'VMP_CONFIG'), String(err)).toBe(true);
    return (err as Error).message;
  }
  throw new Error('no error');
};
const withEc2 = (o: Record<string, unknown>) => ({ a: { ...ec2, ec2: { ...ec2.ec2, ...o } } });
const withOs = (o: Record<string, unknown>) => ({ a: { ...openstack, openstack: { ...openstack.openstack, ...o } } });

describe('cloud endpoints in serve --config', () => {
  it('reads an endpoint of each cloud with its defaults', () => {
    const [a, b, c] = endpointsFrom({ aws: ec2, os: openstack, one: opennebula }, 'server.yaml');
    expect(a!.driver).toEqual({
      kind: 'ec2', region: 'eu-west-1', endpoint: null, profile: null, imageId: 'ami-0123456789abcdef0', subnets: { 'eu-west-1a': 'subnet-0a1a1a1a' }, zones: [], securityGroupIds: ['sg-0a0b0c0d'],
      keyName: null, instanceProfile: null, productDescription: 'Linux/UNIX', onDemandPrices: { 'm5.xlarge': 0.214 }, priceCacheSec: 300, capacityBackoffSec: 180, tags: {},
      shapes: { m: { instanceTypes: ['m5.xlarge', 'm5a.xlarge'], market: 'spot', maxPrice: 0.1, imageId: null } },
    });
    expect(a!.shapes[0]!.price).toEqual({ file: null, key: 'm', maxAgeSec: 0 });
    expect(b!.driver).toMatchObject({ kind: 'openstack', authUrl: 'https://keystone.example.org:5000/v3', interface: 'public', region: null, auth: { method: 'password', userDomain: 'Default', projectDomain: 'Default', password: { file: '/etc/vmpilot/openstack-password' } }, publicIp: true });
    expect(c!.driver).toMatchObject({ kind: 'opennebula', user: 'pilot', password: { file: '/etc/vmpilot/one-password' }, shapes: { m: { templateId: 7 } } });
    const [app] = endpointsFrom({ os: { ...openstack, openstack: { ...openstack.openstack, auth: { id: 'ac0123', secret: 's3cret' } } } }, 'f');
    expect(app!.driver).toMatchObject({ auth: { method: 'application-credential', id: 'ac0123', secret: { value: 's3cret' } } });
  });

  it('names the full key of every bad value', () => {
    expect(configError(withEc2({ imageId: 'debian' }))).toBe('server.yaml: endpoints.a.ec2.imageId is "debian"; expected an image id (ami-0123abcd…)');
    expect(configError(withEc2({ shapes: { m: { instanceTypes: [] } } }))).toBe('server.yaml: endpoints.a.ec2.shapes.m.instanceTypes is missing; name at least one instance type, e.g. instanceTypes: [m5.xlarge]');
    expect(configError(withEc2({ shapes: { m: { instanceTypes: ['m5.xlarge', 'm5a.xlarge'], market: 'any' } } }))).toBe('server.yaml: endpoints.a.ec2.onDemandPrices.m5a.xlarge is missing: shape m may buy m5a.xlarge on demand (market any), which needs its price per hour');
    expect(configError(withEc2({ shapes: { m: { instanceTypes: ['m5.xlarge'], market: 'cheap' } } }))).toBe('server.yaml: endpoints.a.ec2.shapes.m.market is "cheap"; expected spot, on-demand or any');
    expect(configError(withEc2({ shapes: { other: { instanceTypes: ['m5.xlarge'] } } }))).toBe('server.yaml: endpoints.a.ec2.shapes.m is missing: shape m needs its ec2 settings (instanceTypes)');
    expect(configError(withEc2({ shapes: { m: { instanceTypes: ['m5.xlarge'] }, n: { instanceTypes: ['m5.xlarge'] } } }))).toBe('server.yaml: endpoints.a.ec2.shapes.n is not a shape of this endpoint (its shapes: m)');
    expect(configError(withEc2({ zones: ['eu-west-1b'] }))).toBe('server.yaml: endpoints.a.ec2.zones and subnets exclude each other: with subnets, the zones are their keys');
    expect(configError(withEc2({ subnets: { 'eu-west-1a': 'net-1' } }))).toBe('server.yaml: endpoints.a.ec2.subnets.eu-west-1a is "net-1"; expected a subnet id (subnet-0123abcd…)');
    expect(configError(withEc2({ tags: { 'aws:owner': 'me' } }))).toBe('server.yaml: endpoints.a.ec2.tags.aws:owner is not a tag key (not starting with aws:)');
    expect(configError(withEc2({ endpoint: 'ec2.example.org' }))).toBe('server.yaml: endpoints.a.ec2.endpoint is "ec2.example.org"; expected an http:// or https:// URL');
    expect(configError(withEc2({ accessKey: 'AKIA…' }))).toMatch(/^server\.yaml: endpoints\.a\.ec2\.accessKey is not a known key \(known under endpoints\.a\.ec2: region, endpoint, profile,/);
    expect(configError(withOs({ publicIp: true, floatingPool: undefined }))).toBe('server.yaml: endpoints.a.openstack.floatingPool is missing: publicIp takes its floating IPs from this external network (name or id)');
    expect(configError(withOs({ auth: { username: 'u', password: 'p', passwordFile: '/p', project: 'x' } }))).toBe('server.yaml: endpoints.a.openstack.auth.passwordFile and password exclude each other: give the secret, or the file that holds it');
    expect(configError(withOs({ auth: { username: 'u', project: 'x' } }))).toBe('server.yaml: endpoints.a.openstack.auth.password is missing; give passwordFile (a file only the server can read) or password');
    expect(configError(withOs({ auth: { id: 'ac1', secret: 's', project: 'x' } }))).toBe('server.yaml: endpoints.a.openstack.auth.project is not used with method application-credential (it takes id, secret, secretFile)');
    expect(configError(withOs({ authUrl: 'keystone:5000' }))).toMatch(/^server\.yaml: endpoints\.a\.openstack\.authUrl is "keystone:5000"; expected an http:\/\/ or https:\/\/ URL of Keystone v3/);
    expect(configError(withOs({ shapes: { m: { flavour: 'm1.large' } } }))).toBe('server.yaml: endpoints.a.openstack.shapes.m.flavour is not a known key (known under endpoints.a.openstack.shapes.m: flavor, image)');
    expect(configError({ a: { ...opennebula, opennebula: { ...opennebula.opennebula, shapes: { m: { templateId: 'seven' } } } } })).toBe('server.yaml: endpoints.a.opennebula.shapes.m.templateId is "seven"; expected a whole number from 0 to 2147483647');
    expect(configError({ a: { ...opennebula, opennebula: { ...opennebula.opennebula, user: 'pi:lot' } } })).toBe('server.yaml: endpoints.a.opennebula.user is "pi:lot"; expected a user name (no spaces or colons)');
    expect(configError({ a: { ...ec2, shapes: { m: { cores: 4, memoryMb: 16000, price: { from: 'driver', file: '/p.json' } } } } })).toBe('server.yaml: endpoints.a.shapes.m.price.file is for a price file, not from: driver');
    expect(configError({ a: { ...ec2, shapes: { m: { cores: 4, memoryMb: 16000, price: { from: 'spot' } } } } })).toBe('server.yaml: endpoints.a.shapes.m.price.from is "spot"; expected file or driver');
  });

  it('a cloud shape may live shorter than a batch job', () => {
    const [e] = endpointsFrom({ a: { ...opennebula, shapes: { m: { cores: 1, memoryMb: 512, lifetimeSec: 60 } } } }, 'f');
    expect(e!.shapes[0]!.lifetimeSec).toBe(60);
  });
});
