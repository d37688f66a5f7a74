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
 * IP released too). And `vmpilot-server endpoint test NAME` through the
 * built CLI on each: every stage passes with the probe run by a real agent
 * and the machine discarded; a wrong credential and an unreachable cloud
 * fail at the credentials stage with the cloud's own words, exit 5.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Instance } from '@aws-sdk/client-ec2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { InstanceCostEntry, InstanceDetailReply, InstanceView } from '../../../src/protocol/index.js';
import { bootFacts } from '../../fakes/cloud-vm.js';
import { EC2_QUERY_CREDENTIALS, Ec2QueryFake } from '../../fakes/ec2-query-fake.js';
import { ImdsFake } from '../../fakes/imds-fake.js';
import { OpenNebulaFake } from '../../fakes/opennebula-fake.js';
import { OpenStackFake } from '../../fakes/openstack-fake.js';
import { ADMIN_TOKEN, PILOT_TOKEN, SERVER, admin, freePort, killProcessesWith, runCommand, startServer, tempDir, waitFor, type Server } from '../harness.js';

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

const cliOf = (url: string) => (...args: string[]) => runCommand([SERVER, ...args, '--server', url], { VMPILOT_TOKEN: ADMIN_TOKEN });

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
    // terminated: by its halting agent powering it off (InstanceInitiatedShutdownBehavior terminate), or by
    // the director's TerminateInstances once its pilot had halted, whichever came first
    expect(made.instance.State?.Name).toBe('terminated');
    expect(['Client.InstanceInitiatedShutdown', 'Client.UserInitiatedShutdown']).toContain(made.instance.StateReason?.Code);
    expect(made.machine?.running).toBe(false);
  }, 60_000);
});

/** `endpoint test NAME` passed every stage, and left nothing behind it at the cloud (`gone`). */
async function probePasses(name: string, gone: (i: InstanceView) => void) {
  const before = new Set((await get<InstanceView[]>('/v1/instances')).map((i) => i.id));
  const r = await cliOf(server.url)('endpoint', 'test', name);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const lines = r.stdout.trim().split('\n');
  expect(lines.map((l) => /^([✓✗]) (\w+)/.exec(l)?.slice(1, 3).join(' '))).toEqual([...['config', 'credentials', 'create', 'booting', 'registered', 'probe', 'halted', 'deleted'].map((st) => `✓ ${st}`), undefined]);
  expect(r.stdout).toMatch(/✓ probe +\d+\.\d s {2}payload \d+ ran on pilot \d+: exit 0, marker in its output/);
  expect(lines.at(-1)).toMatch(new RegExp(`^endpoint ${name}: every stage passed in \\d+\\.\\d s$`));
  const [probe] = (await get<InstanceView[]>('/v1/instances')).filter((i) => !before.has(i.id));
  expect(probe).toMatchObject({ endpoint: name, state: 'deleted', manual: true, groups: [expect.stringMatching(/^vmpilot-probe-/)] });
  gone(probe!);
}

