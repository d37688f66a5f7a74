/**
 * A FAKE OpenStack cloud for the openstack driver's tests: one HTTP server on
 * 127.0.0.1 serving the shapes of the Identity v3, Compute v2.1, Image v2
 * and Networking v2.0 API references for the calls the driver makes (paths,
 * methods, status codes, bodies, the X-Subject-Token header, the error
 * bodies of each service). Written from the API references, not from any
 * OpenStack code; it checks what it is sent (a wrong body is a 400 as the
 * real services give) and keeps state in memory.
 *
 * A server goes BUILD → ACTIVE after `bootMs`; then, with `runAgents`, its
 * user-data is booted as a FakeMachine (a real agent process) and the
 * server goes SHUTOFF when that agent exits (the VM powered itself off).
 * A DELETE sets task_state "deleting", stops the machine, and removes the
 * server (and its port; a floating IP on the port is disassociated, as
 * Neutron does) after `deleteMs`.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { FakeMachine } from './cloud-vm.js';

export interface FakeServer {
  id: string;
  name: string;
  status: string;
  taskState: string | null;
  flavorId: string;
  imageId: string;
  networkId: string | null;
  metadata: Record<string, string>;
  userData: string;
  keyName: string | null;
  securityGroups: string[];
  created: string;
  machine: FakeMachine | null;
}

export interface FakeFloatingIp {
  id: string;
  floating_ip_address: string;
  floating_network_id: string;
  port_id: string | null;
  description: string;
}

interface Port {
  id: string;
  device_id: string;
  network_id: string;
}

export interface OpenStackFakeOptions {
  /** Token lifetime (tests of renewal make it short). */
  tokenTtlMs?: number;
  bootMs?: number;
  deleteMs?: number;
  /** Boot each ACTIVE server's user-data as a real agent process in `machineDir`. */
  runAgents?: { machineDir: string } | null;
  limits?: { maxTotalCores: number; maxTotalInstances: number; maxTotalRAMSize: number };
  floatingIpLimit?: number;
}

const USER = { name: 'pilot', domain: 'Default', password: 'fake-password' };
const PROJECT = { id: 'f0a1e2d3c4b5a6978877665544332211', name: 'physics', domain: 'Default' };
const APP_CRED = { id: 'appcred0123', secret: 'fake-app-secret' };

/** The fake cloud. */
export class OpenStackFake {
  readonly servers = new Map<string, FakeServer>();
  readonly floatingIps = new Map<string, FakeFloatingIp>();
  readonly ports = new Map<string, Port>();
  readonly flavors = [
    { id: '1', name: 'm1.small', vcpus: 1, ram: 2048, disk: 20 },
    { id: '2', name: 'm1.medium', vcpus: 2, ram: 4096, disk: 40 },
  ];
  readonly images = [{ id: '6b1f6d3c-1c3e-4d5a-9e8f-0a1b2c3d4e5f', name: 'debian-12', status: 'active' }];
  readonly networks = [
    { id: '0d3c5b7a-8e9f-4a1b-b2c3-d4e5f6a7b8c9', name: 'private', 'router:external': false },
    { id: 'e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b', name: 'public', 'router:external': true },
  ];
  /** Every request, "METHOD path" (for assertions on what the driver asked). */
  readonly requests: string[] = [];
  tokensIssued = 0;
  url = '';
  /** Issued tokens and when each expires (a test may revoke them). */
  readonly tokens = new Map<string, number>();
  private readonly http: Server;
  private readonly timers = new Set<NodeJS.Timeout>();
  private ipCounter = 10;

