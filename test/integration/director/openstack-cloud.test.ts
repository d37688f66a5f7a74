/**
 * The openstack driver end to end against a fake OpenStack whose servers are
 * real agents (test/fakes/cloud-vm.ts): the driver creates a server, the
 * fake "boots" its user-data, so the built agent starts with the credential
 * that user-data carries and registers with the built server on 127.0.0.1,
 * runs a payload, halts when idle (the server goes SHUTOFF: ended), and the
 * delete removes it and releases its floating IP.
 *
 * Phase A: the server knows no instance credentials yet, so the credential
 * handed to the driver is the shared registration token, as in the process
 * driver's test.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resourcePrefix } from '../../../src/server/director/credential.js';
import { OpenStackDriver } from '../../../src/server/director/drivers/openstack/driver.js';
import { endpointsFrom } from '../../../src/server/director/endpoint-config.js';
import type { OpenStackSettings } from '../../../src/server/director/cloud-settings.js';
import type { CreateRequest } from '../../../src/server/director/ports.js';
import { systemClock } from '../../../src/shared/clock.js';
import { OpenStackFake } from '../../fakes/openstack-fake.js';
import { TEMPLATE_AGENT } from '../../unit/server/delivery/examples.js';
import { driverContract } from '../../unit/server/director/driver-contract.js';
import { PILOT_TOKEN, admin, startServer, tempDir, waitFor, type Server } from '../harness.js';

const tmp = tempDir('vmpilot-openstack-');
afterAll(() => tmp.cleanup());

function openstackDriver(fake: OpenStackFake, endpoint: string): OpenStackDriver {
  const ep = endpointsFrom(
    {
      [endpoint]: {
        driver: 'openstack',
        openstack: {
          authUrl: `${fake.url}/identity/v3`,
          auth: { username: OpenStackFake.user.name, password: OpenStackFake.user.password, project: OpenStackFake.project.name },
          image: 'debian-12',
          network: 'private',
          publicIp: true,
          floatingPool: 'public',
          shapes: { small: { flavor: 'm1.small' } },
        },
        shapes: { small: { cores: 1, memoryMb: 2000 } },
      },
    },
    'test',
  )[0]!;
  return new OpenStackDriver({ settings: ep.driver as OpenStackSettings, prefix: resourcePrefix('test', endpoint), shapes: ep.shapes, agent: TEMPLATE_AGENT, clock: systemClock, deleteWaitMs: 60_000 });
}

const requestFor = (server: Server) => (key: string): CreateRequest => ({
  key,
  shape: 'small',
  cores: 1,
  memoryMb: 2000,
  lifetimeSec: 600,
  bootstrap: { serverUrl: server.url, credential: PILOT_TOKEN, idleTimeoutSec: 2, graceSec: 2, lifetimeSec: 600 },
});

async function runOnePayload(server: Server, text: string): Promise<{ pilotId: number }> {
  const api = admin(server.url);
  const id = await api.submit({ command: ['sh', '-c', `echo ${text}`], group: 'g' });
  await waitFor('the payload to be done', async () => (await api.job(id)).state === 'done', 60_000);
  const job = await api.job(id);
  expect(job.outputTail).toContain(text);
  return { pilotId: job.pilotId as number };
}

driverContract('openstack (fake cloud running real agents)', async () => {
  const server = await startServer(path.join(tmp.dir, 'contract.db'));
  const fake = await new OpenStackFake({ runAgents: { machineDir: path.join(tmp.dir, 'contract-machines') } }).start();
  const d = openstackDriver(fake, 'cloud');
  return {
    driver: d,
    prefix: resourcePrefix('test', 'cloud'),
    other: { driver: openstackDriver(fake, 'other'), prefix: resourcePrefix('test', 'other') },
    request: requestFor(server),
    until: (what, check) => waitFor(what, check, 60_000),
    halt: async () => {
      const { pilotId } = await runOnePayload(server, 'ran on an openstack server');
      await waitFor('its pilot to halt', async () => (await admin(server.url).pilots()).find((p) => p.id === pilotId && p.state === 'halted' && p.shutdownCode === 300), 60_000);
    },
    nothingLeft: async (r) => {
      expect(fake.servers.has(r.id)).toBe(false);
      expect(fake.machineOf(r.key)?.running ?? false).toBe(false);
      expect([...fake.floatingIps.values()].filter((f) => f.description === r.key)).toEqual([]);
    },
    close: async () => {
      await d.close();
      await fake.stop();
      await server.stop();
    },
  };
});

describe('openstack end to end', () => {
  it('create → the agent registers with its credential → runs a payload with its floating IP attached → delete → the server and its floating IP are gone', async () => {
    const server = await startServer(path.join(tmp.dir, 'e2e.db'));
    const fake = await new OpenStackFake({ runAgents: { machineDir: path.join(tmp.dir, 'e2e-machines') } }).start();
    const d = openstackDriver(fake, 'cloud');
    try {
      const key = `${resourcePrefix('test', 'cloud')}e2e1`;
      const created = await d.create({ ...requestFor(server)(key), bootstrap: { ...requestFor(server)(key).bootstrap, idleTimeoutSec: 600 } });
      // the director lists every cycle: the listing that sees it ACTIVE attaches the floating IP
      const listed = await waitFor('the server ACTIVE with a floating IP', async () => (await d.list()).find((r) => r.key === key && r.detail.includes('floating IP')), 60_000);
      expect(listed.state).toBe('running');
      const ip = [...fake.floatingIps.values()].find((f) => f.description === key)!;
      expect(ip.port_id).not.toBeNull();
      const machine = fake.machineOf(key)!;
      expect(machine.facts.credential).toBe(PILOT_TOKEN);
      const { pilotId } = await runOnePayload(server, 'payload on openstack');
      const pilot = (await admin(server.url).pilots()).find((p) => p.id === pilotId)!;
      expect(pilot.state).toBe('running');
      await d.delete(created.id);
      expect(fake.servers.has(created.id)).toBe(false);
      expect(machine.running).toBe(false);
      expect([...fake.floatingIps.values()]).toEqual([]);
      expect((await d.list()).map((r) => r.key)).not.toContain(key);
    } finally {
      await d.close();
      await fake.stop();
      await server.stop();
    }
  }, 120_000);
});
