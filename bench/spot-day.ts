/**
 * The director's cost on a day of spot-price changes (bundled by
 * bench/director.mjs), on its real code: the Director (loop.ts, decide.ts)
 * with an `ec2` endpoint whose shapes are priced `{ from: driver }`, the
 * real Ec2Driver (drivers/ec2/: its spot price cache, its offer ranking,
 * RunInstances with a MaxPrice) behind the real DriverPrices (the server's
 * PriceSource, drivers/live-prices.ts), the SDK client replaced by the
 * simulated EC2 below. Same bursts of work as `simulateDay` (director.ts
 * `dayOfBursts`, seed 11) and the same machine model.
 *
 * The world's rules:
 * - Offerings: three 8-core instance types in two zones, each type with its
 *   on-demand price per hour (`ON_DEMAND`). Each (type, zone) has a spot
 *   price that steps every 2 to 6 hours (seeded), each step 0.85 to 1.2
 *   times the last, within 25 % to 55 % of the type's on-demand price,
 *   from a start at 30 % to 40 %; and the (type, zone) cheapest at 7:00,
 *   when the biggest burst comes (so the one its machines are bought on:
 *   the worst case for a rule that follows spot prices), spikes to 1.6
 *   times its on-demand price from 7:30 to 10:30. This is the shape of
 *   public spot-price history (flat steps, now and then a spike past
 *   on-demand), not a replay of it.
 * - EC2 (`SimEc2`): DescribeSpotPriceHistory answers each (type, zone)'s
 *   price now; RunInstances of a spot instance whose MaxPrice is below the
 *   price now fails with SpotMaxPriceTooLow, else the instance is made
 *   (its MaxPrice: the one asked, else the on-demand price, as EC2's
 *   default). A spot instance is billed the spot price in effect, an
 *   on-demand one its on-demand price, per tick of its life (per-second
 *   billing, to 10 s), from RunInstances until it is terminated.
 * - Interruption: when a (type, zone)'s spot price passes a running spot
 *   instance's MaxPrice, EC2 gives it the 2-minute notice: its pilot takes
 *   no new work; payloads that end within the 2 minutes end; at the end of
 *   them the instance is reclaimed and the payloads still running are
 *   evicted and queued again (in their place by submit time: the server
 *   requeues evicted work), their partial run lost.
 * - Machines, as in `simulateDay`: boot in `bootSec` (then their pilot
 *   registers with the instance's credential, read from its user-data),
 *   run queued payloads first come first served, halt after `idleSec` with
 *   nothing to run (code 300) and power off, which terminates the instance;
 *   a pilot the director drains takes no new work and halts (code 100) once
 *   its payloads are done.
 * - Rules, on the same world and bursts:
 *   - `spot`: vmpilot's Director, shapes of the three types (market `any`:
 *     spot ranked against on-demand), priced live by its driver; it ranks
 *     offers by money per useful core-hour; the driver asks spot at the
 *     cap (the on-demand price, the default).
 *   - `on-demand`: the same Director and endpoint, every shape on-demand
 *     (market `on-demand`, priced by the driver from onDemandPrices).
 *   - `fixed-bid`: what VMDIRAC did: one type in one zone (the one that
 *     spikes: an operator picks the offer cheap when it is configured), a
 *     fixed bid (half its on-demand price), no look at prices; machines started by the VMDIRAC-like rule of
 *     `simulateDay` (each cycle `min(1, max − active, queued − booting)`),
 *     RunInstances straight to EC2; a request under the price fails and is
 *     counted.
 * - A payload's wait is from its submit to the start of the run that
 *   completed it (an evicted payload's wait goes on). Useful core-hours are
 *   those of completed runs only.
 *
 * Nothing here touches a network or a database.
 */
