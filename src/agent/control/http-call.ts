/**
 * One HTTP(S) call on node's own http/https modules, with keep-alive, a
 * timeout, an abort signal and an extra CA. The agent's long-lived calls
 * (control plane, `$JOBOUTPUTS`) use this rather than undici: undici adds
 * about 20 MB to the resident size of an otherwise idle agent, which is a
 * third of what an idle agent may cost its node. Artifact downloads
 * (bootstrap/http-get.ts) use the same modules; the agent carries no undici.
 * `node:https` (with TLS and crypto, about 3 MB of resident size) is loaded
 * on the first https call only.
 */
import http from 'node:http';
import type https from 'node:https';

/** What one call needs. */
export interface HttpCall {
  method: 'GET' | 'POST' | 'PUT';
  url: string;
  headers?: Record<string, string>;
  body?: string;
  /** Give up when no answer has come in this long (ms). */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

/** The answer: status and body text. */
export interface HttpAnswer {
  status: number;
  text: string;
}

/** A transport failure, with node's error code (ECONNREFUSED, ETIMEDOUT, ...) when there is one. */
export class HttpTransportError extends Error {
  constructor(
    message: string,
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Keep-alive agents for one client, with an extra CA for https when given. */
export class HttpClient {
  private readonly httpAgent = new http.Agent({ keepAlive: true, keepAliveMsecs: 10_000, maxSockets: 8 });
  private secure: Promise<{ request: typeof https.request; agent: https.Agent }> | null = null;

  constructor(private readonly ca?: Buffer) {}

  /** node:https and its keep-alive agent, loaded on first use. */
  private https(): Promise<{ request: typeof https.request; agent: https.Agent }> {
    this.secure ??= import('node:https').then(({ default: mod }) => ({
      request: mod.request,
      agent: new mod.Agent({ keepAlive: true, keepAliveMsecs: 10_000, maxSockets: 8, ...(this.ca ? { ca: this.ca } : {}) }),
    }));
    return this.secure;
  }

  /** Make the call; rejects with HttpTransportError when no HTTP answer came. */
  async call(c: HttpCall): Promise<HttpAnswer> {
    const url = new URL(c.url);
    const via = url.protocol === 'https:' ? await this.https() : { request: http.request, agent: this.httpAgent };
    const body = c.body === undefined ? undefined : Buffer.from(c.body);
    return new Promise<HttpAnswer>((resolve, reject) => {
      if (c.signal?.aborted) return reject(new HttpTransportError('aborted', 'ABORT_ERR'));
      const req = via.request(url, {
        method: c.method,
        agent: via.agent,
        headers: { ...c.headers, ...(body ? { 'content-length': String(body.length) } : {}) },
        ...(c.signal ? { signal: c.signal } : {}),
      });
      // the socket is silent until the server answers (a long poll included): idle means no answer
      req.setTimeout(c.timeoutMs, () => req.destroy(new HttpTransportError(`no answer in ${c.timeoutMs} ms`, 'ETIMEDOUT')));
      const fail = (err: Error & { code?: string }) => {
        reject(err instanceof HttpTransportError ? err : new HttpTransportError(err.message, err.code ?? (err.name === 'AbortError' ? 'ABORT_ERR' : 'EIO'), { cause: err }));
      };
      req.on('error', fail);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('error', fail);
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
        });
      });
      req.end(body);
    });
  }

  /** Close idle keep-alive connections. */
  close(): void {
    this.httpAgent.destroy();
    void this.secure?.then((s) => s.agent.destroy());
  }
}
