/**
 * The director's loop: every few seconds (on the Clock port), and soon after
 * a submit (`poke`), one cycle:
 *
 * 1. read the live instances and pilots; list every driver's resources;
 * 2. reconcile (reconcile.ts): adopt what a restart left mid-create, issue
 *    again a create that never reached its driver, time out, drain, delete,
 *    remove orphans; learn from each end (failure memory, offering stats);
 * 3. decide (decide.ts) from the queue's demand and the supply left;
 * 4. start: for each machine decided, record the instance with its
 *    idempotency key and the hash of a fresh credential FIRST, then call the
 *    driver. A crash between the two leaves a `requested` record that the
 *    next cycle (after a restart, the first) adopts or creates again under
 *    the same key: never two machines for one record, never a machine
 *    without one;
 * 5. keep the cycle's record (`director status`).
 *
 * One cycle runs at a time. A failed driver call is logged, recorded in the
 * cycle's actions, and tried again next cycle (deletes), or fails its
 * instance and backs its offering off (creates).
 */
import type { Clock } from '../../shared/clock.js';
import { VmpilotError, describeError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { type Secrets, credentialHash, randomSecrets, resourcePrefix } from './credential.js';
import { type Decision, type EndpointState, type LiveCount, type PlannedStart, decide } from './decide.js';
import { type DemandPolicy, demandFrom } from './demand.js';
import { type EndpointConfig, maxLifeSec, servedGroups } from './endpoint-config.js';
import { type FailureMemory, offeringKey, recordFailure, recordSuccess } from './failure-memory.js';
import { isLive } from './instance-states.js';
import { NO_STATS, type OfferingStats, withBootSample, withEndSample } from './offerings.js';
import { Lease } from './lease.js';
import type { CreateRequest, DirectorLease, DirectorStore, Driver, DriverResource, InstanceRecord } from './ports.js';
import type { StopResult } from '../../protocol/index.js';
import type { PriceSource } from './prices.js';
import { type Learnt, type Step, reconcile } from './reconcile.js';
import { type HandDeps, type StartOptions, startByHand, stopByHand } from './by-hand.js';
import { STOPPED_REASON } from './stop.js';
import { supplyFrom } from './supply.js';

/** One thing a cycle did, for its record. */
export interface CycleAction {
  kind: 'start' | 'create-again' | 'mark' | 'drain' | 'delete' | 'remove-orphan';
  endpoint: string;
  instanceId: number | null;
  detail: string;
  /** The driver's or the store's own words when it failed. */
  error: string | null;
}

/** What one cycle saw, decided and did. */
export interface CycleRecord {
  at: number;
  decision: Decision;
  actions: CycleAction[];
  /** Live instances of endpoints no longer configured (left alone). */
  unmanaged: number[];
  /** Set when another server's director held the lease: this one did nothing (its decision is empty). */
  standby?: DirectorLease;
}

/** What the director needs. */
export interface DirectorOptions {
  store: DirectorStore;
  clock: Clock;
  log: Logger;
  endpoints: readonly EndpointConfig[];
  /** The driver of each endpoint, by endpoint name. */
  drivers: ReadonlyMap<string, Driver>;
  /** This director's id, in every resource's tag (credential.ts resourcePrefix). */
  directorId: string;
  /**
   * The server's URL as machines reach it, for endpoints that do not set
   * their own; a function when it is known only once the server listens
   * (asked at each create).
   */
  serverUrl: string | (() => string);
  demandPolicy: DemandPolicy;
  prices?: PriceSource;
  secrets?: Secrets;
  /** Time between cycles (default 5 s). */
  everyMs?: number;
  /** At most this many queued payloads are looked at (default 100,000). */
  queueLimit?: number;
  /** A driver call that takes longer fails (default 300 s), so that one hung call cannot stop the loop. */
  driverCallMs?: number;
  /**
   * This server, as the holder of the director's lease (one director at a
   * time on one database; default: the host's name and the server's URL, so
   * that a server restarted where it ran takes its own lease back at once). A
   * director whose lease another holds does nothing but try again each cycle;
   * it takes over once the holder's lease ran out (it stopped renewing) or
   * was given back (the holder closed).
   */
  holder?: string;
  /**
   * How long a lease lasts unless renewed (default: the longer of 30 s and
   * three cycles; with `elected`, the longer of 10 s and two cycles).
   */
  leaseMs?: number;
  /**
   * The server runs the director only while it is the elected leader of
   * the replicas (leader.ts, PostgreSQL's advisory lock): the lease is then
   * the second guard, for the moments a stepped-down leader's last cycle
   * ends, and can be short, so that a new leader is not kept waiting long
   * by the lease of one that died.
   */
  elected?: boolean;
}

/** The lease's length unless configured: a short second guard when the director runs on an elected leader only. Pure. */
export function defaultLeaseMs(everyMs: number, elected: boolean): number {
  return elected ? Math.max(10_000, 2 * everyMs) : Math.max(30_000, 3 * everyMs);
}

/** The director: cycles until closed. */
export class Director {
  private stop = new AbortController();
  private closed = false;
  private wake = new AbortController();
  private loop: Promise<void> | null = null;
  private running: Promise<CycleRecord> | null = null;
  private readonly inFlight = new Set<number>();
  private orphansSeen = new Map<string, number>();
  private readonly byName: ReadonlyMap<string, EndpointConfig>;
  private readonly secrets: Secrets;
  readonly everyMs: number;
  private readonly lease: Lease;

  constructor(private readonly o: DirectorOptions) {
    this.byName = new Map(o.endpoints.map((e) => [e.name, e]));
    this.secrets = o.secrets ?? randomSecrets;
    this.everyMs = o.everyMs ?? 5000;
    this.lease = new Lease({ store: o.store, clock: o.clock, log: o.log, holder: o.holder, serverUrl: () => this.serverUrl(), leaseMs: o.leaseMs ?? defaultLeaseMs(this.everyMs, o.elected ?? false) });
  }

  private serverUrl(): string {
    return typeof this.o.serverUrl === 'function' ? this.o.serverUrl() : this.o.serverUrl;
  }

  /** Who held the lease at the last cycle, when it was another server (this one stands by); null when this one directs or has not cycled. */
  get standby(): DirectorLease | null {
    return this.lease.standby;
  }

  /** The endpoints it directs, in the order configured. */
  get endpoints(): readonly EndpointConfig[] {
    return this.o.endpoints;
  }

  /** This director's id (in every resource's tag). */
  get directorId(): string {
    return this.o.directorId;
  }

  /** True from `start()` until `pause()` or `close()`: the loop cycles. */
  get runs(): boolean {
    return this.loop !== null && !this.stop.signal.aborted;
  }

  /** The driver of `endpoint`, or undefined when it has none. */
  driverOf(endpoint: string): Driver | undefined {
    return this.o.drivers.get(endpoint);
  }

  /** One cycle now (or the one under way). */
  cycle(): Promise<CycleRecord> {
    this.running ??= this.runCycle().finally(() => (this.running = null));
    return this.running;
  }

  /**
   * Cycle at once (the first cycle reconciles what a restart or another
   * server's director left), then every `everyMs` and after each poke; again
   * after a `pause()`, not after `close()`.
   */
  start(): void {
    if (this.closed || this.loop !== null) return;
    if (this.stop.signal.aborted) this.stop = new AbortController();
    this.loop = (async () => {
      while (!this.stop.signal.aborted) {
        await this.cycle().catch((err: unknown) => this.o.log.error({ err: describeError(err) }, 'director cycle failed'));
        if (this.stop.signal.aborted) break;
        await this.o.clock.sleep(this.everyMs, AbortSignal.any([this.stop.signal, this.wake.signal]));
        if (this.wake.signal.aborted) this.wake = new AbortController();
      }
    })();
  }

  /**
   * Start instances whatever the demand (`instances start`, an endpoint
   * test): by-hand.ts `startByHand`, then cycle soon to create them.
   */
  async startByHand(endpoint: string, o: StartOptions = {}): Promise<InstanceRecord[]> {
    const out = await startByHand(this.handDeps(), endpoint, o);
    this.poke();
    return out;
  }

  /**
   * Stop instances by hand (`instances stop ID…`): drain, then discard
   * (by-hand.ts `stopByHand`, the rule of stop.ts); cycle soon.
   */
  async stopByHand(ids: readonly number[]): Promise<{ results: StopResult[]; drained: number[] }> {
    const out = await stopByHand(this.handDeps(), ids);
    this.poke();
    return out;
  }

  private handDeps(): HandDeps {
    const { store, clock, log, directorId, drivers, prices } = this.o;
    return { store, clock, log, directorId, drivers, byName: this.byName, secrets: this.secrets, ...(prices ? { prices } : {}) };
  }

  /** Cycle soon (work was submitted). */
  poke(): void {
    this.wake.abort();
  }

  /**
   * Stop cycling at once (driver calls under way are no longer waited for,
   * no further machine is started), wait for the cycle under way and give
   * the lease back; `start()` carries on. Machines keep running, drivers
   * stay open.
   */
  async pause(): Promise<void> {
    this.stop.abort();
    await this.loop;
    this.loop = null;
    await this.running?.catch(() => undefined);
    await this.lease.giveBack();
  }

  /** Stop cycling for good and wait for the cycle under way. Machines keep running; drivers are closed. */
  async close(): Promise<void> {
    this.closed = true;
    await this.pause();
    await Promise.all([...this.o.drivers.values()].map((d) => d.close().catch(() => undefined)));
  }

  private async runCycle(): Promise<CycleRecord> {
    const { store, clock } = this.o;
    if (!(await this.lease.renew())) {
      const at = clock.now();
      return { at, decision: decide({ now: at, demand: [], supply: supplyFrom([], [], () => 0, at), endpoints: [], failures: new Map(), prices: new Map(), stats: new Map() }), actions: [], unmanaged: [], standby: this.lease.standby! };
    }
    const actions: CycleAction[] = [];
    let memory = await store.failureMemory();
    let stats = await store.offeringStats();
    const memoryBefore = memory;
    const statsBefore = stats;

    // 1-2: what there is, and what to do about it
    const [instances, pilots, listings] = [await store.liveInstances(), await store.pilots(), await this.listAll()];
    const now = clock.now();
    const rec = reconcile({
      now,
      instances,
      pilots: new Map(pilots.map((p) => [p.id, p])),
      endpoints: this.byName,
      listings,
      inFlight: this.inFlight,
      orphansSeen: this.orphansSeen,
    });
    this.orphansSeen = rec.orphansSeen;
    if (rec.unmanaged.length > 0) this.o.log.warn({ instances: rec.unmanaged.map((i) => i.id) }, 'instances of endpoints no longer configured are left alone');
    for (const l of rec.learnt) ({ memory, stats } = this.learn(l, memory, stats, now));
    const skip = new Set<number>();
    for (const step of rec.steps) {
      const id = 'instance' in step ? step.instance.id : null;
      if (id !== null && skip.has(id)) continue;
      const failure = await this.carryOut(step, actions);
      if (failure) {
        if (id !== null) skip.add(id);
        if (failure.learnt) ({ memory, stats } = this.learn(failure.learnt, memory, stats, clock.now()));
      }
    }

    // 3: decide
    const live = (await store.liveInstances()).filter((i) => isLive(i.state));
    const disabled = await store.disabledEndpoints();
    const { queued, usage } = await store.queuedWork(this.o.queueLimit ?? 100_000);
    const at = clock.now();
    const decision = decide({
      now: at,
      demand: demandFrom(queued, usage, this.o.demandPolicy),
      supply: supplyFrom(pilots, live, (i) => this.lifeOf(i), at),
      endpoints: this.o.endpoints.map((config) => this.endpointState(config, live, disabled)),
      failures: memory,
      prices: (await this.o.prices?.prices(this.o.endpoints)) ?? new Map(),
      priceOrigins: this.o.prices?.origins?.() ?? new Map(),
      stats,
    });

    // 4: start, endpoints side by side, each one's in turn; only while the lease is still this
    // director's (the reconcile's driver calls may have outlasted it, and another may have taken over)
    const perEndpoint = new Map<string, PlannedStart[]>();
    if (await this.lease.renew()) for (const s of decision.starts) perEndpoint.set(s.endpoint, [...(perEndpoint.get(s.endpoint) ?? []), s]);
    const failed: Learnt[] = [];
    await Promise.all(
      [...perEndpoint].map(async ([name, list]) => {
        for (const s of list) {
          if (this.stop.signal.aborted) break; // paused or closing: the next leader decides again
          const f = await this.startOne(this.byName.get(name)!, s, actions);
          if (f) failed.push(f);
        }
      }),
    );
    for (const l of failed) ({ memory, stats } = this.learn(l, memory, stats, clock.now()));

    if (memory !== memoryBefore) await store.saveFailureMemory(memory);
    if (stats !== statsBefore) await store.saveOfferingStats(stats);
    const record: CycleRecord = { at, decision, actions, unmanaged: rec.unmanaged.map((i) => i.id) };
    await store.saveCycle(record);
    if (decision.starts.length > 0 || actions.length > 0) {
      this.o.log.info({ starts: decision.starts.length, actions: actions.length, queued: decision.demand.payloads, unmetAfterStarts: decision.demand.payloads - decision.onSupply.payloads - decision.onStarts.payloads }, 'director cycle');
    }
    return record;
  }

  /**
   * `call`, or VMP_DRIVER once it has taken `driverCallMs`. A create that
   * answers later has still been recorded first: the next cycles adopt or
   * remove what it made, by its key.
   */
  private async bounded<T>(call: Promise<T>, what: string): Promise<T> {
    const ms = this.o.driverCallMs ?? 300_000;
    const done = new AbortController();
    const late = this.o.clock.sleep(ms, AbortSignal.any([done.signal, this.stop.signal])).then(() => {
      if (done.signal.aborted) return undefined as never;
      throw new VmpilotError('VMP_DRIVER', this.stop.signal.aborted ? `${what}: the director is stopping` : `${what} took longer than ${ms / 1000} s`);
    });
    try {
      return await Promise.race([call, late]);
    } finally {
      done.abort();
      late.catch(() => undefined);
    }
  }

  /** Every driver's listing; null for one that failed (it is then trusted for nothing this cycle). */
  private async listAll(): Promise<Map<string, DriverResource[] | null>> {
    const out = new Map<string, DriverResource[] | null>();
    await Promise.all(
      this.o.endpoints.map(async (ep) => {
        const driver = this.o.drivers.get(ep.name);
        if (!driver) return out.set(ep.name, null);
        try {
          out.set(ep.name, await this.bounded(driver.list(), `listing ${ep.name}`));
        } catch (err) {
          this.o.log.warn({ endpoint: ep.name, err: describeError(err) }, 'cannot list the endpoint\'s resources');
          out.set(ep.name, null);
        }
      }),
    );
    return out;
  }

  private endpointState(config: EndpointConfig, live: readonly InstanceRecord[], disabled: ReadonlySet<string>): EndpointState {
    const mine = live.filter((i) => i.endpoint === config.name);
    const liveByGroup = new Map<string, LiveCount>();
    for (const i of mine) {
      if (i.forGroup === null) continue;
      const c = liveByGroup.get(i.forGroup) ?? { instances: 0, cores: 0 };
      c.instances++;
      c.cores += i.cores;
      liveByGroup.set(i.forGroup, c);
    }
    return {
      config,
      enabled: config.enabled && !disabled.has(config.name) && this.o.drivers.has(config.name),
      live: { instances: mine.length, cores: mine.reduce((n, i) => n + i.cores, 0) },
      liveByGroup,
    };
  }

  private lifeOf(i: InstanceRecord): number {
    const ep = this.byName.get(i.endpoint);
    const shape = ep?.shapes.find((s) => s.name === i.shape);
    return ep && shape ? maxLifeSec(ep, shape) : (ep?.timeouts.maxLifetimeSec ?? 0);
  }

  private learn(l: Learnt, memory: FailureMemory, stats: ReadonlyMap<string, OfferingStats>, now: number) {
    const ep = this.byName.get(l.key.slice(0, l.key.indexOf('/')));
    if (!ep) return { memory, stats };
    if (l.kind === 'failure') {
      this.o.log.warn({ offering: l.key, kind: l.failure, reason: l.reason }, 'offering backed off');
      return { memory: recordFailure(memory, l.key, l.failure, l.reason, now, ep.backoff), stats };
    }
    if (l.kind === 'success') return { memory: recordSuccess(memory, l.key), stats };
    const s = stats.get(l.key) ?? NO_STATS;
    const next = new Map(stats);
    next.set(l.key, l.kind === 'boot' ? withBootSample(s, l.sec) : withEndSample(s, l.noWork));
    return { memory, stats: next };
  }

  private request(ep: EndpointConfig, i: InstanceRecord, credential: string): CreateRequest {
    const life = this.lifeOf(i);
    return {
      key: i.key,
      shape: i.shape,
      cores: i.cores,
      memoryMb: i.memoryMb,
      lifetimeSec: life,
      bootstrap: {
        serverUrl: ep.serverUrl ?? this.serverUrl(),
        credential,
        idleTimeoutSec: ep.timeouts.idleSec,
        graceSec: ep.timeouts.payloadGraceSec,
        lifetimeSec: life,
      },
    };
  }

  /** Record, then create. Returns what a failed create teaches. */
  private async startOne(ep: EndpointConfig, s: PlannedStart, actions: CycleAction[]): Promise<Learnt | null> {
    const credential = this.secrets.credential();
    const draft = {
      key: this.secrets.key(resourcePrefix(this.o.directorId, ep.name)),
      endpoint: ep.name,
      shape: s.shape,
      cores: s.cores,
      memoryMb: s.memoryMb,
      forGroup: s.forGroup,
      requirementClass: s.requirementClass,
      groups: servedGroups(ep),
      credentialHash: credentialHash(credential),
      costPerHour: s.costPerHour,
      manual: false,
    };
    let rec: InstanceRecord;
    try {
      rec = await this.o.store.createInstance(draft, this.o.clock.now());
    } catch (err) {
      actions.push({ kind: 'start', endpoint: ep.name, instanceId: null, detail: `${s.shape} for ${s.forGroup}`, error: describeError(err) });
      return null;
    }
    return this.callCreate(ep, rec, credential, 'start', `${s.shape} for ${s.payloads} queued payload(s) of ${s.forGroup}`, actions);
  }

  private async callCreate(ep: EndpointConfig, rec: InstanceRecord, credential: string, kind: 'start' | 'create-again', detail: string, actions: CycleAction[]): Promise<Learnt | null> {
    const driver = this.o.drivers.get(ep.name)!;
    this.inFlight.add(rec.id);
    try {
      const res = await this.bounded(driver.create(this.request(ep, rec, credential)), `creating ${rec.key}`);
      await this.o.store.updateInstance(rec.id, { state: res.state === 'running' ? 'booting' : 'starting', reason: `created ${res.id}`, driverId: res.id }, this.o.clock.now());
      actions.push({ kind, endpoint: ep.name, instanceId: rec.id, detail: `${detail}: ${res.id}`, error: null });
      return null;
    } catch (err) {
      const why = describeError(err);
      // stopped by an operator while its create was under way: not the offering's failure; the next cycle removes what it made, by its key
      const now = await this.o.store.getInstance(rec.id).catch(() => null);
      if (now?.state === 'failed' && now.reason === STOPPED_REASON) {
        actions.push({ kind, endpoint: ep.name, instanceId: rec.id, detail: `${detail}: ${STOPPED_REASON} while it was being created`, error: null });
        return null;
      }
      actions.push({ kind, endpoint: ep.name, instanceId: rec.id, detail, error: why });
      this.o.log.warn({ endpoint: ep.name, instance: rec.id, err: why }, 'create failed');
      await this.o.store.updateInstance(rec.id, { state: 'failed', reason: `create failed: ${why}` }, this.o.clock.now()).catch(() => undefined);
      return { key: offeringKey(ep.name, rec.shape), kind: 'failure', failure: 'driver-error', reason: why };
    } finally {
      this.inFlight.delete(rec.id);
    }
  }

  /** Carry out one reconcile step; returns non-null when it failed (later steps of its instance are skipped). */
  private async carryOut(step: Step, actions: CycleAction[]): Promise<{ learnt: Learnt | null } | null> {
    const { store, clock } = this.o;
    const endpoint = step.kind === 'remove-orphan' ? step.endpoint : step.instance.endpoint;
    const driver = this.o.drivers.get(endpoint);
    const note = (kind: CycleAction['kind'], instanceId: number | null, detail: string, error: string | null = null) =>
      actions.push({ kind, endpoint, instanceId, detail, error });
    try {
      switch (step.kind) {
        case 'mark':
          await store.updateInstance(step.instance.id, step.change, clock.now());
          note('mark', step.instance.id, `${step.instance.state} → ${step.change.state}: ${step.change.reason}`);
          return null;
        case 'drain':
          await store.drainPilot(step.pilotId, step.reason, clock.now());
          await store.updateInstance(step.instance.id, { state: step.instance.state, reason: `draining: ${step.reason}`, drainAt: clock.now() }, clock.now());
          note('drain', step.instance.id, step.reason);
          return null;
        case 'remove':
          if (step.driverId !== null) {
            if (!driver) throw new Error(`endpoint ${endpoint} has no driver`);
            await this.bounded(driver.delete(step.driverId), `deleting ${step.driverId}`);
          }
          await store.updateInstance(step.instance.id, { state: 'deleted', reason: step.instance.reason }, clock.now());
          note('delete', step.instance.id, step.driverId === null ? 'nothing at the driver' : `deleted ${step.driverId}`);
          return null;
        case 'remove-orphan':
          if (!driver) return null;
          await this.bounded(driver.delete(step.resource.id), `deleting ${step.resource.id}`);
          this.o.log.warn({ endpoint, resource: step.resource.id, key: step.resource.key }, 'removed a resource tagged ours that no record knows');
          note('remove-orphan', null, `${step.resource.id} (${step.resource.key})`);
          return null;
        case 'create': {
          const ep = this.byName.get(endpoint)!;
          const credential = this.secrets.credential();
          const rec = await store.updateInstance(step.instance.id, { state: 'requested', reason: 'the create is issued again: its driver had no resource of its key', credentialHash: credentialHash(credential) }, clock.now());
          const learnt = await this.callCreate(ep, rec, credential, 'create-again', `again with key ${rec.key}`, actions);
          return learnt ? { learnt } : null;
        }
      }
    } catch (err) {
      const why = describeError(err);
      this.o.log.warn({ endpoint, step: step.kind, err: why }, 'director step failed');
      note(step.kind === 'remove' ? 'delete' : step.kind === 'create' ? 'create-again' : step.kind, 'instance' in step ? step.instance.id : null, 'failed', why);
      return { learnt: null };
    }
  }
}
