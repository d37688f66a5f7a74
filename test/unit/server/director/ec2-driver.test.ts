/**
 * The ec2 driver against a fake EC2 (test/fakes/ec2-fake.ts: the real SDK
 * client, its calls answered by aws-sdk-client-mock as the EC2 API reference
 * shapes them): the driver contract, then RunInstances' input, the ranking
 * of offers by spot price per zone against on-demand, the errors that move
 * to the next offer and back the failed one off, those that do not, the
 * client token's idempotency, the spot price cache, and the live price.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Ec2Settings } from '../../../../src/server/director/cloud-settings.js';
import { resourcePrefix } from '../../../../src/server/director/credential.js';
import { Ec2Driver } from '../../../../src/server/director/drivers/ec2/driver.js';
import { USER_DATA_MAX_BYTES, ec2UserData } from '../../../../src/server/director/drivers/ec2/instances.js';
import { DriverPrices } from '../../../../src/server/director/drivers/live-prices.js';
import { endpointsFrom, type EndpointConfig } from '../../../../src/server/director/endpoint-config.js';
import type { CreateRequest } from '../../../../src/server/director/ports.js';
import type { Clock } from '../../../../src/shared/clock.js';
import { isVmpilotError } from '../../../../src/shared/errors.js';
import { bootFacts } from '../../../fakes/cloud-vm.js';
import { Ec2Fake, ec2Error } from '../../../fakes/ec2-fake.js';
import { TEMPLATE_AGENT } from '../delivery/examples.js';
import { driverContract } from './driver-contract.js';

const SUBNETS = { 'eu-west-1a': 'subnet-0a1a1a1a', 'eu-west-1b': 'subnet-0b2b2b2b' };

/** A clock the test moves; a sleep moves it at once, and lets the fake's own timers (real ones) run a little. */
function testClock(): Clock & { t: number } {
  return {
    t: 1_800_000_000_000,
    now() {
      return this.t;
    },
    async sleep(ms: number) {
      this.t += ms;
      await new Promise((r) => setTimeout(r, Math.min(ms, 20)));
    },
  };
}

function endpoint(name: string, ec2: Record<string, unknown> = {}, shapePrice: Record<string, unknown> = {}): EndpointConfig {
  return endpointsFrom(
    {
      [name]: {
        driver: 'ec2',
        ec2: {
          region: 'eu-west-1',
          imageId: 'ami-0123456789abcdef0',
          subnets: SUBNETS,
          securityGroupIds: ['sg-0a0b0c0d'],
          onDemandPrices: { 'm5.large': 0.107, 'm5a.large': 0.096, 'm6i.large': 0.107 },
          shapes: {
            med: { instanceTypes: ['m5.large', 'm5a.large', 'm6i.large'], market: 'spot' },
            any: { instanceTypes: ['m5.large', 'm5a.large'], market: 'any' },
            od: { instanceTypes: ['m5.large'], market: 'on-demand' },
          },
          ...ec2,
        },
        shapes: { med: { cores: 2, memoryMb: 8000, ...shapePrice }, any: { cores: 2, memoryMb: 7900 }, od: { cores: 2, memoryMb: 7800, costPerHour: 0.107 } },
      },
    },
    'test',
  )[0]!;
}

function driver(fake: Ec2Fake, clock: Clock, name = 'aws', ec2: Record<string, unknown> = {}): Ec2Driver {
  const ep = endpoint(name, ec2);
  return new Ec2Driver({ settings: ep.driver as Ec2Settings, prefix: resourcePrefix('test', name), directorId: 'test', endpoint: name, shapes: ep.shapes, agent: TEMPLATE_AGENT, clock, client: fake.client });
}

const request = (key: string, shape = 'med'): CreateRequest => ({
  key,
  shape,
  cores: 2,
  memoryMb: 8000,
  lifetimeSec: 3600,
  bootstrap: { serverUrl: 'http://127.0.0.1:9', credential: 'vmpi_ec2credential0123456789', idleTimeoutSec: 60, graceSec: 5, lifetimeSec: 3600 },
});

const prices = (fake: Ec2Fake, p: Record<string, number>) => {
  fake.spotPrices = new Map(Object.entries(p).map(([k, v]) => [k, v.toFixed(6)]));
};

