/**
 * The `ec2` driver: an EC2 instance per director instance, through the AWS
 * SDK (@aws-sdk/client-ec2; credentials from the usual AWS chain: the
 * environment, the shared config and credentials files with `profile`, an
 * instance role; `region` and `endpoint` for an EC2-compatible cloud).
 *
 *   create ──▶ tagged with its key already? return it
 *          ──▶ offers of its shape, cheapest per core-hour first (offers.ts)
 *          ──▶ RunInstances(ClientToken = key) on the first; no capacity / price too low:
 *              that (type, zone, market) backed off for capacityBackoffSec, the next offer
 *              under the next token (key.a, key.b, …: instances.ts clientTokens)
 *          ──▶ IdempotentParameterMismatch: the token made an instance with other
 *              parameters (a create before a restart, when prices were others): it is
 *              looked up by its client token and returned; none: the next token
 *   list   ──▶ DescribeInstances by our prefix tag, not terminated or shutting down
 *   delete ──▶ TerminateInstances, and wait until it is terminated (its agent halts on the shutdown)
 *
 * Every instance carries the tags Name and vmpilot:key (its key),
 * vmpilot:director, vmpilot:endpoint and vmpilot:prefix, and its volumes
 * the same. A pilot that halts powers the machine off, which terminates it
 * (InstanceInitiatedShutdownBehavior terminate). On a spot offer the
 * user-data turns on the agent's spot notice watch.
 *
 * The driver also says each shape's current price (`shapePrice`): the
 * cheapest offer not backed off, for shapes with `price: { from: driver }`.
 */
import {
  DescribeInstancesCommand,
  EC2Client,
  type Filter,
  type Instance,
  RunInstancesCommand,
  type RunInstancesCommandInput,
  TerminateInstancesCommand,
  type _InstanceType,
} from '@aws-sdk/client-ec2';
import type { Clock } from '../../../../shared/clock.js';
import { VmpilotError, describeError } from '../../../../shared/errors.js';
import type { Logger } from '../../../../shared/log.js';
import type { AgentRef } from '../../../delivery/shell.js';
import type { Ec2Settings } from '../../cloud-settings.js';
import type { CreateRequest, Driver, DriverResource } from '../../ports.js';
import { cloudUserData, shapeOf } from '../cloud-user-data.js';
import type { LivePrices } from '../live-prices.js';
import { type Offer, describeOffer, offerKey, rankOffers } from './offers.js';
import { SpotPrices } from './spot-prices.js';
import { awsCode, clientTokens, ec2UserData, isNextOfferError, resourceOf } from './instances.js';

/** What the ec2 driver is made of. */
export interface Ec2DriverOptions {
  settings: Ec2Settings;
  /** The prefix of this endpoint's keys (credential.ts resourcePrefix). */
  prefix: string;
  directorId: string;
  endpoint: string;
  shapes: readonly { name: string; cores: number; memoryMb: number }[];
  /** The agent file the machines fetch (the executable, from the server's manifest). */
  agent: AgentRef;
  clock: Clock;
  log?: Logger;
  /** The SDK client (tests give one whose calls are mocked). */
  client?: EC2Client;
  /** How long to keep looking for the instance of a client token EC2 says is used (its listing lags; default 6 s). */
  tokenLookupMs?: number;
  /** How long a delete waits for the instance to be terminated (default 180 s). */
  deleteWaitMs?: number;
}

/** At most this many offers are tried by one create. */
const MAX_OFFERS_PER_CREATE = 8;
const LIVE_STATES = ['pending', 'running', 'stopping', 'stopped'];

/** EC2 instances as a driver. */
export class Ec2Driver implements Driver, LivePrices {
  readonly kind = 'ec2';
  private readonly client: EC2Client;
  private readonly spot: SpotPrices;
  /** offerKey → no new try before (ms). */
  private readonly backedOff = new Map<string, number>();
  /** The offer each shape's last `shapePrice` was of. */
  private readonly priced = new Map<string, Offer>();

  constructor(private readonly o: Ec2DriverOptions) {
    const s = o.settings;
    this.client = o.client ?? new EC2Client({ ...(s.region ? { region: s.region } : {}), ...(s.endpoint ? { endpoint: s.endpoint } : {}), ...(s.profile ? { profile: s.profile } : {}) });
    this.spot = new SpotPrices(this.client, s, o.clock, (err) => o.log?.warn({ endpoint: o.endpoint, err: describeError(err) }, 'ec2 spot prices not read'));
  }

