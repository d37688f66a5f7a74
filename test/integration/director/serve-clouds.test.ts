/**
 * The director as `serve` runs it, against each fake cloud: one built
 * server with a `--config` holding an `openstack`, an `opennebula` and an
 * `ec2` endpoint, each pointing at its fake (test/fakes/: OpenStackFake
 * over HTTP, OpenNebulaFake over XML-RPC, Ec2QueryFake over the EC2 Query
 * API, since the server's SDK client is in another process and cannot be
 * mocked in this one), each serving one group. A payload of that group is
 * queued → the server's director creates an instance at that cloud with
 * user-data carrying that instance's own credential and the marks of ours
 * (metadata, labels, tags) → the fake "boots" it as a real agent process →
 * the agent registers with that credential (its pilot is the instance's) →
 * the payload runs → the pilot halts when idle → the director deletes the
 * instance, and nothing of it is left at the cloud (OpenStack: its floating
 * IP released too).
 */
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Instance } from '@aws-sdk/client-ec2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { InstanceDetailReply, InstanceView } from '../../../src/protocol/index.js';
import { bootFacts } from '../../fakes/cloud-vm.js';
import { EC2_QUERY_CREDENTIALS, Ec2QueryFake } from '../../fakes/ec2-query-fake.js';
import { ImdsFake } from '../../fakes/imds-fake.js';
import { OpenNebulaFake } from '../../fakes/opennebula-fake.js';
import { OpenStackFake } from '../../fakes/openstack-fake.js';
import { PILOT_TOKEN, admin, killProcessesWith, startServer, tempDir, waitFor, type Server } from '../harness.js';

const tmp = tempDir('vmpilot-serve-clouds-');
// the agents run as root and their payloads as slot accounts, which must pass through to their directories
chmodSync(tmp.dir, 0o711);

const WAIT = 25_000;
let server: Server;
let openstack: OpenStackFake;
let nebula: OpenNebulaFake;
let ec2: Ec2QueryFake;
const imds = new Map<string, ImdsFake>();