driverContract('ec2 (aws-sdk-client-mock)', async () => {
  const fake = new Ec2Fake({ bootMs: 50 });
  prices(fake, { 'm5.large eu-west-1a': 0.04, 'm5a.large eu-west-1b': 0.035, 'm6i.large eu-west-1a': 0.05 });
  const clock = { now: () => Date.now(), sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)) };
  const a = driver(fake, clock);
  const b = driver(fake, clock, 'other');
  return {
    driver: a,
    prefix: resourcePrefix('test', 'aws'),
    other: { driver: b, prefix: resourcePrefix('test', 'other') },
    request,
    until: async (what, check) => {
      const end = Date.now() + 20_000;
      for (;;) {
        const v = await check();
        if (v) return v;
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    nothingLeft: async (r) => {
      expect(fake.instances.get(r.id)!.instance.State?.Name).toBe('terminated');
    },
    close: async () => {
      await a.close();
      await fake.stop();
    },
  };
});

describe('ec2 driver', () => {
  let fake: Ec2Fake;
  let clock: ReturnType<typeof testClock>;
  const p = resourcePrefix('test', 'aws');
  beforeEach(() => {
    fake = new Ec2Fake({ bootMs: 10_000 });
    clock = testClock();
    prices(fake, { 'm5.large eu-west-1a': 0.04, 'm5.large eu-west-1b': 0.045, 'm5a.large eu-west-1a': 0.05, 'm5a.large eu-west-1b': 0.035, 'm6i.large eu-west-1a': 0.06 });
  });
  afterEach(async () => {
    await fake.stop();
  });

  it('RunInstances: the key as ClientToken, image, type, the cheapest zone\'s subnet, groups, tags, spot with its cap, base64 user-data with the credential and the spot watch', async () => {
    const d = driver(fake, clock);
    const r = await d.create(request(`${p}run1`));
    expect(fake.runCalls).toHaveLength(1);
    const input = fake.runCalls[0]!;
    expect(input).toMatchObject({
      ClientToken: `${p}run1`,
      ImageId: 'ami-0123456789abcdef0',
      // m5a.large in eu-west-1b at 0.035 is the cheapest per core-hour
      InstanceType: 'm5a.large',
      SubnetId: 'subnet-0b2b2b2b',
      SecurityGroupIds: ['sg-0a0b0c0d'],
      MinCount: 1,
      MaxCount: 1,
      InstanceInitiatedShutdownBehavior: 'terminate',
      InstanceMarketOptions: { MarketType: 'spot', SpotOptions: { MaxPrice: '0.096', SpotInstanceType: 'one-time', InstanceInterruptionBehavior: 'terminate' } },
    });
    const tags = Object.fromEntries(input.TagSpecifications![0]!.Tags!.map((t) => [t.Key, t.Value]));
    expect(tags).toEqual({ Name: `${p}run1`, 'vmpilot:key': `${p}run1`, 'vmpilot:director': 'test', 'vmpilot:endpoint': 'aws', 'vmpilot:prefix': p });
    expect(input.TagSpecifications!.map((t) => t.ResourceType)).toEqual(['instance', 'volume']);
    const facts = bootFacts(Buffer.from(input.UserData!, 'base64').toString('utf8'));
    expect(facts).toMatchObject({ credential: 'vmpi_ec2credential0123456789', configDoc: { server: 'http://127.0.0.1:9', cores: 2, spotNotice: 'aws', halt: 'poweroff' } });
    expect(r).toMatchObject({ key: `${p}run1`, state: 'pending', detail: 'pending (spot m5a.large in eu-west-1b)' });
    // an on-demand offer has no spot watch and no market options
    await d.create(request(`${p}od1`, 'od'));
    expect(fake.runCalls[1]!.InstanceMarketOptions).toBeUndefined();
    expect(bootFacts(Buffer.from(fake.runCalls[1]!.UserData!, 'base64').toString('utf8')).configDoc.spotNotice).toBeUndefined();
  });

  it('ranks spot against on-demand: a spot price above on-demand is never asked for; market any takes on-demand when it is cheaper', async () => {
    // m5a.large's spot price in eu-west-1b (0.098) is the lowest, but above its on-demand price (0.096)
    prices(fake, { 'm5.large eu-west-1a': 0.2, 'm5.large eu-west-1b': 0.1, 'm5a.large eu-west-1a': 0.12, 'm5a.large eu-west-1b': 0.098 });
    const d = driver(fake, clock);
    // market any: m5a.large on demand at 0.096 beats every spot price
    await d.create(request(`${p}any1`, 'any'));
    expect(fake.runCalls[0]).toMatchObject({ InstanceType: 'm5a.large', SubnetId: 'subnet-0a1a1a1a' });
    expect(fake.runCalls[0]!.InstanceMarketOptions).toBeUndefined();
    // market spot: only m5.large in eu-west-1b (0.1) is under its on-demand price (0.107)
    await d.create(request(`${p}spot1`));
    expect(fake.runCalls[1]).toMatchObject({ InstanceType: 'm5.large', SubnetId: 'subnet-0b2b2b2b', InstanceMarketOptions: { MarketType: 'spot', SpotOptions: { MaxPrice: '0.107' } } });
    expect(await d.shapePrice('med')).toBe(0.1);
    expect(await d.shapePrice('any')).toBe(0.096);
    // where each price came from, for director status
    expect(d.priceOrigin('med')).toBe('ec2 spot price history: m5.large in eu-west-1b');
    expect(d.priceOrigin('any')).toBe('ec2 onDemandPrices: m5a.large on demand in eu-west-1a');
    expect(d.priceOrigin('od')).toBeNull();
  });

  it('no capacity or too low a price: that (type, zone) is backed off for a while and the next offer is tried; the next create does not ask for it again until the backoff ends', async () => {
    fake.failures.set('spot m5a.large eu-west-1b', ['InsufficientInstanceCapacity', 'We currently do not have sufficient m5a.large capacity in the Availability Zone you requested (eu-west-1b). Our system will be working on provisioning additional capacity.']);
    fake.failures.set('spot m5.large eu-west-1a', ['SpotMaxPriceTooLow', 'Your Spot request price of 0.107 is lower than the minimum required Spot request fulfillment price of 0.11.']);
    const d = driver(fake, clock);
    const r = await d.create(request(`${p}cap1`));
    expect(fake.runCalls.map((c) => `${c.InstanceType} ${c.SubnetId} ${c.ClientToken}`)).toEqual([`m5a.large subnet-0b2b2b2b ${p}cap1`, `m5.large subnet-0a1a1a1a ${p}cap1.a`, `m5.large subnet-0b2b2b2b ${p}cap1.b`]);
    expect(r.detail).toBe('pending (spot m5.large in eu-west-1b)');
    // the failed offers are left out of the next create and of the price
    expect(await d.shapePrice('med')).toBe(0.045);
    await d.create(request(`${p}cap2`));
    expect(fake.runCalls.slice(3).map((c) => `${c.InstanceType} ${c.SubnetId}`)).toEqual(['m5.large subnet-0b2b2b2b']);
    // after capacityBackoffSec (180 s) they are tried again; the prices were read again meanwhile
    clock.t += 181_000;
    fake.failures.clear();
    await d.create(request(`${p}cap3`));
    expect(fake.runCalls.at(-1)).toMatchObject({ InstanceType: 'm5a.large', SubnetId: 'subnet-0b2b2b2b' });
  });

  it('an error of the request (InstanceLimitExceeded) fails the create with EC2\'s words and tries no other offer', async () => {
    fake.failures.set('spot m5a.large *', ['InstanceLimitExceeded', 'You have requested more instances (21) than your current instance limit of 20 allows for the specified instance type.']);
    const d = driver(fake, clock);
    const err = await d.create(request(`${p}lim1`)).catch((e: unknown) => e);
    expect(isVmpilotError(err, 'VMP_DRIVER')).toBe(true);
    expect((err as Error).message).toBe('ec2 RunInstances (shape med, spot m5a.large in eu-west-1b): InstanceLimitExceeded: You have requested more instances (21) than your current instance limit of 20 allows for the specified instance type.');
    expect(fake.runCalls).toHaveLength(1);
  });

  it('every offer without capacity: one error listing each offer tried and why', async () => {
    prices(fake, { 'm5.large eu-west-1a': 0.04, 'm5a.large eu-west-1b': 0.035 });
    fake.failures.set('spot m5.large *', ['InsufficientInstanceCapacity', 'no m5.large']);
    fake.failures.set('spot m5a.large *', ['InsufficientInstanceCapacity', 'no m5a.large']);
    const d = driver(fake, clock);
    await expect(d.create(request(`${p}none1`))).rejects.toThrow(
      'ec2: no offer of shape med could be had: spot m5a.large in eu-west-1b at 0.035/h (0.0175 per core-hour): InsufficientInstanceCapacity; spot m5.large in eu-west-1a at 0.04/h (0.0200 per core-hour): InsufficientInstanceCapacity',
    );
    await expect(d.create(request(`${p}none2`))).rejects.toThrow('ec2: shape med has no offer now: backed off after no capacity or too low a price: spot m5a.large eu-west-1b, spot m5.large eu-west-1a');
  });

  it('IdempotentParameterMismatch: the instance its token made earlier (other prices, other parameters) is adopted, never a second one', async () => {
    const d = driver(fake, clock);
    const key = `${p}idem1`;
    const first = await d.create(request(key));
    // a restart: the tag lookup does not see it yet (EC2's listing lags), and the prices moved
    fake.lag.set(first.id, 2);
    prices(fake, { 'm6i.large eu-west-1a': 0.01 });
    clock.t += 10 * 60_000;
    const again = await d.create(request(key));
    expect(fake.runCalls.map((c) => c.ClientToken)).toEqual([key, key]);
    expect(again.id).toBe(first.id);
    expect(fake.instances.size).toBe(1);
  });

  it('IdempotentParameterMismatch for a token a failed request spent: the next token, once no instance of it shows up', async () => {
    const d = driver(fake, clock);
    const key = `${p}idem2`;
    fake.tokens.set(key, { params: 'another request', instanceId: null });
    const r = await d.create(request(key));
    expect(fake.runCalls.map((c) => c.ClientToken)).toEqual([key, `${key}.a`]);
    expect(fake.instances.get(r.id)!.instance.ClientToken).toBe(`${key}.a`);
  });

  it('a create with a used key finds the instance by its tag and calls RunInstances no more', async () => {
    const d = driver(fake, clock);
    const a = await d.create(request(`${p}tag1`));
    const b = await d.create(request(`${p}tag1`));
    expect(b.id).toBe(a.id);
    expect(fake.runCalls).toHaveLength(1);
  });

  it('spot prices are read once per priceCacheSec, all pages, the latest of each (type, zone)', async () => {
    const d = driver(fake, clock, 'aws', { priceCacheSec: 60 });
    expect(await d.shapePrice('med')).toBe(0.035);
    await d.shapePrice('med');
    await d.create(request(`${p}cache1`));
    expect(fake.spotPriceCalls).toBe(2); // two pages of one read
    prices(fake, { 'm5.large eu-west-1a': 0.03 });
    clock.t += 61_000;
    expect(await d.shapePrice('med')).toBe(0.03);
    expect(fake.spotPriceCalls).toBe(4);
    // a failed read keeps the prices for a while, then has none
    fake.mock.on((await import('@aws-sdk/client-ec2')).DescribeSpotPriceHistoryCommand).rejects(ec2Error('RequestLimitExceeded', 'Request limit exceeded.'));
    clock.t += 61_000;
    expect(await d.shapePrice('med')).toBe(0.03);
    clock.t += 120_000;
    expect(await d.shapePrice('med')).toBeNull();
    await expect(d.create(request(`${p}cache2`))).rejects.toThrow('ec2: shape med has no offer now: no current spot price within its cap (maxPrice, or the on-demand price) in its zones');
  });

  it('the live price reaches the director for shapes priced { from: driver }', async () => {
    const ep = endpoint('aws', {}, { price: { from: 'driver' } });
    const d = new Ec2Driver({ settings: ep.driver as Ec2Settings, prefix: p, directorId: 'test', endpoint: 'aws', shapes: ep.shapes, agent: TEMPLATE_AGENT, clock, client: fake.client });
    const got = await new DriverPrices(new Map([['aws', d]])).prices([ep]);
    // med is priced by its driver; od has a fixed cost (not a price source); any has neither
    expect([...got]).toEqual([['aws/med', 0.035]]);
  });

  it('lists only this endpoint\'s instances, not terminated ones; delete terminates and a gone id is fine', async () => {
    const d = driver(fake, clock);
    const other = driver(fake, clock, 'other');
    const mine = await d.create(request(`${p}list1`));
    const theirs = await other.create(request(`${resourcePrefix('test', 'other')}list1`));
    expect((await d.list()).map((r) => r.id)).toEqual([mine.id]);
    expect(await d.describe(theirs.id)).toBeNull();
    await d.delete(theirs.id); // not ours: left alone
    expect(fake.instances.get(theirs.id)!.instance.State?.Name).toBe('pending');
    await d.delete(mine.id);
    expect(await d.list()).toEqual([]);
    await d.delete(mine.id);
    await d.delete('i-0123456789abcdef0');
  });

  it('a user-data over 16 KB is refused naming its size', () => {
    expect(() => ec2UserData('x'.repeat(USER_DATA_MAX_BYTES + 1))).toThrow('ec2: the user-data is 16385 bytes; EC2 takes at most 16384 bytes (before base64): leave out extra packages or ssh keys');
    expect(Buffer.from(ec2UserData('#cloud-config\n'), 'base64').toString()).toBe('#cloud-config\n');
  });
});
