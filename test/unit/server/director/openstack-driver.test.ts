/**
 * The openstack driver against a fake OpenStack (test/fakes/openstack-fake.ts)
 * over real HTTP on 127.0.0.1: the driver contract, then what is particular
 * to it: the log-in with a password or an application credential, a token
 * renewed when it expires, the quota refused before a create, names
 * resolved to ids, the server's body, and the floating IP of publicIp.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpointsFrom } from '../../../../src/server/director/endpoint-config.js';
import type { OpenStackSettings } from '../../../../src/server/director/cloud-settings.js';
import { OpenStackDriver } from '../../../../src/server/director/drivers/openstack/driver.js';
import { resourcePrefix } from '../../../../src/server/director/credential.js';
import type { CreateRequest } from '../../../../src/server/director/ports.js';
import { systemClock } from '../../../../src/shared/clock.js';
import { isVmpilotError } from '../../../../src/shared/errors.js';
import { bootFacts } from '../../../fakes/cloud-vm.js';
import { OpenStackFake } from '../../../fakes/openstack-fake.js';
import { TEMPLATE_AGENT } from '../delivery/examples.js';
import { driverContract } from './driver-contract.js';

const SHAPES = { small: { cores: 1, memoryMb: 2000 }, medium: { cores: 2, memoryMb: 4000 } };

/** The endpoint's settings, as `serve --config` reads them. */
function settings(url: string, extra: Record<string, unknown> = {}): { settings: OpenStackSettings; shapes: { name: string; cores: number; memoryMb: number }[] } {
  const ep = endpointsFrom(
    {
      cloud: {
        driver: 'openstack',
        openstack: {
          authUrl: `${url}/identity/v3`,
          auth: { username: OpenStackFake.user.name, password: OpenStackFake.user.password, project: OpenStackFake.project.name },
          image: 'debian-12',
          network: 'private',
          shapes: { small: { flavor: 'm1.small' }, medium: { flavor: '2' } },
          ...extra,
        },
        shapes: SHAPES,
      },
    },
    'test',
  )[0]!;
  return { settings: ep.driver as OpenStackSettings, shapes: [...ep.shapes] };
}

const request = (key: string, shape = 'small'): CreateRequest => ({
  key,
  shape,
  cores: SHAPES[shape as 'small'].cores,
  memoryMb: SHAPES[shape as 'small'].memoryMb,
  lifetimeSec: 3600,
  bootstrap: { serverUrl: 'http://127.0.0.1:9', credential: 'vmpi_testcredential0123456789', idleTimeoutSec: 60, graceSec: 5, lifetimeSec: 3600 },
});

function driver(fake: OpenStackFake, endpoint = 'cloud', extra: Record<string, unknown> = {}): OpenStackDriver {
  return new OpenStackDriver({ ...settings(fake.url, extra), prefix: resourcePrefix('test', endpoint), agent: TEMPLATE_AGENT, clock: systemClock, deleteWaitMs: 20_000 });
}

