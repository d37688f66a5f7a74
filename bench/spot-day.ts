/**
 * The director's cost on a day of spot-price changes (bundled by
 * bench/director.mjs), on its real code: the Director (loop.ts, decide.ts)
 * with an `ec2` endpoint whose shapes are priced `{ from: driver }`, the
 * real Ec2Driver (drivers/ec2/: its spot price cache, its offer ranking,
 * RunInstances with a MaxPrice) behind the real DriverPrices (the server's
 * PriceSource, drivers/live-prices.ts), the SDK client replaced by the
 * simulated EC2 of bench/sim-ec2.ts. The same bursts of work as
 * `simulateDay` (director.ts `dayOfBursts`, the same seed) and its machine
 * model.
 *
 * The world's rules:
 * - Offerings: three 8-core instance types in two zones, each type with its
 *   on-demand price per hour (sim-ec2.ts `ON_DEMAND`). Each (type, zone) has a spot
 *   price that steps every 2 to 6 hours (seeded), each step 0.85 to 1.2
 *   times the last, within 25 % to 55 % of the type's on-demand price,
 *   from a start at 30 % to 40 %; and the (type, zone) cheapest at 7:00,
 *   when the biggest burst comes (so the one its machines are bought on:
 *   the worst case for a rule that follows spot prices), spikes to 1.6
 *   times its on-demand price from 7:30 to 10:30. This is the shape of
 *   public spot-price history (flat steps, now and then a spike past
 *   on-demand), not a replay of it.
 * - EC2 (sim-ec2.ts `SimEc2`): DescribeSpotPriceHistory answers each (type, zone)'s
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
 *   nothing to run (code 300) and power off, which terminates the instance.
 *   One difference: a pilot the director drains, or one under the notice,
 *   takes no new work and halts (code 100) as soon as it runs nothing, as
 *   the agent does (`simulateDay` keeps a drained machine to its idle
 *   halt).
 * - Rules, on the same world and bursts:
 *   - `spot`: vmpilot's Director, shapes of the three types (market `any`:
 *     spot ranked against on-demand), priced live by its driver; it ranks
 *     offers by money per useful core-hour; the driver asks spot at the
 *     cap (the on-demand price, the default).
 *   - `on-demand`: the same Director and endpoint, every shape on-demand
 *     (market `on-demand`, priced by the driver from onDemandPrices).
 *   - `fixed-bid`: what VMDIRAC did: one type in one zone, a fixed bid
 *     (half its on-demand price), no look at prices; its offer is the one
 *     that spikes (cheap when it was chosen; the worst case for it too).
 *     Machines are started by the VMDIRAC-like rule of `simulateDay` (each
 *     cycle `min(1, max − active, queued − booting)`), RunInstances straight
 *     to EC2; a request under the price fails, is counted, and is made
 *     again next cycle.
 * - A payload's wait is from its submit to the start of the run that
 *   completed it (an evicted payload's wait goes on). Useful core-hours are
 *   those of completed runs only.
 *
 * Nothing here touches a network or a database.
 */
import type { EC2Client, _InstanceType } from '@aws-sdk/client-ec2';
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
import { HOUR, NOTICE_MS, ON_DEMAND, SimEc2, type SimInstance, type TracePayload, ZONES, spotTrace } from './sim-ec2.js';

/** The fixed bid, as a share of its type's on-demand price. */
const FIXED_BID_SHARE = 0.5;

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
      for (const r of m.running.filter((x) => x.endAt <= now)) {
        useful += (r.payload.cores * r.payload.runSec) / 3600;
        waits.push((r.startAt - r.payload.submitAt) / 1000);
      }
      m.running = m.running.filter((x) => x.endAt > now);
      if (m.noticeAt !== null && now >= m.noticeAt + NOTICE_MS) {
        // reclaimed (booted or not): what still runs is evicted and queued again
        for (const r of m.running) {
          evicted++;
          lost += (r.payload.cores * (now - r.startAt)) / HOUR;
          requeue(r.payload);
        }
        m.running = [];
        if (m.registeredAt !== null) {
          m.haltedAt = now;
          m.haltCode = 100;
        }
        ec2.terminate(m, 'Server.SpotInstanceTermination');
        continue;
      }
      if (m.registeredAt === null) {
        if (now < m.bootAt) continue;
        m.registeredAt = now;
        m.idleSince = now;
        if (director) m.pilotId = store.registerPilot(m.credential, { cores: 8, registeredAt: now })?.id ?? null;
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
      // a pilot halted before the last cycle was told so then
      if (m.pilotId === null || (m.haltedAt !== null && m.haltedAt < now - o.cycleSec * 1000)) continue;
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
