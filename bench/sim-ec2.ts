/**
 * The simulated EC2 of the spot day (bench/spot-day.ts, whose header states
 * the world's rules): the seeded spot-price trace of each (type, zone) with
 * its spike, and an EC2 that answers the four calls the real ec2 driver
 * makes (DescribeSpotPriceHistory, RunInstances, DescribeInstances,
 * TerminateInstances) from that trace and its own instances, in the shapes
 * the EC2 API reference gives them. Each instance also holds the state of
 * the machine it is (its pilot, its payloads), which spot-day.ts steps.
 */
import {
  DescribeInstancesCommand,
  DescribeSpotPriceHistoryCommand,
  type Filter,
  type Instance,
  RunInstancesCommand,
  type RunInstancesCommandInput,
  TerminateInstancesCommand,
  type _InstanceType,
} from '@aws-sdk/client-ec2';
import type { FakeClock } from '../src/shared/clock.js';
import type { dayOfBursts } from './director.js';
import { rng } from './seeded.js';

/** On-demand prices per hour of the simulated types (8 vCPUs each), about as EC2's price list gives them for Linux in us-east-1. */
export const ON_DEMAND: Readonly<Record<string, number>> = { 'c5.2xlarge': 0.34, 'm5a.2xlarge': 0.344, 'm5.2xlarge': 0.384 };
/** The zones of the simulated region. */
export const ZONES = ['us-east-1a', 'us-east-1b'] as const;
/** The spike: from, to (ms), times the on-demand price; on the offer cheapest at `chosenAt`. */
const SPIKE = { chosenAt: 7 * 3_600_000, from: 7.5 * 3_600_000, to: 10.5 * 3_600_000, times: 1.6 };
/** The notice EC2 gives before it reclaims a spot instance. */
export const NOTICE_MS = 120_000;
/** An hour in ms. */
export const HOUR = 3_600_000;

/** One step of a spot-price trace: the price per hour from `at` (ms) on. */
export interface Step {
  at: number;
  price: number;
}

/** The seeded spot-price trace of each `type zone`, over 36 hours, and which of them spikes. */
export function spotTrace(seed: number): { steps: Map<string, Step[]>; spiked: { type: string; zone: string } } {
  const r = rng(seed);
  const out = new Map<string, Step[]>();
  for (const [type, od] of Object.entries(ON_DEMAND)) {
    for (const zone of ZONES) {
      const steps: Step[] = [];
      let f = 0.3 + r() * 0.1;
      for (let t = 0; t < 36 * HOUR; t += Math.round((2 + r() * 4) * HOUR)) {
        if (t > 0) f = Math.min(0.55, Math.max(0.25, f * (0.85 + r() * 0.35)));
        steps.push({ at: t, price: Number((od * f).toFixed(4)) });
      }
      out.set(`${type} ${zone}`, steps);
    }
  }
  // every type has 8 cores: the cheapest per hour is the cheapest per core-hour
  const [key, steps] = [...out].sort((a, b) => priceIn(a[1], SPIKE.chosenAt) - priceIn(b[1], SPIKE.chosenAt) || a[0].localeCompare(b[0]))[0]!;
  const [type, zone] = key.split(' ') as [string, string];
  const after = priceIn(steps, SPIKE.to);
  const kept = steps.filter((s) => s.at < SPIKE.from || s.at > SPIKE.to);
  kept.push({ at: SPIKE.from, price: Number((ON_DEMAND[type]! * SPIKE.times).toFixed(4)) }, { at: SPIKE.to, price: after });
  out.set(key, kept.sort((a, b) => a.at - b.at));
  return { steps: out, spiked: { type, zone } };
}

function priceIn(steps: readonly Step[], t: number): number {
  let p = steps[0]!.price;
  for (const s of steps) if (s.at <= t) p = s.price;
  return p;
}

/** A payload of the trace (director.ts dayOfBursts). */
export type TracePayload = ReturnType<typeof dayOfBursts>[number];

/** An instance of the simulated EC2, with the machine it is. */
export interface SimInstance {
  id: string;
  type: string;
  zone: string;
  market: 'spot' | 'on-demand';
  maxPrice: number;
  tags: { Key?: string; Value?: string }[];
  clientToken: string | undefined;
  launchedAt: number;
  terminatedAt: number | null;
  reason: string;
  credential: string;
  bootAt: number;
  registeredAt: number | null;
  pilotId: number | null;
  haltedAt: number | null;
  haltCode: number | null;
  running: { payload: TracePayload; startAt: number; endAt: number }[];
  idleSince: number;
  ran: number;
  draining: boolean;
  noticeAt: number | null;
  money: number;
}

const awsError = (code: string, message: string) => Object.assign(new Error(message), { name: code });

/** The simulated EC2 (the rules above), answering the four calls the ec2 driver makes. */
export class SimEc2 {
  readonly instances = new Map<string, SimInstance>();
  private next = 0x10000;
  failedRequests = 0;

  constructor(
    private readonly clock: FakeClock,
    private readonly trace: ReadonlyMap<string, Step[]>,
    private readonly bootSec: number,
  ) {}

  /** The spot price of `type zone` now. */
  price(type: string, zone: string): number {
    return priceIn(this.trace.get(`${type} ${zone}`)!, this.clock.now());
  }

