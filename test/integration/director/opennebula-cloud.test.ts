/**
 * The opennebula driver end to end against a fake OpenNebula whose VMs are
 * real agents (test/fakes/cloud-vm.ts): the driver instantiates a
 * template, the fake boots the user-data of the VM's CONTEXT, so the built
 * agent starts with the credential it carries and registers with the built
 * server on 127.0.0.1, runs a payload, halts when idle (the VM goes
 * POWEROFF: ended), and the delete terminates it (DONE).
 *
 * Phase A: the server knows no instance credentials yet, so the credential
 * handed to the driver is the shared registration token, as in the process
 * driver's test.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { OpenNebulaSettings } from '../../../src/server/director/cloud-settings.js';
import { resourcePrefix } from '../../../src/server/director/credential.js';
import { OpenNebulaDriver } from '../../../src/server/director/drivers/opennebula/driver.js';
import { endpointsFrom } from '../../../src/server/director/endpoint-config.js';
import type { CreateRequest } from '../../../src/server/director/ports.js';
import { systemClock } from '../../../src/shared/clock.js';
import { OpenNebulaFake } from '../../fakes/opennebula-fake.js';
import { TEMPLATE_AGENT } from '../../unit/server/delivery/examples.js';
import { driverContract } from '../../unit/server/director/driver-contract.js';
import { PILOT_TOKEN, admin, startServer, tempDir, waitFor, type Server } from '../harness.js';

const tmp = tempDir('vmpilot-opennebula-');
afterAll(() => tmp.cleanup());

function nebulaDriver(fake: OpenNebulaFake, endpoint: string): OpenNebulaDriver {
  const ep = endpointsFrom(
    { [endpoint]: { driver: 'opennebula', opennebula: { endpoint: fake.url, user: OpenNebulaFake.user.name, password: OpenNebulaFake.user.password, shapes: { small: { templateId: 7 } } }, shapes: { small: { cores: 1, memoryMb: 2048 } } } },
    'test',
  )[0]!;
  return new OpenNebulaDriver({ settings: ep.driver as OpenNebulaSettings, prefix: resourcePrefix('test', endpoint), shapes: ep.shapes, agent: TEMPLATE_AGENT, clock: systemClock, deleteWaitMs: 60_000 });
}

const requestFor = (server: Server, idleTimeoutSec = 2) => (key: string): CreateRequest => ({
  key,
  shape: 'small',
  cores: 1,
  memoryMb: 2048,
  lifetimeSec: 600,
  bootstrap: { serverUrl: server.url, credential: PILOT_TOKEN, idleTimeoutSec, graceSec: 2, lifetimeSec: 600 },
});

async function runOnePayload(server: Server, text: string): Promise<{ pilotId: number }> {
  const api = admin(server.url);
  const id = await api.submit({ command: ['sh', '-c', `echo ${text}`], group: 'g' });
  await waitFor('the payload to be done', async () => (await api.job(id)).state === 'done', 60_000);
  const job = await api.job(id);
  expect(job.outputTail).toContain(text);
  return { pilotId: job.pilotId as number };
}

driverContract('opennebula (fake front-end running real agents)', async () => {
  const server = await startServer(path.join(tmp.dir, 'contract.db'));
  const fake = await new OpenNebulaFake({ runAgents: { machineDir: path.join(tmp.dir, 'contract-machines') } }).start();
  const d = nebulaDriver(fake, 'nebula');
  return {
    driver: d,
    prefix: resourcePrefix('test', 'nebula'),
    other: { driver: nebulaDriver(fake, 'other'), prefix: resourcePrefix('test', 'other') },
    request: requestFor(server),
    until: (what, check) => waitFor(what, check, 60_000),
    halt: async () => {
      const { pilotId } = await runOnePayload(server, 'ran on an opennebula vm');
      await waitFor('its pilot to halt', async () => (await admin(server.url).pilots()).find((p) => p.id === pilotId && p.state === 'halted' && p.shutdownCode === 300), 60_000);
    },
    nothingLeft: async (r) => {
      expect(fake.vms.get(Number(r.id))?.state).toBe(6);
      expect(fake.machineOf(r.key)?.running ?? false).toBe(false);
    },
    close: async () => {
      await d.close();
      await fake.stop();
      await server.stop();
    },
  };
});

describe('opennebula end to end', () => {
  it('create → the agent registers with its credential → runs a payload → delete → the VM is DONE and its agent gone', async () => {
    const server = await startServer(path.join(tmp.dir, 'e2e.db'));
    const fake = await new OpenNebulaFake({ runAgents: { machineDir: path.join(tmp.dir, 'e2e-machines') } }).start();
    const d = nebulaDriver(fake, 'nebula');
    try {
      const key = `${resourcePrefix('test', 'nebula')}e2e1`;
      const created = await d.create(requestFor(server, 600)(key));
      await waitFor('the VM to run', async () => (await d.describe(created.id))?.state === 'running', 60_000);
      const machine = fake.machineOf(key)!;
      expect(machine.facts.credential).toBe(PILOT_TOKEN);
      const { pilotId } = await runOnePayload(server, 'payload on opennebula');
      expect((await admin(server.url).pilots()).find((p) => p.id === pilotId)?.state).toBe('running');
      await d.delete(created.id);
      expect(fake.vms.get(Number(created.id))!.state).toBe(6);
      expect(machine.running).toBe(false);
      // a clean terminate: the agent halted on SIGTERM and said so
      await waitFor('its pilot to halt', async () => (await admin(server.url).pilots()).find((p) => p.id === pilotId && p.state === 'halted'), 60_000);
      expect((await d.list()).map((r) => r.key)).not.toContain(key);
    } finally {
      await d.close();
      await fake.stop();
      await server.stop();
    }
  }, 120_000);
});