describe('endpoint test on each fake cloud', () => {
  it('openstack: every stage passes, the probe runs on a real agent, the server and its floating IP are gone', async () => {
    await probePasses('os', (i) => {
      expect(openstack.servers.has(i.driverId!)).toBe(false);
      expect([...openstack.floatingIps.values()]).toEqual([]);
    });
  }, 60_000);

  it('opennebula: every stage passes, the probe runs on a real agent, the VM is DONE', async () => {
    await probePasses('one', (i) => {
      const vm = [...nebula.vms.values()].find((v) => v.name === i.key)!;
      expect(vm.state).toBe(6);
      expect(vm.machine?.running).toBe(false);
    });
  }, 60_000);

  it('ec2: every stage passes, the probe runs on a real agent, the instance is terminated', async () => {
    await probePasses('aws', (i) => {
      const made = [...ec2.ec2.instances.values()].find((f) => f.instance.InstanceId === i.driverId)!;
      expect(made.instance.State?.Name).toBe('terminated');
    });
  }, 60_000);

  it('a wrong credential or an unreachable cloud: the credentials stage fails with the cloud\'s own words, exit 5, nothing started', async () => {
    const closed = await freePort();
    const down = `http://127.0.0.1:${closed}`;
    const credentials = path.join(tmp.dir, 'aws-credentials');
    // the fake's key id with a wrong secret: only the signature tells them apart
    writeFileSync(credentials, `[wrong]\naws_access_key_id = ${EC2_QUERY_CREDENTIALS.AWS_ACCESS_KEY_ID}\naws_secret_access_key = not-the-secret\n`);
    const config = path.join(tmp.dir, 'broken-clouds.yaml');
    const os = (authUrl: string, password: string) =>
      `{ driver: openstack, openstack: { authUrl: ${authUrl}, auth: { username: ${OpenStackFake.user.name}, password: ${password}, project: ${OpenStackFake.project.name} }, image: debian-12, network: private, shapes: { small: { flavor: m1.small } } }, shapes: { small: { cores: 1, memoryMb: 2000 } } }`;
    const one = (url: string, password: string) =>
      `{ driver: opennebula, opennebula: { endpoint: ${url}, user: ${OpenNebulaFake.user.name}, password: ${password}, shapes: { small: { templateId: 7 } } }, shapes: { small: { cores: 1, memoryMb: 2048 } } }`;
    const aws = (url: string, profile: string) =>
      `{ driver: ec2, ec2: { region: eu-west-1, endpoint: ${url}, ${profile} imageId: ami-0123456789abcdef0, onDemandPrices: { m5.large: 0.107 }, shapes: { od: { instanceTypes: [m5.large] } } }, shapes: { od: { cores: 1, memoryMb: 2000, costPerHour: 0.107 } } }`;
    writeFileSync(
      config,
      `endpoints:
  os-wrong: ${os(`${openstack.url}/identity/v3`, 'not-the-password')}
  os-down: ${os(`${down}/identity/v3`, OpenStackFake.user.password)}
  one-wrong: ${one(nebula.url, 'not-the-password')}
  one-down: ${one(`${down}/RPC2`, OpenNebulaFake.user.password)}
  aws-wrong: ${aws(ec2.url, 'profile: wrong,')}
  aws-down: ${aws(down, '')}
`,
    );
    const broken = await startServer(path.join(tmp.dir, 'broken.db'), ['--config', config], { env: { ...EC2_QUERY_CREDENTIALS, AWS_SHARED_CREDENTIALS_FILE: credentials, AWS_CONFIG_FILE: '/nonexistent'} });
    try {
      const cli = cliOf(broken.url);
      const expected: Record<string, RegExp> = {
        'os-wrong': /Keystone refused the login \(user pilot, project physics\) at .*: HTTP 401: Unauthorized: The request you have made requires authentication\./,
        'os-down': new RegExp(`auth/tokens: no answer: connect ECONNREFUSED 127\\.0\\.0\\.1:${closed}`),
        'one-wrong': /one\.vmpool\.info at .*: \[one\.vmpool\.info\] User couldn't be authenticated, aborting call\. \(AUTHENTICATION\)/,
        'one-down': new RegExp(`RPC2: no answer: connect ECONNREFUSED 127\\.0\\.0\\.1:${closed}`),
        'aws-wrong': /ec2 DescribeInstances: AuthFailure: AWS was not able to validate the provided access credentials/,
        'aws-down': new RegExp(`ec2 DescribeInstances: .*connect ECONNREFUSED 127\\.0\\.0\\.1:${closed}`),
      };
      const results = await Promise.all(Object.keys(expected).map(async (name) => [name, await cli('endpoint', 'test', name)] as const));
      for (const [name, r] of results) {
        expect(r.code, `${name}: ${r.stdout}${r.stderr}`).toBe(5);
        expect(r.stderr, name).toMatch(new RegExp(`^vmpilot-server: error: endpoint ${name} failed at stage credentials: `));
        expect(r.stderr, name).toMatch(expected[name]!);
        expect(r.stdout, name).toMatch(/^✓ config .*\n✗ credentials /);
      }
      // nothing was created: no instance record, nothing at the clouds
      expect((await admin(broken.url).call<InstanceView[]>('GET', '/v1/instances')).body).toEqual([]);
    } finally {
      await broken.stop();
    }
  }, 60_000);
});

describe('accounting of the instances on the fake clouds', () => {
  it('accounting --instances: the instance-hours and cost of the instances above per group and endpoint, the probes under (by hand)', async () => {
    const cli = cliOf(server.url);
    const r = await cli('accounting', '--instances', '--json');
    expect(r.code, r.stderr).toBe(0);
    const rows = JSON.parse(r.stdout) as InstanceCostEntry[];
    // what the instances' own records say, summed here: every instance above has been deleted, so this is final
    const instances = await get<InstanceView[]>('/v1/instances?limit=100');
    expect(instances.every((i) => i.state === 'deleted')).toBe(true);
    const expected = new Map<string, { instances: number; cost: number }>();
    for (const i of instances) {
      const k = `${i.manual ? '(by hand)' : i.forGroup} ${i.endpoint}`;
      const e = expected.get(k) ?? { instances: 0, cost: 0 };
      expected.set(k, { instances: e.instances + 1, cost: e.cost + i.costSoFar });
    }
    expect(rows.map((x) => `${x.group} ${x.endpoint}`)).toEqual([...expected.keys()].sort());
    for (const x of rows) {
      const e = expected.get(`${x.group} ${x.endpoint}`)!;
      expect(x.instances).toBe(e.instances);
      expect(x.cost).toBeCloseTo(e.cost, 9);
      expect(x.coreHours).toBeCloseTo(x.instanceHours, 9); // one-core shapes
      expect(x.instanceHours).toBeGreaterThan(0);
    }
    // the round trips above: one instance per cloud for its group; the endpoint tests' probes by hand
    expect(rows.filter((x) => x.group !== '(by hand)').map((x) => [x.group, x.endpoint, x.instances])).toEqual([
      ['awsgroup', 'aws', 1],
      ['onegroup', 'one', 1],
      ['osgroup', 'os', 1],
    ]);
    expect(rows.find((x) => x.group === 'osgroup')!.cost).toBeCloseTo(0.02 * rows.find((x) => x.group === 'osgroup')!.instanceHours, 9);
    expect(rows.find((x) => x.group === 'awsgroup')!.cost).toBeCloseTo(0.04 * rows.find((x) => x.group === 'awsgroup')!.instanceHours, 9);

    const text = await cli('accounting', '--instances');
    expect(text.stdout).toMatch(/^GROUP\s+ENDPOINT\s+INSTANCES\s+INSTANCE-HOURS\s+CORE-HOURS\s+COST\n/);
    expect(text.stdout).toMatch(/^osgroup\s+os\s+1\s+\d+\.\d\d\s+\d+\.\d\d\s+\S+$/m);
    expect(text.stdout).toMatch(/^\(all\)\s+\d+\s/m);
    const refused = await cli('accounting', '--instances', '--from', '2026-01-01');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("--instances gives the instances' totals since the start; it takes no --from");
  }, 60_000);
});
