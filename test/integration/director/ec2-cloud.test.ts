/**
 * The ec2 driver end to end on a fake EC2 (test/fakes/ec2-fake.ts: the real
 * SDK client, its calls answered by aws-sdk-client-mock) whose instances are
 * real agents booted from their user-data (test/fakes/cloud-vm.ts), each
 * spot instance with its own fake IMDSv2 (test/fakes/imds-fake.ts): the
 * driver contract with a pilot halting by itself (its machine powers off,
 * which terminates the instance); create → the agent registers with its
 * credential → runs a payload → delete; and a spot interruption notice
 * mid-payload: the payload is evicted and queued again, the agent halts
 * before the interruption, and the instance is gone.
 *
 * Phase A: the server knows no instance credentials yet, so the credential
 * handed to the driver is the shared registration token, as in the process
 * driver's test.
 */
import path from 'node:path';
import type { Instance } from '@aws-sdk/client-ec2';
import { afterAll, describe, expect, it } from 'vitest';
import type { Ec2Settings } from '../../../src/server/director/cloud-settings.js';
import { resourcePrefix } from '../../../src/server/director/credential.js';
import { Ec2Driver } from '../../../src/server/director/drivers/ec2/driver.js';
import { endpointsFrom } from '../../../src/server/director/endpoint-config.js';
import type { CreateRequest } from '../../../src/server/director/ports.js';
import { systemClock } from '../../../src/shared/clock.js';
import { Ec2Fake } from '../../fakes/ec2-fake.js';
import { ImdsFake } from '../../fakes/imds-fake.js';
import { TEMPLATE_AGENT } from '../../unit/server/delivery/examples.js';
import { driverContract } from '../../unit/server/director/driver-contract.js';
import { PILOT_TOKEN, admin, startServer, tempDir, waitFor, type Server } from '../harness.js';

const tmp = tempDir('vmpilot-ec2-');
afterAll(() => tmp.cleanup());

/** A fake EC2 running real agents, one fake metadata service per spot instance. */
function cloud(dir: string): { fake: Ec2Fake; imds: Map<string, ImdsFake>; stop: () => Promise<void> } {
  const imds = new Map<string, ImdsFake>();
  const fake = new Ec2Fake({
    bootMs: 100,
    runAgents: {
      machineDir: dir,
      extraArgs: async (i: Instance) => {
        if (i.InstanceLifecycle !== 'spot') return [];
        // a metadata service of its own, started before its agent asks it anything
        const m = await new ImdsFake().start();
        imds.set(i.InstanceId!, m);
        return ['--metadata-url', m.url];
      },
    },
  });
  fake.spotPrices = new Map([['m5.large eu-west-1a', '0.040000'], ['m5.large eu-west-1b', '0.045000']]);
  return {
    fake,
    imds,
    stop: async () => {
      await fake.stop();
      await Promise.all([...imds.values()].map((m) => m.stop()));
    },
  };
}

function ec2Driver(fake: Ec2Fake, endpoint: string): Ec2Driver {
  const ep = endpointsFrom(
    {
      [endpoint]: {
        driver: 'ec2',
        ec2: { region: 'eu-west-1', imageId: 'ami-0123456789abcdef0', subnets: { 'eu-west-1a': 'subnet-0a1a1a1a', 'eu-west-1b': 'subnet-0b2b2b2b' }, onDemandPrices: { 'm5.large': 0.107 }, shapes: { spot: { instanceTypes: ['m5.large'], market: 'spot' }, od: { instanceTypes: ['m5.large'] } } },
        shapes: { spot: { cores: 1, memoryMb: 2000, price: { from: 'driver' } }, od: { cores: 1, memoryMb: 1900, costPerHour: 0.107 } },
      },
    },
    'test',
  )[0]!;
  return new Ec2Driver({ settings: ep.driver as Ec2Settings, prefix: resourcePrefix('test', endpoint), directorId: 'test', endpoint, shapes: ep.shapes, agent: TEMPLATE_AGENT, clock: systemClock, client: fake.client });
}

const requestFor = (server: Server, shape = 'od', idleTimeoutSec = 2) => (key: string): CreateRequest => ({
  key,
  shape,
  cores: 1,
  memoryMb: shape === 'od' ? 1900 : 2000,
  lifetimeSec: 600,
  bootstrap: { serverUrl: server.url, credential: PILOT_TOKEN, idleTimeoutSec, graceSec: 2, lifetimeSec: 600 },
});