import {
  DescribeInstancesCommand,
  DescribeSpotPriceHistoryCommand,
  type EC2Client,
  type Filter,
  type Instance,
  RunInstancesCommand,
  type RunInstancesCommandInput,
  TerminateInstancesCommand,
  type _InstanceType,
} from '@aws-sdk/client-ec2';
import type { Ec2Settings } from '../src/server/director/cloud-settings.js';
import { resourcePrefix } from '../src/server/director/credential.js';
import { Ec2Driver } from '../src/server/director/drivers/ec2/driver.js';
import { DriverPrices } from '../src/server/director/drivers/live-prices.js';
import { endpointsFrom } from '../src/server/director/endpoint-config.js';
import { Director } from '../src/server/director/loop.js';
import { MemoryDirectorStore } from '../src/server/director/memory-store.js';
import { FakeClock } from '../src/shared/clock.js';
import { silentLogger } from '../src/shared/log.js';
import { dayOfBursts, percentile } from './director.js';
import { rng } from './seeded.js';

/** On-demand prices per hour of the simulated types (8 vCPUs each), as EC2's price list had them in us-east-1. */
export const ON_DEMAND: Readonly<Record<string, number>> = { 'c5.2xlarge': 0.34, 'm5a.2xlarge': 0.344, 'm5.2xlarge': 0.384 };
export const ZONES = ['us-east-1a', 'us-east-1b'] as const;
/** The spike: from, to (ms), times the on-demand price; on the offer cheapest at `chosenAt`. */
const SPIKE = { chosenAt: 7 * 3_600_000, from: 7.5 * 3_600_000, to: 10.5 * 3_600_000, times: 1.6 };
/** The fixed bid, as a share of its type's on-demand price. */
const FIXED_BID_SHARE = 0.5;
const NOTICE_MS = 120_000;
const HOUR = 3_600_000;