  constructor(readonly o: OpenStackFakeOptions = {}) {
    this.http = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => send(res, 500, { computeFault: { code: 500, message: String(err) } }));
    });
  }

  static readonly user = USER;
  static readonly project = PROJECT;
  static readonly appCredential = APP_CRED;

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.http.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    await Promise.all([...this.servers.values()].map((s) => s.machine?.stop(2000)));
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  /** The machine of the server named `name`. */
  machineOf(name: string): FakeMachine | null {
    return [...this.servers.values()].find((s) => s.name === name)?.machine ?? null;
  }

  private later(ms: number, f: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      f();
    }, ms);
    this.timers.add(t);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', this.url);
    const method = req.method ?? 'GET';
    this.requests.push(`${method} ${u.pathname}`);
    const text = await new Promise<string>((resolve) => {
      let b = '';
      req.on('data', (d: Buffer) => (b += d.toString()));
      req.on('end', () => resolve(b));
    });
    let body: any = null;
    if (text !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        return send(res, 400, { badRequest: { code: 400, message: 'Malformed request body' } });
      }
    }
    if (u.pathname === '/identity/v3/auth/tokens' && method === 'POST') return this.login(body, res);
    const token = req.headers['x-auth-token'];
    const exp = typeof token === 'string' ? this.tokens.get(token) : undefined;
    if (exp === undefined || exp < Date.now()) {
      return send(res, 401, { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } });
    }
    if (u.pathname.startsWith('/compute/v2.1/')) return this.compute(method, u.pathname.slice('/compute/v2.1'.length), u.searchParams, body, res);
    if (u.pathname.startsWith('/image/v2/')) return this.image(method, u.pathname.slice('/image/v2'.length), u.searchParams, res);
    if (u.pathname.startsWith('/network/v2.0/')) return this.network(method, u.pathname.slice('/network/v2.0'.length), u.searchParams, body, res);
    return send(res, 404, { itemNotFound: { code: 404, message: 'The resource could not be found.' } });
  }

  private login(body: any, res: ServerResponse): void {
    const id = body?.auth?.identity;
    const methods: unknown = id?.methods;
    let ok = false;
    if (Array.isArray(methods) && methods[0] === 'password') {
      const u = id.password?.user;
      const scope = body.auth.scope?.project;
      ok = u?.name === USER.name && u?.domain?.name === USER.domain && u?.password === USER.password && scope?.name === PROJECT.name && scope?.domain?.name === PROJECT.domain;
    } else if (Array.isArray(methods) && methods[0] === 'application_credential') {
      const a = id.application_credential;
      ok = a?.id === APP_CRED.id && a?.secret === APP_CRED.secret;
    } else {
      return send(res, 400, { error: { code: 400, title: 'Bad Request', message: 'Expecting to find identity in auth.' } });
    }
    if (!ok) return send(res, 401, { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } });
    const value = `gAAAAAfake${randomUUID().replace(/-/g, '')}`;
    const expires = Date.now() + (this.o.tokenTtlMs ?? 3600_000);
    this.tokens.set(value, expires);
    this.tokensIssued++;
    const endpoint = (type: string, p: string) => ({
      type,
      name: type,
      endpoints: [
        { interface: 'internal', region: 'RegionOne', region_id: 'RegionOne', url: `http://127.0.0.1:9/${p}` },
        { interface: 'public', region: 'RegionOne', region_id: 'RegionOne', url: `${this.url}/${p}` },
      ],
    });
    res.setHeader('X-Subject-Token', value);
    send(res, 201, {
      token: {
        methods: methods,
        expires_at: new Date(expires).toISOString(),
        issued_at: new Date().toISOString(),
        project: { id: PROJECT.id, name: PROJECT.name, domain: { id: 'default', name: PROJECT.domain } },
        user: { id: 'u1', name: USER.name, domain: { id: 'default', name: USER.domain } },
        catalog: [endpoint('identity', 'identity/v3'), endpoint('compute', 'compute/v2.1'), endpoint('image', 'image'), endpoint('network', 'network')],
      },
    });
  }

  private serverJson(s: FakeServer): Record<string, unknown> {
    const addresses: Record<string, unknown[]> = {};
    if (s.networkId && s.status !== 'BUILD') {
      const net = this.networks.find((n) => n.id === s.networkId)!;
      const port = [...this.ports.values()].find((p) => p.device_id === s.id);
      const fip = port ? [...this.floatingIps.values()].find((f) => f.port_id === port.id) : undefined;
      addresses[net.name] = [
        { version: 4, addr: '10.0.0.5', 'OS-EXT-IPS:type': 'fixed' },
        ...(fip ? [{ version: 4, addr: fip.floating_ip_address, 'OS-EXT-IPS:type': 'floating' }] : []),
      ];
    }
    return {
      id: s.id,
      name: s.name,
      status: s.status,
      'OS-EXT-STS:task_state': s.taskState,
      'OS-EXT-STS:vm_state': s.status.toLowerCase(),
      flavor: { id: s.flavorId, links: [] },
      image: { id: s.imageId, links: [] },
      metadata: s.metadata,
      addresses,
      key_name: s.keyName,
      created: s.created,
      tenant_id: PROJECT.id,
      links: [],
    };
  }

  private compute(method: string, p: string, qs: URLSearchParams, body: any, res: ServerResponse): void {
    const notFound = (what: string) => send(res, 404, { itemNotFound: { code: 404, message: `${what} could not be found.` } });
    let m: RegExpExecArray | null;
    if (method === 'GET' && p === '/flavors/detail') return send(res, 200, { flavors: this.flavors.map((f) => ({ ...f, links: [] })) });
    if (method === 'GET' && (m = /^\/flavors\/([^/]+)$/.exec(p))) {
      const f = this.flavors.find((x) => x.id === decodeURIComponent(m![1]!));
      return f ? send(res, 200, { flavor: { ...f, links: [] } }) : notFound(`Flavor ${decodeURIComponent(m[1]!)}`);
    }
    if (method === 'GET' && p === '/limits') {
      const live = [...this.servers.values()];
      const flavorOf = (s: FakeServer) => this.flavors.find((f) => f.id === s.flavorId)!;
      const l = this.o.limits ?? { maxTotalCores: 20, maxTotalInstances: 10, maxTotalRAMSize: 51200 };
      return send(res, 200, {
        limits: {
          rate: [],
          absolute: {
            ...l,
            totalCoresUsed: live.reduce((n, s) => n + flavorOf(s).vcpus, 0),
            totalInstancesUsed: live.length,
            totalRAMUsed: live.reduce((n, s) => n + flavorOf(s).ram, 0),
            maxServerMeta: 128,
            maxTotalKeypairs: 100,
          },
        },
      });
    }
    if (method === 'POST' && p === '/servers') return this.createServer(body, res);
    if (method === 'GET' && p === '/servers/detail') {
      const name = qs.get('name');
      const re = name === null ? null : new RegExp(name);
      const list = [...this.servers.values()].filter((s) => re === null || re.test(s.name));
      return send(res, 200, { servers: list.map((s) => this.serverJson(s)) });
    }
    if ((m = /^\/servers\/([^/]+)$/.exec(p))) {
      const s = this.servers.get(decodeURIComponent(m[1]!));
      if (!s) return notFound(`Instance ${decodeURIComponent(m[1]!)}`);
      if (method === 'GET') return send(res, 200, { server: this.serverJson(s) });
      if (method === 'DELETE') {
        if (s.taskState !== 'deleting') {
          s.taskState = 'deleting';
          void s.machine?.stop(5000);
          this.later(this.o.deleteMs ?? 300, () => this.removeServer(s));
        }
        res.statusCode = 204;
        return void res.end();
      }
    }
    send(res, 404, { itemNotFound: { code: 404, message: 'The resource could not be found.' } });
  }

  private createServer(body: any, res: ServerResponse): void {
    const b = body?.server;
    const bad = (message: string) => send(res, 400, { badRequest: { code: 400, message } });
    if (!b || typeof b.name !== 'string' || b.name === '') return bad("Invalid input for field/attribute server. Value: None. 'name' is a required property");
    const flavor = this.flavors.find((f) => f.id === b.flavorRef);
    if (!flavor) return bad(`Flavor ${String(b.flavorRef)} could not be found.`);
    if (!this.images.some((i) => i.id === b.imageRef)) return bad(`Image ${String(b.imageRef)} could not be found.`);
    if (typeof b.user_data !== 'string' || Buffer.from(b.user_data, 'base64').toString('base64') !== b.user_data) return bad('User data needs to be valid base 64.');
    if (b.user_data.length > 65535) return bad('User data too large. User data must be no larger than 65535 bytes once base64 encoded.');
    const networkId = Array.isArray(b.networks) ? (b.networks[0]?.uuid as string | undefined) ?? null : null;
    if (networkId !== null && !this.networks.some((n) => n.id === networkId)) return bad(`Network ${networkId} could not be found.`);
    const l = this.o.limits ?? { maxTotalCores: 20, maxTotalInstances: 10, maxTotalRAMSize: 51200 };
    const used = [...this.servers.values()].reduce((n, s) => n + this.flavors.find((f) => f.id === s.flavorId)!.vcpus, 0);
    if (used + flavor.vcpus > l.maxTotalCores) {
      return send(res, 403, { forbidden: { code: 403, message: `Quota exceeded for cores: Requested ${flavor.vcpus}, but already used ${used} of ${l.maxTotalCores} cores` } });
    }
    const s: FakeServer = {
      id: randomUUID(),
      name: b.name,
      status: 'BUILD',
      taskState: 'spawning',
      flavorId: flavor.id,
      imageId: b.imageRef,
      networkId,
      metadata: { ...(b.metadata ?? {}) },
      userData: Buffer.from(b.user_data, 'base64').toString('utf8'),
      keyName: b.key_name ?? null,
      securityGroups: (b.security_groups ?? []).map((g: { name: string }) => g.name),
      created: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      machine: null,
    };
    this.servers.set(s.id, s);
    this.later(this.o.bootMs ?? 200, () => this.boot(s));
    send(res, 202, { server: { id: s.id, links: [], adminPass: 'fake-admin-pass', security_groups: [{ name: 'default' }], 'OS-DCF:diskConfig': 'MANUAL' } });
  }

  private boot(s: FakeServer): void {
    if (!this.servers.has(s.id) || s.taskState === 'deleting') return;
    s.status = 'ACTIVE';
    s.taskState = null;
    if (s.networkId) {
      const port: Port = { id: randomUUID(), device_id: s.id, network_id: s.networkId };
      this.ports.set(port.id, port);
    }
    if (this.o.runAgents) {
      s.machine = new FakeMachine(s.userData, path.join(this.o.runAgents.machineDir, s.name));
      void s.machine.exited.then(() => {
        if (this.servers.has(s.id) && s.taskState !== 'deleting') s.status = 'SHUTOFF';
      });
    }
  }

  private removeServer(s: FakeServer): void {
    this.servers.delete(s.id);
    for (const p of [...this.ports.values()]) {
      if (p.device_id !== s.id) continue;
      this.ports.delete(p.id);
      for (const f of this.floatingIps.values()) if (f.port_id === p.id) f.port_id = null;
    }
  }

  private image(method: string, p: string, qs: URLSearchParams, res: ServerResponse): void {
    let m: RegExpExecArray | null;
    if (method === 'GET' && p === '/images') {
      const name = qs.get('name');
      const status = qs.get('status');
      return send(res, 200, { images: this.images.filter((i) => (name === null || i.name === name) && (status === null || i.status === status)), schema: '/v2/schemas/images', first: '/v2/images' });
    }
    if (method === 'GET' && (m = /^\/images\/([^/]+)$/.exec(p))) {
      const i = this.images.find((x) => x.id === decodeURIComponent(m![1]!));
      if (i) return send(res, 200, i);
      res.statusCode = 404;
      return void res.end('404 Not Found\n\nNo image found with ID ' + decodeURIComponent(m[1]!));
    }
    send(res, 404, {});
  }

  private network(method: string, p: string, qs: URLSearchParams, body: any, res: ServerResponse): void {
    const notFound = (type: string, message: string) => send(res, 404, { NeutronError: { type, message, detail: '' } });
    let m: RegExpExecArray | null;
    const filtered = <T extends object>(items: T[]) =>
      items.filter((x) => [...qs.entries()].every(([k, v]) => k === 'fields' || String((x as Record<string, unknown>)[k] ?? '') === v));
    if (method === 'GET' && p === '/networks') return send(res, 200, { networks: filtered(this.networks) });
    if (method === 'GET' && (m = /^\/networks\/([^/]+)$/.exec(p))) {
      const n = this.networks.find((x) => x.id === m![1]);
      return n ? send(res, 200, { network: n }) : notFound('NetworkNotFound', `Network ${m[1]} could not be found.`);
    }
    if (method === 'GET' && p === '/ports') return send(res, 200, { ports: filtered([...this.ports.values()]) });
    if ((m = /^\/quotas\/([^/]+)\/details\.json$/.exec(p)) && method === 'GET') {
      const used = this.floatingIps.size;
      return send(res, 200, { quota: { floatingip: { limit: this.o.floatingIpLimit ?? 5, used, reserved: 0 }, network: { limit: 10, used: 1, reserved: 0 } } });
    }
    if (method === 'GET' && p === '/floatingips') return send(res, 200, { floatingips: filtered([...this.floatingIps.values()]) });
    if (method === 'POST' && p === '/floatingips') {
      const f = body?.floatingip;
      const pool = this.networks.find((n) => n.id === f?.floating_network_id);
      if (!pool) return notFound('NetworkNotFound', `Network ${String(f?.floating_network_id)} could not be found.`);
      if (!pool['router:external']) return send(res, 400, { NeutronError: { type: 'BadRequest', message: `Bad floatingip request: Network ${pool.id} is not a valid external network.`, detail: '' } });
      if (this.floatingIps.size >= (this.o.floatingIpLimit ?? 5)) return send(res, 409, { NeutronError: { type: 'OverQuota', message: 'Quota exceeded for resources: [\'floatingip\'].', detail: '' } });
      if (f.port_id && !this.ports.has(f.port_id)) return notFound('PortNotFound', `Port ${String(f.port_id)} could not be found.`);
      const ip: FakeFloatingIp = { id: randomUUID(), floating_ip_address: `203.0.113.${this.ipCounter++}`, floating_network_id: pool.id, port_id: f.port_id ?? null, description: f.description ?? '' };
      this.floatingIps.set(ip.id, ip);
      return send(res, 201, { floatingip: { ...ip, status: ip.port_id ? 'ACTIVE' : 'DOWN', tenant_id: PROJECT.id } });
    }
    if ((m = /^\/floatingips\/([^/]+)$/.exec(p))) {
      const f = this.floatingIps.get(m[1]!);
      if (!f) return notFound('FloatingIPNotFound', `Floating IP ${m[1]} could not be found`);
      if (method === 'PUT') {
        f.port_id = body?.floatingip?.port_id ?? null;
        return send(res, 200, { floatingip: f });
      }
      if (method === 'DELETE') {
        this.floatingIps.delete(f.id);
        res.statusCode = 204;
        return void res.end();
      }
    }
    send(res, 404, { NeutronError: { type: 'HTTPNotFound', message: 'The resource could not be found.', detail: '' } });
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.setHeader('content-length', Buffer.byteLength(text));
  res.end(text);
}
