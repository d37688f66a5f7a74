/**
 * The `openstack` driver: a server per instance through the Compute API,
 * named by its key and carrying it in its metadata (`vmpilot-key`,
 * `vmpilot-prefix`), its user-data the #cloud-config with the instance's
 * credential (base64). Before a create the project's quota (Compute
 * limits; floating IPs too with `publicIp`) is read and a create that would
 * pass it is refused with the numbers. Flavour, image and networks are
 * looked up by name or id once and kept.
 *
 * With `publicIp: true`, the first listing that sees a server ACTIVE gives
 * it a floating IP from `floatingPool` (allocated on the server's port,
 * described by the key), and deleting the server releases it; a listing
 * also releases floating IPs described by a key of this endpoint whose
 * server is gone.
 *
 *   create ──▶ a server named KEY? return it : quota ──▶ POST /servers    (BUILD: pending)
 *   list   ──▶ GET /servers/detail?name=^PREFIX, ours by metadata; ACTIVE + publicIp ──▶ floating IP
 *   delete ──▶ DELETE /servers/ID, wait until it is gone ──▶ release its floating IPs
 */
import type { Clock } from '../../../../shared/clock.js';
import { VmpilotError } from '../../../../shared/errors.js';
import type { AgentRef } from '../../../delivery/shell.js';
import type { OpenStackSettings, OpenStackShapeSettings } from '../../cloud-settings.js';
import type { CreateRequest, Driver, DriverResource } from '../../ports.js';
import { type CloudHttp, cloudHttp } from '../cloud-http.js';
import { cloudUserData, shapeOf } from '../cloud-user-data.js';
import { OpenStackApi, type Json } from './api.js';
import { type Flavor, type ServerView, quotaProblem, resourceOf, serverBody } from './servers.js';

/** What the openstack driver is made of. */
export interface OpenStackDriverOptions {
  settings: OpenStackSettings;
  /** The prefix of this endpoint's keys (credential.ts resourcePrefix). */
  prefix: string;
  /** The endpoint's shapes (to find a request's shape by size when it names none). */
  shapes: readonly { name: string; cores: number; memoryMb: number }[];
  /** The agent file the machines fetch (the executable, from the server's manifest). */
  agent: AgentRef;
  clock: Clock;
  /** How long a delete waits for the server to be gone (default 120 s). */
  deleteWaitMs?: number;
  http?: CloudHttp;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const q = encodeURIComponent;
/** Nova's name filter is a regular expression: the key's characters are plain, but escape anyway. */
const anchored = (s: string) => `^${s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`;

/** OpenStack servers as a driver. */
export class OpenStackDriver implements Driver {
  readonly kind = 'openstack';
  private readonly http: CloudHttp;
  private readonly api: OpenStackApi;
  private readonly flavors = new Map<string, Promise<Flavor>>();
  private readonly images = new Map<string, Promise<string>>();
  private network: Promise<string | null> | null = null;
  private pool: Promise<string> | null = null;
  private readonly attaching = new Set<string>();

  constructor(private readonly o: OpenStackDriverOptions) {
    this.http = o.http ?? cloudHttp({ caFile: o.settings.caFile });
    this.api = new OpenStackApi(o.settings, this.http, o.clock);
  }

  async create(request: CreateRequest): Promise<DriverResource> {
    if (!request.key.startsWith(this.o.prefix)) throw new VmpilotError('VMP_INTERNAL', `key ${request.key} is not this endpoint's (${this.o.prefix}…)`);
    const existing = (await this.servers(anchored(request.key))).find((s) => s.name === request.key);
    if (existing) return resourceOf(existing);
    const shape = shapeOf(request, this.o.settings.shapes, this.o.shapes, 'openstack');
    const [flavor, image, network] = await Promise.all([this.flavor(shape.settings), this.image(shape.settings.image ?? this.o.settings.image), this.networkId()]);
    await this.checkQuota(flavor);
    const body = serverBody({
      key: request.key,
      prefix: this.o.prefix,
      flavorId: flavor.id,
      imageId: image,
      networkId: network,
      settings: this.o.settings,
      userData: cloudUserData(request, this.o.agent),
    });
    const made = await this.api.call('compute', 'POST', '/servers', body);
    const id = (made?.server as { id?: unknown } | undefined)?.id;
    if (typeof id !== 'string') throw new VmpilotError('VMP_DRIVER', 'openstack compute: POST /servers answered without a server id');
    return { id, key: request.key, state: 'pending', createdAt: this.o.clock.now(), detail: `BUILD (${flavor.name})` };
  }

  async list(): Promise<DriverResource[]> {
    const mine = await this.servers(anchored(this.o.prefix));
    if (this.o.settings.publicIp) {
      for (const s of mine) if (s.status === 'ACTIVE' && !s.deleting) await this.ensureFloatingIp(s);
      await this.releaseStrayIps(new Set(mine.filter((s) => !s.deleting).map((s) => s.name)));
    }
    return mine.filter((s) => !s.deleting).map(resourceOf);
  }

