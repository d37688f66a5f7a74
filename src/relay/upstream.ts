/**
 * The relay's connections to the server: node's http/https Agents with
 * keep-alive and a bounded number of sockets, in two lanes so that long
 * polls cannot starve the rest. `calls` (register, heartbeat, reports,
 * agent files) share a few connections; `polls` (match requests the server
 * holds open up to its wait bound) need one connection each while they
 * wait (HTTP/1.1 has no multiplexing), so their bound is how many long polls
 * one relay carries at once; past it they queue in the relay. Every request
 * carries the relay's own token (RELAY_TOKEN_HEADER) and the pilot's bearer
 * token as the pilot sent it. `node:https` is loaded on first use.
 */
import http from 'node:http';
import type https from 'node:https';
import type { Readable } from 'node:stream';
import { RELAY_TOKEN_HEADER } from '../protocol/relay.js';
import { VmpilotError } from '../shared/errors.js';

/** Which connections a request uses. */
export type Lane = 'calls' | 'polls';

/** What the upstream needs. */
export interface UpstreamOptions {
  /** The server's base URL. */
  server: string;
  /** PEM CA to trust for an https server (`--ca-file`). */
  ca?: Buffer | undefined;
  /** The relay's own token; null: none sent (a server that requires relays refuses). */
  relayToken: string | null;
  /** Sockets for `calls` (default 16) and for `polls` (default 1024). */
  callSockets?: number;
  pollSockets?: number;
}

/** One request to the server. */
export interface UpstreamRequest {
  method: 'GET' | 'POST' | 'PUT';
  /** Path and query on the server, e.g. `/v1/register`. */
  path: string;
  headers: Record<string, string>;
  body?: Buffer | undefined;
  lane: Lane;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

/** A whole answer. */
export interface UpstreamAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** How long a connection to the server may sit idle in the pool (ms); keep below the server's limits.keepAliveSec. */
const FREE_SOCKET_MS = 30_000;

/** The largest answer the relay reads whole (the server's are small; agent files stream). */
const MAX_ANSWER_BYTES = 8 * 1024 * 1024;

type Via = { request: typeof http.request; agents: Record<Lane, http.Agent> };

/** The relay's side of the connection to the server. */
export class Upstream {
  readonly base: URL;
  private plain: Via | null = null;
  private secure: Promise<Via> | null = null;

  constructor(private readonly o: UpstreamOptions) {
    this.base = new URL(o.server.endsWith('/') ? o.server : `${o.server}/`);
  }

  private agentsOf<A extends http.Agent>(make: (opts: http.AgentOptions) => A): Record<Lane, A> {
    // an idle connection is dropped after FREE_SOCKET_MS, before the server's keepAliveSec (72 s by
    // default) closes it: a call sent on a connection the server is closing that moment would fail
    const common = { keepAlive: true, keepAliveMsecs: 10_000, scheduling: 'lifo' as const, timeout: FREE_SOCKET_MS };
    return {
      calls: make({ ...common, maxSockets: this.o.callSockets ?? 16, maxFreeSockets: this.o.callSockets ?? 16 }),
      polls: make({ ...common, maxSockets: this.o.pollSockets ?? 1024, maxFreeSockets: 64 }),
    };
  }

  private async via(): Promise<Via> {
    if (this.base.protocol !== 'https:') {
      this.plain ??= { request: http.request, agents: this.agentsOf((opts) => new http.Agent(opts)) };
      return this.plain;
    }
    this.secure ??= import('node:https').then(({ default: mod }) => ({
      request: mod.request as unknown as typeof http.request,
      agents: this.agentsOf((opts) => new mod.Agent({ ...opts, ...(this.o.ca ? { ca: this.o.ca } : {}) }) as https.Agent),
    }));
    return this.secure;
  }

  /** The headers every request carries: the given ones and the relay's token (never a client's). */
  private headersFor(given: Record<string, string>): Record<string, string> {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(given)) if (k.toLowerCase() !== RELAY_TOKEN_HEADER) headers[k.toLowerCase()] = v;
    if (this.o.relayToken) headers[RELAY_TOKEN_HEADER] = this.o.relayToken;
    return headers;
  }

  /** Send a request, resolve with the answer's head and its body stream. Rejects when no answer came. */
  async open(r: UpstreamRequest): Promise<http.IncomingMessage> {
    const via = await this.via();
    const url = new URL(r.path.replace(/^\//, ''), this.base);
    const headers = this.headersFor({ ...r.headers, ...(r.body ? { 'content-length': String(r.body.length) } : {}) });
    return new Promise((resolve, reject) => {
      if (r.signal?.aborted) return reject(new VmpilotError('VMP_UNREACHABLE', 'aborted', { details: { aborted: true } }));
      const req = via.request(url, { method: r.method, agent: via.agents[r.lane], headers, ...(r.signal ? { signal: r.signal } : {}) });
      req.setTimeout(r.timeoutMs, () => req.destroy(Object.assign(new Error(`no answer in ${r.timeoutMs} ms`), { code: 'ETIMEDOUT' })));
      req.on('error', (err: Error & { code?: string }) => {
        const aborted = r.signal?.aborted === true;
        reject(new VmpilotError('VMP_UNREACHABLE', aborted ? 'aborted' : `cannot reach ${this.base.origin}: ${err.message}`, { cause: err, details: { aborted, errno: err.code } }));
      });
      req.on('response', resolve);
      req.end(r.body);
    });
  }

  /** Send a request and read its whole answer (bounded). */
  async call(r: UpstreamRequest): Promise<UpstreamAnswer> {
    const res = await this.open(r);
    const body = await readAll(res, MAX_ANSWER_BYTES).catch((err: unknown) => {
      throw new VmpilotError('VMP_UNREACHABLE', `the answer from ${this.base.origin} broke off: ${(err as Error).message}`, { cause: err });
    });
    return { status: res.statusCode ?? 0, headers: res.headers, body };
  }

  /** Close every connection (the relay is stopping). */
  close(): void {
    for (const a of Object.values(this.plain?.agents ?? {})) a.destroy();
    void this.secure?.then((v) => Object.values(v.agents).forEach((a) => a.destroy()));
  }
}

/** The whole of a stream, at most `limit` bytes (more is an error). */
export function readAll(stream: Readable, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (d: Buffer) => {
      size += d.length;
      if (size > limit) {
        stream.destroy(Object.assign(new Error(`more than ${limit} bytes`), { code: 'E2BIG' }));
        return;
      }
      chunks.push(d);
    });
    let ended = false;
    stream.on('error', reject);
    stream.on('end', () => {
      ended = true;
      resolve(Buffer.concat(chunks));
    });
    stream.on('close', () => {
      if (!ended) reject(Object.assign(new Error('the connection closed before the end'), { code: 'ECONNRESET' }));
    });
  });
}