driverContract('ec2 (fake EC2 running real agents)', async () => {
  const server = await startServer(path.join(tmp.dir, 'contract.db'));
  const c = cloud(path.join(tmp.dir, 'contract-machines'));
  const d = ec2Driver(c.fake, 'aws');
  return {
    driver: d,
    prefix: resourcePrefix('test', 'aws'),
    other: { driver: ec2Driver(c.fake, 'other'), prefix: resourcePrefix('test', 'other') },
    request: requestFor(server),
    until: (what, check) => waitFor(what, check, 60_000),
    halt: async () => {
      const api = admin(server.url);
      const id = await api.submit({ command: ['sh', '-c', 'echo ran on an ec2 instance'], group: 'g' });
      await waitFor('the payload to be done', async () => (await api.job(id)).state === 'done', 60_000);
      const job = await api.job(id);
      expect(job.outputTail).toContain('ran on an ec2 instance');
      await waitFor('its pilot to halt', async () => (await api.pilots()).find((p) => p.id === job.pilotId && p.state === 'halted' && p.shutdownCode === 300), 60_000);
    },
    nothingLeft: async (r) => {
      expect(c.fake.instances.get(r.id)!.instance.State?.Name).toBe('terminated');
      expect(c.fake.machineOf(r.key)?.running ?? false).toBe(false);
    },
    close: async () => {
      await d.close();
      await c.stop();
      await server.stop();
    },
  };
});

describe('ec2 end to end', () => {
  it('create → the agent registers with its credential → runs a payload → delete → terminated, its agent gone', async () => {
    const server = await startServer(path.join(tmp.dir, 'e2e.db'));
    const c = cloud(path.join(tmp.dir, 'e2e-machines'));
    const d = ec2Driver(c.fake, 'aws');
    try {
      const key = `${resourcePrefix('test', 'aws')}e2e1`;
      const created = await d.create(requestFor(server, 'od', 600)(key));
      await waitFor('the instance to run', async () => (await d.describe(created.id))?.state === 'running', 60_000);
      expect(c.fake.machineOf(key)!.facts.credential).toBe(PILOT_TOKEN);
      const api = admin(server.url);
      const id = await api.submit({ command: ['sh', '-c', 'echo payload on ec2'], group: 'g' });
      await waitFor('the payload to be done', async () => (await api.job(id)).state === 'done', 60_000);
      const job = await api.job(id);
      expect(job.outputTail).toContain('payload on ec2');
      await d.delete(created.id);
      expect((await d.list()).map((r) => r.key)).not.toContain(key);
      // terminated: the machine shuts down, its agent halts on the SIGTERM and says so
      await waitFor('its agent to stop', () => !c.fake.machineOf(key)!.running, 60_000);
      await waitFor('its pilot to halt', async () => (await api.pilots()).find((p) => p.id === job.pilotId && p.state === 'halted'), 60_000);
    } finally {
      await d.close();
      await c.stop();
      await server.stop();
    }
  }, 120_000);

  it('a spot instance: the interruption notice mid-payload evicts the payload (queued again), the agent halts before it, the instance is gone', async () => {
    const server = await startServer(path.join(tmp.dir, 'spot.db'), ['--heartbeat-interval', '1']);
    const c = cloud(path.join(tmp.dir, 'spot-machines'));
    const d = ec2Driver(c.fake, 'aws');
    try {
      expect(await d.shapePrice('spot')).toBe(0.04);
      const key = `${resourcePrefix('test', 'aws')}spot1`;
      const created = await d.create(requestFor(server, 'spot', 3600)(key));
      expect(c.fake.runCalls.at(-1)).toMatchObject({ InstanceType: 'm5.large', SubnetId: 'subnet-0a1a1a1a', InstanceMarketOptions: { MarketType: 'spot' } });
      const api = admin(server.url);
      const id = await api.submit({ command: ['sh', '-c', 'echo started; sleep 300'], group: 'g' });
      await waitFor('the payload to run', async () => (await api.job(id)).state === 'running', 60_000);
      const imds = c.imds.get(created.id)!;
      await waitFor('the agent to look for a notice', () => imds.noticeGets > 0, 60_000);
      const interruptAt = Date.now() + 15_000;
      imds.notice = { action: 'terminate', time: new Date(interruptAt) };
      const machine = c.fake.machineOf(key)!;
      await machine.exited;
      expect(machine.exit?.code, machine.log.slice(-3000)).toBe(0);
      expect(Date.now()).toBeLessThan(interruptAt);
      expect(await api.job(id)).toMatchObject({ state: 'queued', evictions: 1 });
      // its machine powered off: the instance terminated itself, and is no longer listed
      await waitFor('the instance to be gone from the listing', async () => !(await d.list()).some((r) => r.key === key), 60_000);
      expect(c.fake.instances.get(created.id)!.instance.StateReason?.Code).toBe('Client.InstanceInitiatedShutdown');
    } finally {
      await d.close();
      await c.stop();
      await server.stop();
    }
  }, 120_000);
});
