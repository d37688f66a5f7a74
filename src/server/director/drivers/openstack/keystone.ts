/**
 * Keystone v3 for the openstack driver: a project-scoped token from a
 * password or an application credential (`POST /v3/auth/tokens`; the token
 * is the X-Subject-Token header, the body holds its expiry and the service
 * catalogue), kept until shortly before it expires and renewed then, or at
 * once when a service refuses it (401). Service URLs come from the token's
 * catalogue: the endpoint of the configured interface and region.
 */
import type { Clock } from '../../../../shared/clock.js';
import { VmpilotError } from '../../../../shared/errors.js';
import type { OpenStackSettings } from '../../cloud-settings.js';
import { type CloudHttp, readSecret, redact } from '../cloud-http.js';
import { cloudMessage } from './errors.js';

/** The services the driver uses, by catalogue type. */
export type ServiceType = 'compute' | 'image' | 'network';

/** A token and what came with it. */
export interface Token {
  value: string;
  expiresAt: number;
  projectId: string;
  /** Catalogue type → base URL. */
  services: ReadonlyMap<string, string>;
}

/** Renew a token this long before it expires. */
const RENEW_BEFORE_MS = 5 * 60_000;

interface CatalogEntry {
  type?: string;
  endpoints?: { interface?: string; region?: string; region_id?: string; url?: string }[];
}

/** Keystone v3 sessions of one endpoint. */
export class Keystone {
  private token: Token | null = null;
  private pending: Promise<Token> | null = null;

  constructor(
    private readonly s: OpenStackSettings,
    private readonly http: CloudHttp,
    private readonly clock: Clock,
  ) {}

  /** A token good for a while yet (a new one when the last is near its end, or `fresh`). */
  async current(fresh = false): Promise<Token> {
    if (!fresh && this.token && this.token.expiresAt - RENEW_BEFORE_MS > this.clock.now()) return this.token;
    if (fresh) this.token = null;
    this.pending ??= this.issue().finally(() => (this.pending = null));
    this.token = await this.pending;
    return this.token;
  }

  /** The base URL of `type` in the token's catalogue. */
  serviceUrl(t: Token, type: ServiceType): string {
    const url = t.services.get(type);
    if (!url) throw new VmpilotError('VMP_DRIVER', `openstack: the service catalogue has no ${type} endpoint for interface ${this.s.interface}${this.s.region ? ` in region ${this.s.region}` : ''}`);
    return url;
  }

  private async issue(): Promise<Token> {
    const a = this.s.auth;
    const identity =
      a.method === 'password'
        ? { methods: ['password'], password: { user: { name: a.username, domain: { name: a.userDomain }, password: await readSecret(a.password, 'openstack password') } } }
        : { methods: ['application_credential'], application_credential: { id: a.id, secret: await readSecret(a.secret, 'openstack application credential secret') } };
    // an application credential is scoped already; a password login names its project
    const scope = a.method === 'password' ? { scope: { project: { name: a.project, domain: { name: a.projectDomain } } } } : {};
    const url = `${this.s.authUrl}/auth/tokens`;
    const res = await this.http.send('POST', url, { headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify({ auth: { identity, ...scope } }) });
    if (res.status !== 201 && res.status !== 200) {
      throw new VmpilotError('VMP_DRIVER', `openstack: Keystone refused the login (${a.method === 'password' ? `user ${a.username}, project ${a.project}` : `application credential ${a.id}`}) at ${redact(url)}: HTTP ${res.status}: ${cloudMessage(res.text)}`, { details: { status: res.status } });
    }
    const value = res.headers['x-subject-token'];
    let body: { token?: { expires_at?: string; project?: { id?: string }; catalog?: CatalogEntry[] } };
    try {
      body = JSON.parse(res.text) as typeof body;
    } catch {
      body = {};
    }
    const expiresAt = Date.parse(body.token?.expires_at ?? '');
    const projectId = body.token?.project?.id;
    if (!value || !Number.isFinite(expiresAt) || !projectId) throw new VmpilotError('VMP_DRIVER', `openstack: Keystone at ${redact(url)} answered a login without a token, its expiry or its project`);
    const services = new Map<string, string>();
    for (const entry of body.token?.catalog ?? []) {
      const e = (entry.endpoints ?? []).find((x) => x.interface === this.s.interface && (this.s.region === null || x.region_id === this.s.region || x.region === this.s.region));
      if (entry.type && e?.url && !services.has(entry.type)) services.set(entry.type, e.url.replace(/\/+$/, ''));
    }
    return { value, expiresAt, projectId, services };
  }
}