const until = async <T,>(what: string, check: () => Promise<T | false | undefined>): Promise<T> => {
  const end = Date.now() + 20_000;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

driverContract('openstack (fake cloud)', async () => {
  const fake = await new OpenStackFake({ bootMs: 100 }).start();
  const a = driver(fake, 'cloud', { publicIp: true, floatingPool: 'public' });
  const b = driver(fake, 'other');
  return {
    driver: a,
    prefix: resourcePrefix('test', 'cloud'),
    other: { driver: b, prefix: resourcePrefix('test', 'other') },
    request,
    until,
    nothingLeft: async (r) => {
      expect(fake.servers.has(r.id)).toBe(false);
      expect([...fake.floatingIps.values()].filter((f) => f.description === r.key)).toEqual([]);
    },
    close: async () => {
      await a.close();
      await b.close();
      await fake.stop();
    },
  };
});

describe('openstack driver', () => {
  let fake: OpenStackFake;
  beforeAll(async () => {
    fake = await new OpenStackFake({ bootMs: 50, limits: { maxTotalCores: 3, maxTotalInstances: 10, maxTotalRAMSize: 51200 } }).start();
  });
  afterAll(async () => {
    await fake.stop();
  });

  it('creates a server with ids resolved from names, base64 user-data holding the credential, and its key in name and metadata', async () => {
    const d = driver(fake);
    const key = `${resourcePrefix('test', 'cloud')}body1`;
    const r = await d.create(request(key, 'medium'));
    const s = fake.servers.get(r.id)!;
    expect(s).toMatchObject({ name: key, flavorId: '2', imageId: fake.images[0]!.id, networkId: fake.networks[0]!.id, metadata: { 'vmpilot-key': key, 'vmpilot-prefix': resourcePrefix('test', 'cloud') } });
    expect(bootFacts(s.userData)).toMatchObject({ credential: 'vmpi_testcredential0123456789', configDoc: { server: 'http://127.0.0.1:9', cores: 2, halt: 'poweroff' } });
    expect(r).toMatchObject({ key, state: 'pending' });
    await until('it to run', async () => (await d.describe(r.id))?.state === 'running');
    await d.delete(r.id);
    await d.close();
  });

  it('refuses a create past the project quota, naming it and the numbers, before asking for a server', async () => {
    const d = driver(fake);
    const p = resourcePrefix('test', 'cloud');
    const first = await d.create(request(`${p}quota1`, 'medium'));
    const before = fake.requests.filter((x) => x === 'POST /compute/v2.1/servers').length;
    const err = await d.create(request(`${p}quota2`, 'medium')).catch((e: unknown) => e);
    expect(isVmpilotError(err, 'VMP_DRIVER')).toBe(true);
    expect((err as Error).message).toBe('openstack: quota exceeded: cores: 2 of 3 in use, flavour m1.medium needs 2');
    expect(fake.requests.filter((x) => x === 'POST /compute/v2.1/servers').length).toBe(before);
    await d.delete(first.id);
    await d.close();
  });

  it('says what Keystone said when the login is refused, and logs in with an application credential', async () => {
    const bad = new OpenStackDriver({ ...settings(fake.url, { auth: { username: 'pilot', password: 'wrong', project: 'physics' } }), prefix: resourcePrefix('test', 'cloud'), agent: TEMPLATE_AGENT, clock: systemClock });
    const err = await bad.list().catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^openstack: Keystone refused the login \(user pilot, project physics\) at http:\/\/127\.0\.0\.1:\d+\/identity\/v3\/auth\/tokens: HTTP 401: Unauthorized: The request you have made requires authentication\.$/);
    await bad.close();
    const app = new OpenStackDriver({ ...settings(fake.url, { auth: { method: 'application-credential', id: OpenStackFake.appCredential.id, secret: OpenStackFake.appCredential.secret } }), prefix: resourcePrefix('test', 'cloud'), agent: TEMPLATE_AGENT, clock: systemClock });
    expect(await app.list()).toEqual([]);
    await app.close();
  });

  it('names an unknown flavour or image with where to look', async () => {
    const d = new OpenStackDriver({ ...settings(fake.url, { image: 'no-such-image' }), prefix: resourcePrefix('test', 'cloud'), agent: TEMPLATE_AGENT, clock: systemClock });
    await expect(d.create(request(`${resourcePrefix('test', 'cloud')}img1`))).rejects.toThrow('openstack: no active image no-such-image (by name or id); `openstack image list` shows them');
    await d.close();
    const f = new OpenStackDriver({ ...settings(fake.url, { shapes: { small: { flavor: 'm9.huge' }, medium: { flavor: '2' } } }), prefix: resourcePrefix('test', 'cloud'), agent: TEMPLATE_AGENT, clock: systemClock });
    await expect(f.create(request(`${resourcePrefix('test', 'cloud')}fl1`))).rejects.toThrow('openstack: no flavour m9.huge (by name or id) in this project; `openstack flavor list` shows them');
    await f.close();
  });

  it('logs in again at once when a service refuses its token (revoked), and goes on', async () => {
    const d = driver(fake);
    await d.list();
    const issued = fake.tokensIssued;
    fake.tokens.clear();
    expect(await d.list()).toEqual([]);
    expect(fake.tokensIssued).toBe(issued + 1);
    await d.close();
  });

  it('logs in again when its token is near its end', async () => {
    const short = await new OpenStackFake({ tokenTtlMs: 300 }).start();
    try {
      const d = driver(short);
      await d.list();
      const issued = short.tokensIssued;
      await new Promise((r) => setTimeout(r, 400)); // the fake's token lifetime
      await d.list();
      expect(short.tokensIssued).toBe(issued + 1);
      await d.close();
    } finally {
      await short.stop();
    }
  });

  it('publicIp: a floating IP from the pool once the server is ACTIVE, the same one kept, released with the server; a stray one of ours is released', async () => {
    const d = driver(fake, 'cloud', { publicIp: true, floatingPool: 'public' });
    const key = `${resourcePrefix('test', 'cloud')}fip1`;
    const r = await d.create(request(key));
    const listed = await until('a floating IP', async () => (await d.list()).find((x) => x.key === key && x.detail.includes('floating IP')));
    expect(listed.detail).toMatch(/^ACTIVE: floating IP 203\.0\.113\.\d+$/);
    const ips = [...fake.floatingIps.values()].filter((f) => f.description === key);
    expect(ips).toHaveLength(1);
    expect(ips[0]!.floating_network_id).toBe(fake.networks[1]!.id);
    await d.list();
    expect([...fake.floatingIps.values()].filter((f) => f.description === key)).toHaveLength(1);
    await d.delete(r.id);
    expect([...fake.floatingIps.values()].filter((f) => f.description === key)).toEqual([]);
    // a delete that died after the server went but before the release: the next listing releases it
    fake.floatingIps.set('stray', { id: 'stray', floating_ip_address: '203.0.113.99', floating_network_id: fake.networks[1]!.id, port_id: null, description: `${resourcePrefix('test', 'cloud')}gone1` });
    fake.floatingIps.set('theirs', { id: 'theirs', floating_ip_address: '203.0.113.98', floating_network_id: fake.networks[1]!.id, port_id: null, description: 'someone else' });
    await d.list();
    expect([...fake.floatingIps.keys()]).toEqual(['theirs']);
    await d.close();
  });
});
