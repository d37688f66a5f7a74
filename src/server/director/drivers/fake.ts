/**
 * A scriptable fake driver for the director's tests, in the spirit of
 * Nomad's mock driver: a `FakeCloud` holds the resources (so two drivers, or
 * a driver before and after a director restart, see the same ones), and a
 * test can make creates fail, hang before or after taking effect, listings
 * fail, and machines run or end. It keeps the driver contract
 * (ports.ts `Driver`); the contract suite runs against it.
 */
import type { Clock } from '../../../shared/clock.js';
import { VmpilotError } from '../../../shared/errors.js';
import type { CreateRequest, Driver, DriverResource } from '../ports.js';

/** One resource of the fake cloud, with the request that made it. */
export interface FakeResource extends DriverResource {
  request: CreateRequest;
}

/** The fake provider's state and script. */
export class FakeCloud {
  readonly resources = new Map<string, FakeResource>();
  /** Every create call, in order (repeats included). */
  readonly createCalls: CreateRequest[] = [];
  readonly deleteCalls: string[] = [];
  /** The next creates fail with these messages. */
  failCreates: string[] = [];
  /** Creates take effect, then never answer (a director killed mid-call). */
  hangAfterEffect = false;
  /** Creates never answer and take no effect (killed before the call got through). */
  hangBeforeEffect = false;
  /** Listings fail. */
  failList = false;
  /** New machines start `running` (else `pending`). */
  startRunning = false;
  private nextId = 1;

  constructor(private readonly clock: Clock) {}

  /** Make a resource directly (one this director does not know: an orphan). */
  add(key: string, request: CreateRequest): FakeResource {
    const r: FakeResource = { id: `fake-${this.nextId++}`, key, state: this.startRunning ? 'running' : 'pending', createdAt: this.clock.now(), detail: '', request };
    this.resources.set(r.id, r);
    return r;
  }

  /** The machine runs. */
  run(id: string): void {
    this.set(id, { state: 'running' });
  }

  /** The machine ended by itself (its pilot halted and powered it off). */
  end(id: string, detail = 'powered off'): void {
    this.set(id, { state: 'ended', detail });
  }

  /** The resource is gone without a delete (a site removed it). */
  vanish(id: string): void {
    this.resources.delete(id);
  }

  /** The resource with this key, if any. */
  byKey(key: string): FakeResource | undefined {
    return [...this.resources.values()].find((r) => r.key === key);
  }

  private set(id: string, change: Partial<FakeResource>): void {
    const r = this.resources.get(id);
    if (!r) throw new Error(`no fake resource ${id}`);
    this.resources.set(id, { ...r, ...change });
  }
}

const never = new Promise<never>(() => undefined);

/** A driver over a FakeCloud that owns the keys starting with `prefix`. */
export class FakeDriver implements Driver {
  readonly kind = 'fake';

  constructor(
    readonly cloud: FakeCloud,
    private readonly prefix: string,
  ) {}

  async create(request: CreateRequest): Promise<DriverResource> {
    this.cloud.createCalls.push(request);
    if (!request.key.startsWith(this.prefix)) throw new VmpilotError('VMP_INTERNAL', `key ${request.key} is not this driver's (${this.prefix}…)`);
    if (this.cloud.hangBeforeEffect) return never;
    const message = this.cloud.failCreates.shift();
    if (message !== undefined) throw new VmpilotError('VMP_SERVER', `fake cloud refused the create: ${message}`);
    const r = this.cloud.byKey(request.key) ?? this.cloud.add(request.key, request);
    if (this.cloud.hangAfterEffect) return never;
    return view(r);
  }

  async list(): Promise<DriverResource[]> {
    if (this.cloud.failList) throw new VmpilotError('VMP_UNREACHABLE', 'fake cloud: listing failed');
    // one pass, no copies: the director's benchmark lists 2,100 resources for each of 50 endpoints every cycle
    const out: DriverResource[] = [];
    for (const r of this.cloud.resources.values()) if (r.key.startsWith(this.prefix)) out.push(view(r));
    return out;
  }

  async describe(id: string): Promise<DriverResource | null> {
    const r = this.cloud.resources.get(id);
    return r && r.key.startsWith(this.prefix) ? view(r) : null;
  }

  async delete(id: string): Promise<void> {
    this.cloud.deleteCalls.push(id);
    const r = this.cloud.resources.get(id);
    if (r && r.key.startsWith(this.prefix)) this.cloud.resources.delete(id);
  }

  async close(): Promise<void> {}
}

function view(r: FakeResource): DriverResource {
  return { id: r.id, key: r.key, state: r.state, createdAt: r.createdAt, detail: r.detail };
}
