/**
 * Authenticated JSON calls to the OpenStack services of one endpoint: the
 * Keystone token in X-Auth-Token, the service's base URL from the token's
 * catalogue, one retry with a new token when the service refuses the old
 * one (401), and a VMP_DRIVER error with the cloud's own words otherwise.
 */
import type { Clock } from '../../../../shared/clock.js';
import { VmpilotError } from '../../../../shared/errors.js';
import type { OpenStackSettings } from '../../cloud-settings.js';
import type { CloudHttp } from '../cloud-http.js';
import { cloudMessage } from './errors.js';
import { Keystone, type ServiceType } from './keystone.js';

/** One call's outcome: the parsed body, or null for a 404 the caller allows. */
export type Json = Record<string, unknown>;

/** The services of one OpenStack endpoint. */
export class OpenStackApi {
  readonly keystone: Keystone;

  constructor(
    s: OpenStackSettings,
    private readonly http: CloudHttp,
    clock: Clock,
  ) {
    this.keystone = new Keystone(s, http, clock);
  }

  /** The project the token is scoped to. */
  async projectId(): Promise<string> {
    return (await this.keystone.current()).projectId;
  }

  /**
   * `method` `path` on `service`, with a JSON body; the parsed answer, or
   * null when it is 404 and `allow404`. Other failures: VMP_DRIVER naming
   * the call and carrying the cloud's message.
   */
  async call(service: ServiceType, method: string, path: string, body?: unknown, allow404 = false): Promise<Json | null> {
    for (let attempt = 0; ; attempt++) {
      const token = await this.keystone.current(attempt > 0);
      const url = `${this.keystone.serviceUrl(token, service)}${path}`;
      const res = await this.http.send(method, url, {
        headers: { 'x-auth-token': token.value, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      if (res.status === 401 && attempt === 0) continue;
      if (res.status === 404 && allow404) return null;
      if (res.status < 200 || res.status > 299) {
        throw new VmpilotError('VMP_DRIVER', `openstack ${service}: ${method} ${path}: HTTP ${res.status}: ${cloudMessage(res.text)}`, { details: { status: res.status } });
      }
      if (res.text.trim() === '') return {};
      try {
        return JSON.parse(res.text) as Json;
      } catch {
        throw new VmpilotError('VMP_DRIVER', `openstack ${service}: ${method} ${path}: the answer is not JSON: ${cloudMessage(res.text)}`);
      }
    }
  }
}