beforeAll(async () => {
  openstack = await new OpenStackFake({ bootMs: 100, deleteMs: 100, runAgents: { machineDir: path.join(tmp.dir, 'openstack') } }).start();
  nebula = await new OpenNebulaFake({ bootMs: 100, runAgents: { machineDir: path.join(tmp.dir, 'opennebula') } }).start();
  ec2 = await new Ec2QueryFake({
    bootMs: 100,
    runAgents: {
      machineDir: path.join(tmp.dir, 'ec2'),
      // a spot instance's agent watches the interruption notice: a metadata service of its own
      extraArgs: async (i: Instance) => {
        const m = await new ImdsFake().start();
        imds.set(i.InstanceId!, m);
        return ['--metadata-url', m.url];
      },
    },
  }).start();
  ec2.ec2.spotPrices = new Map([['m5.large eu-west-1a', '0.040000'], ['m5.large eu-west-1b', '0.045000']]);
  const timeouts = '{ idleSec: 2, payloadGraceSec: 2 }';
  const config = path.join(tmp.dir, 'clouds.yaml');
  writeFileSync(
    config,
    `directorCycleSec: 1
endpoints:
  os:
    driver: openstack
    openstack:
      authUrl: ${openstack.url}/identity/v3
      auth: { username: ${OpenStackFake.user.name}, password: ${OpenStackFake.user.password}, project: ${OpenStackFake.project.name} }
      image: debian-12
      network: private
      publicIp: true
      floatingPool: public
      shapes: { small: { flavor: m1.small } }
    shapes: { small: { cores: 1, memoryMb: 2000, costPerHour: 0.02 } }
    groups: { osgroup: {} }
    # idle long enough for a listing to see it ACTIVE and attach its floating IP
    timeouts: { idleSec: 5, payloadGraceSec: 2 }
  one:
    driver: opennebula
    opennebula: { endpoint: ${nebula.url}, user: ${OpenNebulaFake.user.name}, password: ${OpenNebulaFake.user.password}, shapes: { small: { templateId: 7 } } }
    shapes: { small: { cores: 1, memoryMb: 2048, costPerHour: 0.01 } }
    groups: { onegroup: {} }
    timeouts: ${timeouts}
  aws:
    driver: ec2
    ec2:
      region: eu-west-1
      endpoint: ${ec2.url}
      imageId: ami-0123456789abcdef0
      subnets: { eu-west-1a: subnet-0a1a1a1a, eu-west-1b: subnet-0b2b2b2b }
      onDemandPrices: { m5.large: 0.107 }
      shapes: { spot: { instanceTypes: [m5.large], market: spot } }
    shapes: { spot: { cores: 1, memoryMb: 2000, price: { from: driver } } }
    groups: { awsgroup: {} }
    timeouts: ${timeouts}
`,
  );
  // the AWS chain of the server: these credentials in its environment, no shared files
  server = await startServer(path.join(tmp.dir, 'clouds.db'), ['--config', config], { env: { ...EC2_QUERY_CREDENTIALS, AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent' } });
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await Promise.all([openstack?.stop(), nebula?.stop(), ec2?.stop(), ...[...imds.values()].map((m) => m.stop())]);
  killProcessesWith(tmp.dir);
  tmp.cleanup();
});

afterEach(() => {
  // the next test shares the server: it must still be serving
  if (server.child.exitCode !== null || server.child.signalCode !== null) throw new Error(`the server ended: ${server.stderr()}`);
});

async function get<T>(route: string): Promise<T> {
  const r = await admin(server.url).call<T>('GET', route);
  if (r.status !== 200) throw new Error(`GET ${route} → ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/**
 * Queue a payload of `group`, wait for the director's instance at `endpoint`
 * to be deleted after running it; returns the instance as it ended, the
 * user-data its machine was given and the payload's pilot.
 */
async function roundTrip(group: string, endpoint: string, userDataOf: (i: InstanceView) => string | undefined, whileRunning: (i: InstanceView) => Promise<void> = async () => {}) {
  const api = admin(server.url);
  const text = `ran on ${endpoint} for ${group}`;
  const job = await api.submit({ command: ['sh', '-c', `echo ${text}`], group });
  const made = await waitFor(`the director's instance at ${endpoint}`, async () => (await get<InstanceView[]>('/v1/instances')).find((i) => i.endpoint === endpoint), WAIT);
  expect(made).toMatchObject({ forGroup: group, manual: false, groups: [group] });
  const userData = await waitFor(`the ${endpoint} machine's user-data`, () => userDataOf(made), WAIT);
  const facts = bootFacts(userData);
  // its own one-time credential, not the shared registration token
  expect(facts.credential).not.toBe(PILOT_TOKEN);
  expect(facts.credential.length).toBeGreaterThan(20);
  expect(JSON.stringify(facts.configDoc)).toContain(server.url);

  await waitFor(`the ${group} payload to be done`, async () => (await api.job(job)).state === 'done', WAIT);
  const done = await api.job(job);
  expect(done.outputTail).toContain(text);
  const pilot = (await api.pilots()).find((p) => p.id === done.pilotId)!;
  // the pilot that ran it registered with that instance's credential
  expect(pilot.instanceId).toBe(made.id);
  await whileRunning(made);

  const deleted = await waitFor(`the ${endpoint} instance to be deleted`, async () => {
    const i = await get<InstanceDetailReply>(`/v1/instances/${made.id}`);
    return i.state === 'deleted' && i;
  }, WAIT);
  expect(deleted.history.map((h) => h.state)).toEqual(expect.arrayContaining(['requested', 'registered', 'halted', 'deleted']));
  expect(deleted.pilot).toEqual({ id: pilot.id, state: 'halted' });
  return { instance: deleted, facts };
}

describe('the director in serve, on each fake cloud', () => {
  it('openstack: a server with our metadata and its floating IP, a real agent registering with its credential, the payload run, the server deleted and its floating IP released', async () => {
    const serverOf = (i: InstanceView) => [...openstack.servers.values()].find((s) => s.name === i.key);
    const seen: { metadata?: Record<string, string> } = {};
    const attached = (i: InstanceView) => waitFor('its floating IP attached while it runs', () => [...openstack.floatingIps.values()].find((f) => f.description === i.key && f.port_id !== null), WAIT).then(() => undefined);
    const { instance } = await roundTrip('osgroup', 'os', (i) => {
      const s = serverOf(i);
      if (!s) return undefined;
      seen.metadata = { ...s.metadata };
      return s.userData;
    }, attached);
    expect(seen.metadata).toMatchObject({ 'vmpilot-key': instance.key });
    // nothing of it is left: neither the server nor its floating IP
    expect(instance.driverId).not.toBeNull();
    expect(openstack.servers.has(instance.driverId!)).toBe(false);
    expect([...openstack.floatingIps.values()]).toEqual([]);
    expect(openstack.machineOf(instance.key)).toBeNull();
  }, 60_000);

  it('opennebula: a VM from the template with the user-data in its CONTEXT and our labels, a real agent registering with its credential, the payload run, the VM terminated', async () => {
    const vmOf = (i: InstanceView) => [...nebula.vms.values()].find((v) => v.name === i.key);
    const { instance } = await roundTrip('onegroup', 'one', (i) => {
      const v = vmOf(i);
      return v?.context.USER_DATA === undefined ? undefined : v.context.USERDATA_ENCODING === 'base64' ? Buffer.from(v.context.USER_DATA, 'base64').toString('utf8') : v.context.USER_DATA;
    });
    const vm = vmOf(instance)!;
    expect(vm.templateId).toBe(7);
    expect(vm.userTemplate).toMatchObject({ VMPILOT_KEY: instance.key });
    expect(vm.userTemplate.LABELS).toContain('vmpilot');
    // DONE, and its agent gone
    expect(vm.state).toBe(6);
    expect(vm.machine?.running).toBe(false);
  }, 60_000);

  it('ec2: a spot instance at the cheaper zone from the spot price history, tagged as ours, a real agent registering with its credential, the payload run, the instance terminated', async () => {
    const fake = ec2.ec2;
    const instanceOf = (i: InstanceView) => [...fake.instances.values()].find((f) => f.instance.Tags?.some((t) => t.Key === 'vmpilot:key' && t.Value === i.key));
    const { instance } = await roundTrip('awsgroup', 'aws', (i) => instanceOf(i)?.userData);
    const made = instanceOf(instance)!;
    const tags = Object.fromEntries((made.instance.Tags ?? []).map((t) => [t.Key, t.Value]));
    expect(tags).toMatchObject({ Name: instance.key, 'vmpilot:key': instance.key, 'vmpilot:endpoint': 'aws' });
    expect(made.input).toMatchObject({ ClientToken: instance.key, InstanceType: 'm5.large', SubnetId: 'subnet-0a1a1a1a', InstanceInitiatedShutdownBehavior: 'terminate', InstanceMarketOptions: { MarketType: 'spot' } });
    // the price the director started it at is the spot price it read over the Query API
    expect(instance.costPerHour).toBeCloseTo(0.04, 6);
    expect(ec2.actions).toEqual(expect.arrayContaining(['DescribeSpotPriceHistory', 'RunInstances', 'DescribeInstances']));
    // its halting agent powered it off, which terminated it (InstanceInitiatedShutdownBehavior terminate)
    expect(made.instance.State?.Name).toBe('terminated');
    expect(made.instance.StateReason?.Code).toBe('Client.InstanceInitiatedShutdown');
    expect(made.machine?.running).toBe(false);
  }, 60_000);
});