  /** The SDK client's `send`, for the commands the driver sends. */
  async send(cmd: unknown): Promise<unknown> {
    if (cmd instanceof DescribeSpotPriceHistoryCommand) {
      const zones = cmd.input.Filters?.find((f) => f.Name === 'availability-zone')?.Values ?? [...ZONES];
      const now = this.clock.now();
      const history = (cmd.input.InstanceTypes ?? []).flatMap((type) =>
        zones.map((zone) => {
          const steps = this.trace.get(`${type} ${zone}`)!;
          const at = [...steps].reverse().find((s) => s.at <= now)!.at;
          return { AvailabilityZone: zone, InstanceType: type as _InstanceType, ProductDescription: 'Linux/UNIX' as const, SpotPrice: this.price(type, zone).toFixed(6), Timestamp: new Date(at) };
        }),
      );
      return { SpotPriceHistory: history, NextToken: '' };
    }
    if (cmd instanceof RunInstancesCommand) return { Instances: [this.view(this.run(cmd.input))] };
    if (cmd instanceof DescribeInstancesCommand) return { Reservations: this.describe(cmd.input).map((i) => ({ Instances: [this.view(i)] })) };
    if (cmd instanceof TerminateInstancesCommand) {
      for (const id of cmd.input.InstanceIds ?? []) this.terminate(this.instances.get(id)!, 'Client.UserInitiatedShutdown');
      return { TerminatingInstances: [] };
    }
    throw new Error(`the simulated EC2 does not answer ${(cmd as object).constructor.name}`);
  }

  destroy(): void {}

  /** RunInstances: one instance, or SpotMaxPriceTooLow. */
  run(input: RunInstancesCommandInput): SimInstance {
    const same = [...this.instances.values()].find((i) => input.ClientToken !== undefined && i.clientToken === input.ClientToken);
    if (same) return same;
    const type = input.InstanceType!;
    const zone = input.Placement?.AvailabilityZone ?? ZONES[0];
    const spot = input.InstanceMarketOptions?.MarketType === 'spot';
    const maxPrice = spot && input.InstanceMarketOptions?.SpotOptions?.MaxPrice !== undefined ? Number(input.InstanceMarketOptions.SpotOptions.MaxPrice) : ON_DEMAND[type]!;
    if (spot && maxPrice < this.price(type, zone)) {
      this.failedRequests++;
      throw awsError('SpotMaxPriceTooLow', `Your Spot request price of ${maxPrice} is lower than the minimum required Spot request fulfillment price of ${this.price(type, zone)}.`);
    }
    const userData = Buffer.from(input.UserData ?? '', 'base64').toString('utf8');
    const now = this.clock.now();
    const i: SimInstance = {
      id: `i-0${(this.next++).toString(16).padStart(16, '0')}`,
      type,
      zone,
      market: spot ? 'spot' : 'on-demand',
      maxPrice,
      tags: input.TagSpecifications?.find((t) => t.ResourceType === 'instance')?.Tags ?? [],
      clientToken: input.ClientToken,
      launchedAt: now,
      terminatedAt: null,
      reason: '',
      credential: /VMPILOT_PILOT_TOKEN=\\?'?(vmpi_[A-Za-z0-9_-]+)/.exec(userData)?.[1] ?? '',
      bootAt: now + this.bootSec * 1000,
      registeredAt: null,
      pilotId: null,
      haltedAt: null,
      haltCode: null,
      running: [],
      idleSince: now,
      ran: 0,
      draining: false,
      noticeAt: null,
      money: 0,
    };
    this.instances.set(i.id, i);
    return i;
  }

  /** The instance ends now (halted and powered off, reclaimed, or terminated by a call). */
  terminate(i: SimInstance, reason: string): void {
    if (i.terminatedAt !== null) return;
    i.terminatedAt = this.clock.now();
    i.reason = reason;
  }

  private describe(input: { InstanceIds?: string[]; Filters?: Filter[] }): SimInstance[] {
    let list = input.InstanceIds ? input.InstanceIds.map((id) => this.instances.get(id)).filter((i): i is SimInstance => i !== undefined) : [...this.instances.values()];
    for (const f of input.Filters ?? []) {
      const values = f.Values ?? [];
      list = list.filter((i) => {
        if (f.Name === 'instance-state-name') return values.includes(this.state(i));
        if (f.Name === 'client-token') return values.includes(i.clientToken ?? '');
        if (f.Name?.startsWith('tag:')) return values.includes(i.tags.find((t) => t.Key === f.Name!.slice(4))?.Value ?? '\0');
        throw awsError('InvalidParameterValue', `The filter '${f.Name}' is invalid`);
      });
    }
    return list;
  }

  private state(i: SimInstance): string {
    return i.terminatedAt !== null ? 'terminated' : i.registeredAt === null && this.clock.now() < i.bootAt ? 'pending' : 'running';
  }

  private view(i: SimInstance): Instance {
    return {
      InstanceId: i.id,
      InstanceType: i.type as _InstanceType,
      LaunchTime: new Date(i.launchedAt),
      Placement: { AvailabilityZone: i.zone },
      State: { Name: this.state(i) as 'running' },
      Tags: i.tags,
      ClientToken: i.clientToken,
      ...(i.market === 'spot' ? { InstanceLifecycle: 'spot' as const } : {}),
      ...(i.reason ? { StateReason: { Code: i.reason, Message: i.reason } } : {}),
    };
  }
}
