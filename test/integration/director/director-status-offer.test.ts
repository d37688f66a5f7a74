/**
 * `director status` says, for each start the last cycle decided, the offer
 * chosen, its price per core-hour and where that price came from, and the
 * offers that lost: a server (buildApp on a real SQLite file, listening on
 * 127.0.0.1) whose director has an `ec2` endpoint with a spot shape priced
 * by its driver (the real SDK over HTTP to the fake EC2 Query API,
 * test/fakes/ec2-query-fake.ts: DescribeSpotPriceHistory) and an on-demand
 * shape at its configured price; read through GET /v1/director and the
 * built CLI. The cycle is run by hand, so its record is the one shown (the
 * loop in serve cycles again right after a start).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { EC2Client } from '@aws-sdk/client-ec2';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DirectorStatusReply } from '../../../src/protocol/index.js';
import { buildApp } from '../../../src/server/api/app.js';
import { sha256Hex } from '../../../src/server/api/auth.js';
import type { Ec2Settings } from '../../../src/server/director/cloud-settings.js';
import { resourcePrefix } from '../../../src/server/director/credential.js';
import { Ec2Driver } from '../../../src/server/director/drivers/ec2/driver.js';
import { DriverPrices } from '../../../src/server/director/drivers/live-prices.js';
import { endpointsFrom } from '../../../src/server/director/endpoint-config.js';
import { Director } from '../../../src/server/director/loop.js';
import { openSqliteStore, type SqliteStore } from '../../../src/server/store/sqlite.js';
import { systemClock } from '../../../src/shared/clock.js';
import { silentLogger } from '../../../src/shared/log.js';
import { EC2_QUERY_CREDENTIALS, Ec2QueryFake } from '../../fakes/ec2-query-fake.js';
import { TEMPLATE_AGENT } from '../../unit/server/delivery/examples.js';
import { ADMIN_TOKEN, PILOT_TOKEN, SERVER, admin, freePort, runCommand, tempDir } from '../harness.js';

const tmp = tempDir('vmpilot-status-offer-');
let fake: Ec2QueryFake;
let store: SqliteStore;
let app: FastifyInstance;
let director: Director;
let url: string;

beforeAll(async () => {
  fake = await new Ec2QueryFake().start();
  fake.ec2.spotPrices = new Map([['m5.large eu-west-1a', '0.040000'], ['m5.large eu-west-1b', '0.045000']]);
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  const endpoints = endpointsFrom(
    {
      aws: {
        driver: 'ec2',
        ec2: {
          region: 'eu-west-1',
          endpoint: fake.url,
          imageId: 'ami-0123456789abcdef0',
          subnets: { 'eu-west-1a': 'subnet-0a1a1a1a', 'eu-west-1b': 'subnet-0b2b2b2b' },
          onDemandPrices: { 'm5.large': 0.107 },
          shapes: { spot: { instanceTypes: ['m5.large'], market: 'spot' }, od: { instanceTypes: ['m5.large'] } },
        },
        shapes: { spot: { cores: 1, memoryMb: 2000, price: { from: 'driver' } }, od: { cores: 1, memoryMb: 2000, costPerHour: 0.107 } },
      },
    },
    'test.yaml',
  );
  const ep = endpoints[0]!;
  const client = new EC2Client({ region: 'eu-west-1', endpoint: fake.url, credentials: { accessKeyId: EC2_QUERY_CREDENTIALS.AWS_ACCESS_KEY_ID, secretAccessKey: EC2_QUERY_CREDENTIALS.AWS_SECRET_ACCESS_KEY } });
  const driver = new Ec2Driver({ settings: ep.driver as Ec2Settings, prefix: resourcePrefix('t', 'aws'), directorId: 't', endpoint: 'aws', shapes: ep.shapes, agent: TEMPLATE_AGENT, clock: systemClock, client });
  const drivers = new Map([['aws', driver]]);
  store = openSqliteStore(path.join(tmp.dir, 'server.db'));
  director = new Director({
    store,
    clock: systemClock,
    log: silentLogger(),
    endpoints,
    drivers,
    prices: new DriverPrices(drivers),
    directorId: 't',
    serverUrl: url,
    demandPolicy: { shares: new Map(), defaultShare: 1, defaultWallSec: 3600 },
  });
  app = buildApp({ store, clock: systemClock, log: silentLogger(), tokens: { adminHash: sha256Hex(ADMIN_TOKEN), pilotHash: sha256Hex(PILOT_TOKEN) }, heartbeatIntervalSec: 5, matchWaitMaxSec: 5, director, endpoints });
  await app.listen({ host: '127.0.0.1', port });
}, 60_000);

afterAll(async () => {
  await director?.close();
  await app?.close();
  await store?.close();
  await fake?.stop();
  tmp.cleanup();
});

describe('director status: the offer chosen', () => {
  it('names the offer a start chose, its price per core-hour from the spot price history, and the on-demand offer that lost as dearer', async () => {
    await admin(url).submit({ command: ['true'], group: 'atlas' });
    const cycle = await director.cycle();
    expect(cycle.actions).toEqual([expect.objectContaining({ kind: 'start', endpoint: 'aws', error: null })]);
    expect(fake.actions).toContain('DescribeSpotPriceHistory');

    const status = (await admin(url).call<DirectorStatusReply>('GET', '/v1/director')).body;
    const [start] = status.lastCycle!.decision.starts;
    expect(start).toMatchObject({ endpoint: 'aws', shape: 'spot', forGroup: 'atlas', costPerHour: 0.04, pricePerCoreHour: 0.04, priceFrom: 'driver', priceDetail: 'ec2 spot price history: m5.large in eu-west-1a' });
    expect(start!.lost).toEqual([{ endpoint: 'aws', shape: 'od', reason: 'dearer', detail: expect.stringMatching(/^\d+\.\d{4} per useful core-hour against \d+\.\d{4} on aws\/spot$/), pricePerCoreHour: 0.107 }]);
    // the instance was recorded at that price, and made at that offer
    const [instance] = await store.listInstances({ endpoint: 'aws' });
    expect(instance!.costPerHour).toBe(0.04);
    expect([...fake.ec2.instances.values()][0]!.input).toMatchObject({ SubnetId: 'subnet-0a1a1a1a', InstanceMarketOptions: { MarketType: 'spot' } });

    // the reply has the fields docs/protocol.md's example shows, no more, no fewer
    const doc = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');
    const example = JSON.parse(/<!-- example: DirectorStatusReply -->\s*```json\n([\s\S]*?)```/.exec(doc)![1]!) as DirectorStatusReply;
    const documented = example.lastCycle!.decision.starts[0]!;
    expect(Object.keys(start!).sort()).toEqual(Object.keys(documented).sort());
    expect(Object.keys(start!.lost![0]!).sort()).toEqual(Object.keys(documented.lost![0]!).sort());

    const text = await runCommand([SERVER, 'director', 'status', '--server', url], { VMPILOT_TOKEN: ADMIN_TOKEN });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(
      'starts (the offer chosen, its price, and the offers that lost):\n  1 × aws/spot for atlas (1 payload): 0.04/h, 0.0400 per core-hour (driver: ec2 spot price history: m5.large in eu-west-1a)\n    lost: aws/od: dearer: ',
    );
    expect(text.stdout).toMatch(/lost: aws\/od: dearer: .* against .* on aws\/spot \(0\.1070 per core-hour\)\n/);
    const json = await runCommand([SERVER, 'director', 'status', '--json', '--server', url], { VMPILOT_TOKEN: ADMIN_TOKEN });
    expect((JSON.parse(json.stdout) as DirectorStatusReply).lastCycle!.decision.starts[0]).toEqual(start);
  }, 60_000);
});