  async describe(id: string): Promise<DriverResource | null> {
    const s = await this.server(id);
    return s && !s.deleting ? resourceOf(s) : null;
  }

  async delete(id: string): Promise<void> {
    const s = await this.server(id);
    // only ours: a server of another endpoint or director is never touched
    if (!s) return;
    await this.api.call('compute', 'DELETE', `/servers/${q(id)}`, undefined, true);
    const until = this.o.clock.now() + (this.o.deleteWaitMs ?? 120_000);
    for (;;) {
      const left = await this.server(id);
      if (!left || left.status === 'DELETED') break;
      if (this.o.clock.now() >= until) throw new VmpilotError('VMP_DRIVER', `openstack: server ${id} (${s.name}) is still there ${Math.round((this.o.deleteWaitMs ?? 120_000) / 1000)} s after its delete (status ${left.status}); it is deleted again next cycle`);
      await this.o.clock.sleep(1000);
    }
    if (this.o.settings.publicIp) await this.releaseIps(s.name);
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  /** Our servers whose name matches `nameRegex` (by their metadata, so a look-alike name is not enough). */
  private async servers(nameRegex: string): Promise<ServerView[]> {
    const r = await this.api.call('compute', 'GET', `/servers/detail?name=${q(nameRegex)}`);
    const list = Array.isArray(r?.servers) ? (r.servers as Json[]) : [];
    return list.map((x) => this.view(x)).filter((s): s is ServerView => s !== null);
  }

  private async server(id: string): Promise<ServerView | null> {
    if (!/^[A-Za-z0-9-]{1,64}$/.test(id)) return null;
    const r = await this.api.call('compute', 'GET', `/servers/${q(id)}`, undefined, true);
    return r?.server ? this.view(r.server as Json) : null;
  }

  private view(x: Json): ServerView | null {
    const meta = (x.metadata ?? {}) as Record<string, unknown>;
    const name = typeof x.name === 'string' ? x.name : '';
    if (meta['vmpilot-prefix'] !== this.o.prefix || meta['vmpilot-key'] !== name || !name.startsWith(this.o.prefix)) return null;
    const fault = (x.fault as { message?: unknown } | undefined)?.message;
    const addresses = (x.addresses ?? {}) as Record<string, { addr?: string; 'OS-EXT-IPS:type'?: string }[]>;
    const floating = Object.values(addresses).flat().find((a) => a['OS-EXT-IPS:type'] === 'floating')?.addr ?? null;
    const created = Date.parse(typeof x.created === 'string' ? x.created : '');
    return {
      id: String(x.id),
      name,
      status: typeof x.status === 'string' ? x.status : 'UNKNOWN',
      deleting: x['OS-EXT-STS:task_state'] === 'deleting' || x.status === 'DELETED' || x.status === 'SOFT_DELETED',
      createdAt: Number.isFinite(created) ? created : null,
      fault: typeof fault === 'string' ? fault : null,
      floatingIp: floating,
    };
  }

  private flavor(s: OpenStackShapeSettings): Promise<Flavor> {
    let p = this.flavors.get(s.flavor);
    if (!p) {
      p = (async () => {
        const direct = await this.api.call('compute', 'GET', `/flavors/${q(s.flavor)}`, undefined, true).catch(() => null);
        const all = direct?.flavor ? [direct.flavor as Json] : (((await this.api.call('compute', 'GET', '/flavors/detail'))?.flavors ?? []) as Json[]);
        const f = all.find((x) => x.id === s.flavor || x.name === s.flavor);
        if (!f) throw new VmpilotError('VMP_DRIVER', `openstack: no flavour ${s.flavor} (by name or id) in this project; \`openstack flavor list\` shows them`);
        return { id: String(f.id), name: String(f.name), vcpus: Number(f.vcpus) || 0, ramMb: Number(f.ram) || 0 };
      })();
      this.flavors.set(s.flavor, p);
      p.catch(() => this.flavors.delete(s.flavor));
    }
    return p;
  }

  private image(nameOrId: string): Promise<string> {
    let p = this.images.get(nameOrId);
    if (!p) {
      p = (async () => {
        if (UUID.test(nameOrId)) {
          const r = await this.api.call('image', 'GET', `/v2/images/${q(nameOrId)}`, undefined, true);
          if (r?.id === nameOrId) return nameOrId;
        }
        const r = await this.api.call('image', 'GET', `/v2/images?name=${q(nameOrId)}&status=active`);
        const found = ((r?.images ?? []) as Json[]).filter((x) => x.name === nameOrId);
        if (found.length === 0) throw new VmpilotError('VMP_DRIVER', `openstack: no active image ${nameOrId} (by name or id); \`openstack image list\` shows them`);
        if (found.length > 1) throw new VmpilotError('VMP_DRIVER', `openstack: ${found.length} images are named ${nameOrId}; give the one to use by its id (${found.map((x) => String(x.id)).join(', ')})`);
        return String(found[0]!.id);
      })();
      this.images.set(nameOrId, p);
      p.catch(() => this.images.delete(nameOrId));
    }
    return p;
  }

  private async lookupNetwork(nameOrId: string, external: boolean): Promise<string> {
    if (UUID.test(nameOrId)) {
      const r = await this.api.call('network', 'GET', `/v2.0/networks/${q(nameOrId)}`, undefined, true);
      if (r?.network) return nameOrId;
    }
    const r = await this.api.call('network', 'GET', `/v2.0/networks?name=${q(nameOrId)}`);
    const found = ((r?.networks ?? []) as Json[]).filter((x) => x.name === nameOrId);
    if (found.length !== 1) throw new VmpilotError('VMP_DRIVER', `openstack: ${found.length === 0 ? 'no' : found.length} network${found.length > 1 ? 's' : ''} named ${nameOrId}${found.length > 1 ? ': give its id' : ''}; \`openstack network list${external ? ' --external' : ''}\` shows them`);
    if (external && found[0]!['router:external'] !== true) throw new VmpilotError('VMP_DRIVER', `openstack: network ${nameOrId} is not external: floating IPs come from an external network`);
    return String(found[0]!.id);
  }

  private networkId(): Promise<string | null> {
    const n = this.o.settings.network;
    if (this.network === null) {
      this.network = n === null ? Promise.resolve(null) : this.lookupNetwork(n, false);
      this.network.catch(() => (this.network = null));
    }
    return this.network;
  }

  private poolId(): Promise<string> {
    if (this.pool === null) {
      this.pool = this.lookupNetwork(this.o.settings.floatingPool!, true);
      this.pool.catch(() => (this.pool = null));
    }
    return this.pool;
  }

  /** Refuse a create the project's quota would not take, saying which and by how much. */
  private async checkQuota(flavor: Flavor): Promise<void> {
    const limits = await this.api.call('compute', 'GET', '/limits');
    const problem = quotaProblem(((limits?.limits as Json | undefined)?.absolute ?? {}) as Record<string, unknown>, flavor);
    if (problem) throw new VmpilotError('VMP_DRIVER', `openstack: quota exceeded: ${problem}`);
    if (!this.o.settings.publicIp) return;
    const project = await this.api.projectId();
    const r = await this.api.call('network', 'GET', `/v2.0/quotas/${q(project)}/details.json`, undefined, true);
    const fip = ((r?.quota as Json | undefined)?.floatingip ?? null) as { limit?: number; used?: number; reserved?: number } | null;
    if (fip && typeof fip.limit === 'number' && fip.limit >= 0 && (fip.used ?? 0) + (fip.reserved ?? 0) + 1 > fip.limit) {
      throw new VmpilotError('VMP_DRIVER', `openstack: quota exceeded: floating IPs ${(fip.used ?? 0) + (fip.reserved ?? 0)} of ${fip.limit} in use, publicIp needs one more`);
    }
  }

  private async floatingIps(query: string): Promise<Json[]> {
    const r = await this.api.call('network', 'GET', `/v2.0/floatingips?${query}`);
    return Array.isArray(r?.floatingips) ? (r.floatingips as Json[]) : [];
  }

  /** Give an ACTIVE server its floating IP (once: one already described by its key is reused). */
  private async ensureFloatingIp(s: ServerView): Promise<void> {
    if (s.floatingIp !== null || this.attaching.has(s.id)) return;
    this.attaching.add(s.id);
    try {
      const ports = await this.api.call('network', 'GET', `/v2.0/ports?device_id=${q(s.id)}`);
      const port = ((ports?.ports ?? []) as Json[])[0];
      if (!port) return; // not wired yet: the next listing tries again
      const mine = await this.floatingIps(`description=${q(s.name)}`);
      const pool = await this.poolId();
      if (mine.some((f) => f.port_id === port.id)) return;
      const free = mine.find((f) => !f.port_id);
      if (free) await this.api.call('network', 'PUT', `/v2.0/floatingips/${q(String(free.id))}`, { floatingip: { port_id: port.id } });
      else await this.api.call('network', 'POST', '/v2.0/floatingips', { floatingip: { floating_network_id: pool, port_id: port.id, description: s.name } });
    } finally {
      this.attaching.delete(s.id);
    }
  }

  /** Release the floating IPs described by `key`. */
  private async releaseIps(key: string): Promise<void> {
    for (const f of await this.floatingIps(`description=${q(key)}`)) {
      await this.api.call('network', 'DELETE', `/v2.0/floatingips/${q(String(f.id))}`, undefined, true);
    }
  }

  /** Release floating IPs of this endpoint whose server is gone (a delete that died before it released them). */
  private async releaseStrayIps(live: ReadonlySet<string>): Promise<void> {
    const pool = await this.poolId();
    for (const f of await this.floatingIps(`floating_network_id=${q(pool)}`)) {
      const d = typeof f.description === 'string' ? f.description : '';
      if (d.startsWith(this.o.prefix) && !live.has(d) && !f.port_id) await this.api.call('network', 'DELETE', `/v2.0/floatingips/${q(String(f.id))}`, undefined, true);
    }
  }
}