  async create(request: CreateRequest): Promise<DriverResource> {
    if (!request.key.startsWith(this.o.prefix)) throw new VmpilotError('VMP_INTERNAL', `key ${request.key} is not this endpoint's (${this.o.prefix}…)`);
    const existing = await this.find([{ Name: 'tag:vmpilot:key', Values: [request.key] }]);
    if (existing[0]) return resourceOf(existing[0]);
    const shape = shapeOf(request, this.o.settings.shapes, this.o.shapes, 'ec2');
    const offers = rankOffers(this.o.settings, shape.settings, await this.spot.current(), this.backedOff, this.o.clock.now()).slice(0, MAX_OFFERS_PER_CREATE);
    if (offers.length === 0) throw new VmpilotError('VMP_DRIVER', `ec2: shape ${shape.name} has no offer now: ${this.whyNoOffer(shape.settings.market)}`);
    const tokens = clientTokens(request.key);
    let token = 0;
    const tried: string[] = [];
    for (const offer of offers) {
      const userData = ec2UserData(cloudUserData(request, this.o.agent, offer.market === 'spot' ? { spotNotice: 'aws' } : {}));
      for (;;) {
        try {
          const out = await this.client.send(new RunInstancesCommand(this.runInput(request.key, shape.settings.imageId, offer, userData, tokens[token]!)));
          const made = out.Instances?.[0];
          if (!made?.InstanceId) throw new VmpilotError('VMP_DRIVER', 'ec2 RunInstances answered no instance');
          return resourceOf(made, request.key);
        } catch (err) {
          const code = awsCode(err);
          if (code === 'IdempotentParameterMismatch') {
            const adopted = await this.byClientToken(tokens[token]!);
            if (adopted) return resourceOf(adopted);
            // the token was spent by a request that made nothing: the next one, same offer
            if (++token >= tokens.length) throw this.failure(err, offer, shape.name);
            continue;
          }
          if (isNextOfferError(code)) {
            this.backedOff.set(offerKey(offer), this.o.clock.now() + this.o.settings.capacityBackoffSec * 1000);
            // the next offer under the next token: whether EC2 kept this one for the failed request does not matter
            if (++token >= tokens.length) throw this.failure(err, offer, shape.name);
            tried.push(`${describeOffer(offer, request.cores)}: ${code}`);
            this.o.log?.info({ endpoint: this.o.endpoint, offer: offerKey(offer), code }, 'ec2 offer backed off; trying the next');
            break;
          }
          throw this.failure(err, offer, shape.name);
        }
      }
    }
    throw new VmpilotError('VMP_DRIVER', `ec2: no offer of shape ${shape.name} could be had: ${tried.join('; ')}`);
  }

  async list(): Promise<DriverResource[]> {
    return (await this.find([])).map((i) => resourceOf(i));
  }

  async describe(id: string): Promise<DriverResource | null> {
    const i = await this.instance(id);
    if (!i || i.State?.Name === 'terminated') return null;
    return resourceOf(i);
  }