/** One step of a spot-price trace: the price per hour from `at` (ms) on. */
interface Step {
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
type TracePayload = ReturnType<typeof dayOfBursts>[number];

/** An instance of the simulated EC2, with the machine it is. */
interface SimInstance {
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

/** The simulated EC2 (the world's rules above), answering the four calls the ec2 driver makes. */
class SimEc2 {
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

/** The rules compared. */
export type SpotRule = 'spot' | 'on-demand' | 'fixed-bid';

/** What one rule's day came to. */
export interface SpotDay {
  payloads: number;
  completed: number;
  machines: number;
  money: number;
  usefulCoreHours: number;
  moneyPerUsefulCoreHour: number;
  /** Machine core-hours bought per useful core-hour. */
  boughtPerUseful: number;
  interrupted: number;
  /** Payload runs evicted by interruptions (a payload evicted twice counts twice). */
  evicted: number;
  lostCoreHours: number;
  /** RunInstances calls refused (SpotMaxPriceTooLow). */
  refused: number;
  longestWaitSec: number;
  p95WaitSec: number;
  /** Machines started per market, type and zone. */
  byOffer: Record<string, number>;
  /** The offer that spiked, and the fixed bid's offer and bid. */
  fixed: { type: string; zone: string; bid: number };
}

/** The world, stepped every `tickSec`, with the rule's cycle every `cycleSec`. */
export async function simulateSpotDay(rule: SpotRule, o: { seed: number; priceSeed: number; maxInstances: number; bootSec: number; idleSec: number; cycleSec: number; tickSec: number }): Promise<SpotDay> {
  const trace = dayOfBursts(o.seed);
  const clock = new FakeClock(0);
  const prices = spotTrace(o.priceSeed);
  const fixed = { ...prices.spiked, bid: Number((ON_DEMAND[prices.spiked.type]! * FIXED_BID_SHARE).toFixed(4)) };
  const ec2 = new SimEc2(clock, prices.steps, o.bootSec);
  const queue: TracePayload[] = [];
  const waits: number[] = [];
  let useful = 0;
  let evicted = 0;
  let lost = 0;
  let interrupted = 0;
  let next = 0;
  const types = Object.keys(ON_DEMAND);
  const market = rule === 'on-demand' ? 'on-demand' : 'any';
  const [endpoint] = endpointsFrom(
    {
      aws: {
        driver: 'ec2',
        ec2: {
          region: 'us-east-1',
          imageId: 'ami-0123456789abcdef0',
          zones: [...ZONES],
          onDemandPrices: { ...ON_DEMAND },
          shapes: Object.fromEntries(types.map((t) => [t.split('.')[0]!, { instanceTypes: [t], market }])),
        },
        shapes: Object.fromEntries(types.map((t) => [t.split('.')[0]!, { cores: 8, memoryMb: 16_000, price: { from: 'driver' } }])),
        limits: { instances: o.maxInstances },
        timeouts: { bootSec: o.bootSec * 4, registrationSec: o.bootSec * 4, idleSec: o.idleSec },
      },
    },
    'spot.yaml',
  );
  const store = new MemoryDirectorStore();
  let director: Director | null = null;
  if (rule !== 'fixed-bid') {
    const ep = endpoint!;
    const driver = new Ec2Driver({
      settings: ep.driver as Ec2Settings,
      prefix: resourcePrefix('bench', ep.name),
      directorId: 'bench',
      endpoint: ep.name,
      shapes: ep.shapes,
      agent: { file: 'vmpilot-linux-x64.gz', sha256: '1'.repeat(64), runSha256: '2'.repeat(64), kind: 'executable' },
      clock,
      client: ec2 as unknown as EC2Client,
    });
    const drivers = new Map([[ep.name, driver]]);
    let n = 0;
    director = new Director({
      store,
      clock,
      log: silentLogger(),
      endpoints: [ep],
      drivers,
      prices: new DriverPrices(drivers),
      directorId: 'bench',
      serverUrl: 'http://127.0.0.1:9',
      demandPolicy: { shares: new Map(), defaultShare: 1, defaultWallSec: 3600 },
      secrets: { key: (prefix) => `${prefix}k${++n}`, credential: () => `vmpi_bench-${++n}` },
      everyMs: o.cycleSec * 1000,
    });
  }
  const requeue = (p: TracePayload) => {
    const at = queue.findIndex((q) => q.submitAt > p.submitAt || (q.submitAt === p.submitAt && q.id > p.id));
    queue.splice(at < 0 ? queue.length : at, 0, p);
  };
  const halt = (m: SimInstance, now: number, code: number) => {
    m.haltedAt = now;
    m.haltCode = code;
    ec2.terminate(m, 'Client.InstanceInitiatedShutdown');
  };
  const live = () => [...ec2.instances.values()].filter((m) => m.terminatedAt === null);
  const end = 86_400_000;
  for (let now = 0; ; now += o.tickSec * 1000) {
    await clock.advance(now - clock.now());
    while (next < trace.length && trace[next]!.submitAt <= now) queue.push(trace[next++]!);
    for (const m of live()) {
      m.money += ((m.market === 'spot' ? ec2.price(m.type, m.zone) : ON_DEMAND[m.type]!) * o.tickSec) / 3600;
      if (m.market === 'spot' && m.noticeAt === null && ec2.price(m.type, m.zone) > m.maxPrice) {
        m.noticeAt = now;
        interrupted++;
      }
      if (m.registeredAt === null) {
        if (now < m.bootAt) continue;
        m.registeredAt = now;
        m.idleSince = now;
        if (director) m.pilotId = store.registerPilot(m.credential, { cores: 8, registeredAt: now })?.id ?? null;
      }
      for (const r of m.running.filter((x) => x.endAt <= now)) {
        useful += (r.payload.cores * r.payload.runSec) / 3600;
        waits.push((r.startAt - r.payload.submitAt) / 1000);
      }
      m.running = m.running.filter((x) => x.endAt > now);
      if (m.noticeAt !== null && now >= m.noticeAt + NOTICE_MS) {
        // reclaimed: what still runs is evicted and queued again
        for (const r of m.running) {
          evicted++;
          lost += (r.payload.cores * (now - r.startAt)) / HOUR;
          requeue(r.payload);
        }
        m.running = [];
        m.haltedAt = now;
        m.haltCode = 100;
        ec2.terminate(m, 'Server.SpotInstanceTermination');
        continue;
      }
      if (m.running.length === 0 && m.idleSince < 0) m.idleSince = now;
      const closed = m.draining || m.noticeAt !== null;
      if (closed && m.running.length === 0) {
        halt(m, now, 100);
        continue;
      }
      let free = 8 - m.running.reduce((s, x) => s + x.payload.cores, 0);
      for (let i = 0; !closed && free > 0 && i < queue.length; ) {
        const p = queue[i]!;
        if (p.cores > free) {
          i++;
          continue;
        }
        queue.splice(i, 1);
        m.running.push({ payload: p, startAt: now, endAt: now + p.runSec * 1000 });
        free -= p.cores;
        m.ran++;
        m.idleSince = -1;
      }
      if (m.running.length === 0 && m.idleSince >= 0 && now - m.idleSince >= o.idleSec * 1000) halt(m, now, 300);
    }
    const done = now >= end && next >= trace.length && queue.length === 0 && live().length === 0;
    if (done || now > end + 12 * HOUR) break;
    if (now % (o.cycleSec * 1000) !== 0) continue;
    if (!director) {
      // VMDIRAC-like: one type, one zone, a fixed bid, no look at prices
      const active = live();
      const booting = active.filter((m) => m.registeredAt === null).length;
      const n = Math.max(0, Math.min(1, o.maxInstances - active.length, queue.length - booting));
      for (let k = 0; k < n; k++) {
        try {
          ec2.run({ InstanceType: fixed.type as _InstanceType, Placement: { AvailabilityZone: fixed.zone }, MinCount: 1, MaxCount: 1, InstanceMarketOptions: { MarketType: 'spot', SpotOptions: { MaxPrice: String(fixed.bid) } } });
        } catch {
          // refused under the price: counted by the simulated EC2; tried again next cycle
        }
      }
      continue;
    }
    // vmpilot's Director: the world tells the store what it sees
    store.queued = queue.map((p) => ({ id: p.id, group: 'g', priority: 0, cores: { min: p.cores, max: p.cores, wholeNode: false }, memoryMb: null, wallSec: null, submittedAt: p.submitAt }));
    for (const m of ec2.instances.values()) {
      if (m.pilotId === null) continue;
      const used = m.running.reduce((s, x) => s + x.payload.cores, 0);
      const state = m.haltedAt !== null ? 'halted' : m.noticeAt !== null || m.draining ? 'draining' : 'running';
      store.setPilot(m.pilotId, { state, coresUsed: used, lastContactAt: now, payloadsRun: m.ran, ...(m.haltedAt !== null ? { haltedAt: m.haltedAt, shutdownCode: m.haltCode } : {}) });
    }
    const drainsBefore = store.drains.length;
    const running = new Map(live().map((m) => [m.id, m.running.length]));
    await director.cycle();
    for (const d of store.drains.slice(drainsBefore)) {
      const m = [...ec2.instances.values()].find((x) => x.pilotId === d.pilotId);
      if (m) m.draining = true;
    }
    for (const m of ec2.instances.values()) {
      // terminated by the director: a machine still running anything is a bug the figures would hide
      if (m.reason === 'Client.UserInitiatedShutdown' && m.terminatedAt === now && (running.get(m.id) ?? 0) > 0) throw new Error(`the director terminated ${m.id} while it ran ${m.running.length} payloads`);
    }
  }
  const all = [...ec2.instances.values()];
  const money = all.reduce((s, m) => s + m.money, 0);
  const bought = all.reduce((s, m) => s + (8 * ((m.terminatedAt ?? clock.now()) - m.launchedAt)) / HOUR, 0);
  const byOffer: Record<string, number> = {};
  for (const m of all) byOffer[`${m.market} ${m.type} ${m.zone}`] = (byOffer[`${m.market} ${m.type} ${m.zone}`] ?? 0) + 1;
  await director?.close();
  return {
    payloads: trace.length,
    completed: waits.length,
    machines: all.length,
    money,
    usefulCoreHours: useful,
    moneyPerUsefulCoreHour: money / useful,
    boughtPerUseful: bought / useful,
    interrupted,
    evicted,
    lostCoreHours: lost,
    refused: ec2.failedRequests,
    longestWaitSec: Math.max(...waits),
    p95WaitSec: percentile(waits, 95),
    byOffer,
    fixed,
  };
}