  async delete(id: string): Promise<void> {
    const i = await this.instance(id);
    if (!i || i.State?.Name === 'terminated') return;
    try {
      await this.client.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    } catch (err) {
      if (awsCode(err) === 'InvalidInstanceID.NotFound') return;
      throw new VmpilotError('VMP_DRIVER', `ec2 TerminateInstances ${id}: ${awsCode(err)}: ${describeError(err)}`, { cause: err });
    }
    // it shuts down (its agent halts within its grace): done once it is terminated
    const wait = this.o.deleteWaitMs ?? 180_000;
    const until = this.o.clock.now() + wait;
    for (;;) {
      const left = await this.instance(id);
      if (!left || left.State?.Name === 'terminated') return;
      if (this.o.clock.now() >= until) throw new VmpilotError('VMP_DRIVER', `ec2: instance ${id} is still ${left.State?.Name} ${Math.round(wait / 1000)} s after TerminateInstances; it is terminated again next cycle`);
      await this.o.clock.sleep(2000);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  /** The current price of `shape`: its cheapest offer now (null: none known). */
  async shapePrice(shape: string): Promise<number | null> {
    const s = this.o.settings.shapes[shape];
    if (!s) return null;
    const best = rankOffers(this.o.settings, s, await this.spot.current(), this.backedOff, this.o.clock.now())[0];
    if (best?.price === null || best === undefined) {
      this.priced.delete(shape);
      return null;
    }
    this.priced.set(shape, best);
    return best.price;
  }

  /** Where the last price of `shape` came from: the spot price history (type, zone), or the configured on-demand price. */
  priceOrigin(shape: string): string | null {
    const o = this.priced.get(shape);
    if (!o) return null;
    const where = o.zone ?? 'any zone';
    return o.market === 'spot' ? `ec2 spot price history: ${o.instanceType} in ${where}` : `ec2 onDemandPrices: ${o.instanceType} on demand in ${where}`;
  }

  private runInput(key: string, imageId: string | null, offer: Offer, userData: string, token: string): RunInstancesCommandInput {
    const s = this.o.settings;
    const tags = [
      { Key: 'Name', Value: key },
      { Key: 'vmpilot:key', Value: key },
      { Key: 'vmpilot:director', Value: this.o.directorId },
      { Key: 'vmpilot:endpoint', Value: this.o.endpoint },
      { Key: 'vmpilot:prefix', Value: this.o.prefix },
      ...Object.entries(s.tags).map(([Key, Value]) => ({ Key, Value })),
    ];
    return {
      ClientToken: token,
      ImageId: imageId ?? s.imageId,
      InstanceType: offer.instanceType as _InstanceType,
      MinCount: 1,
      MaxCount: 1,
      UserData: userData,
      InstanceInitiatedShutdownBehavior: 'terminate',
      TagSpecifications: [
        { ResourceType: 'instance', Tags: tags },
        { ResourceType: 'volume', Tags: tags },
      ],
      ...(offer.subnetId ? { SubnetId: offer.subnetId } : offer.zone ? { Placement: { AvailabilityZone: offer.zone } } : {}),
      ...(s.securityGroupIds.length > 0 ? { SecurityGroupIds: [...s.securityGroupIds] } : {}),
      ...(s.keyName ? { KeyName: s.keyName } : {}),
      ...(s.instanceProfile ? { IamInstanceProfile: { Name: s.instanceProfile } } : {}),
      ...(offer.market === 'spot'
        ? { InstanceMarketOptions: { MarketType: 'spot', SpotOptions: { SpotInstanceType: 'one-time', InstanceInterruptionBehavior: 'terminate', ...(offer.maxPrice !== null ? { MaxPrice: String(offer.maxPrice) } : {}) } } }
        : {}),
    };
  }

  private failure(err: unknown, offer: Offer, shape: string): VmpilotError {
    return new VmpilotError('VMP_DRIVER', `ec2 RunInstances (shape ${shape}, ${offer.market} ${offer.instanceType}${offer.zone ? ` in ${offer.zone}` : ''}): ${awsCode(err)}: ${describeError(err)}`, { cause: err, details: { awsCode: awsCode(err) } });
  }

  private whyNoOffer(market: string): string {
    const held = [...this.backedOff].filter(([, until]) => until > this.o.clock.now()).map(([k]) => k);
    if (held.length > 0) return `backed off after no capacity or too low a price: ${held.join(', ')}`;
    return market === 'on-demand' ? 'no instance types' : 'no current spot price within its cap (maxPrice, or the on-demand price) in its zones';
  }

  /** Our instances matching `filters` (and our prefix tag), not terminated or shutting down. */
  private async find(filters: Filter[]): Promise<Instance[]> {
    const out: Instance[] = [];
    let token: string | undefined;
    try {
      do {
        const page = await this.client.send(
          new DescribeInstancesCommand({
            Filters: [{ Name: 'tag:vmpilot:prefix', Values: [this.o.prefix] }, { Name: 'instance-state-name', Values: LIVE_STATES }, ...filters],
            ...(token ? { NextToken: token } : {}),
          }),
        );
        for (const r of page.Reservations ?? []) for (const i of r.Instances ?? []) if (this.ours(i) && LIVE_STATES.includes(i.State?.Name ?? '')) out.push(i);
        token = page.NextToken || undefined;
      } while (token);
    } catch (err) {
      throw new VmpilotError('VMP_DRIVER', `ec2 DescribeInstances: ${awsCode(err)}: ${describeError(err)}`, { cause: err });
    }
    return out;
  }

  private ours(i: Instance): boolean {
    const tag = (k: string) => i.Tags?.find((t) => t.Key === k)?.Value;
    const key = tag('vmpilot:key');
    return tag('vmpilot:prefix') === this.o.prefix && typeof key === 'string' && key.startsWith(this.o.prefix);
  }

  private async instance(id: string): Promise<Instance | null> {
    if (!/^i-[0-9a-f]{8,17}$/.test(id)) return null;
    try {
      const out = await this.client.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
      const i = out.Reservations?.[0]?.Instances?.[0];
      return i && this.ours(i) ? i : null;
    } catch (err) {
      if (awsCode(err) === 'InvalidInstanceID.NotFound') return null;
      throw new VmpilotError('VMP_DRIVER', `ec2 DescribeInstances ${id}: ${awsCode(err)}: ${describeError(err)}`, { cause: err });
    }
  }

  /** The instance a client token made, looked for a few times (EC2's listing lags behind its creates). */
  private async byClientToken(token: string): Promise<Instance | null> {
    const until = this.o.clock.now() + (this.o.tokenLookupMs ?? 6000);
    for (;;) {
      const found = await this.find([{ Name: 'client-token', Values: [token] }]);
      if (found[0]) return found[0];
      if (this.o.clock.now() >= until) return null;
      await this.o.clock.sleep(1000);
    }
  }
}
