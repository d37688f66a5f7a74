/**
 * One GET on node's own http/https modules that follows redirects, for
 * artifact downloads (mirrors often redirect). Like the control plane's
 * HttpClient (control/http-call.ts) it uses no library, takes an abort
 * signal and a private CA, and gives up on a connection that goes silent;
 * unlike it, the answer is handed back as a stream, not read into memory.
 *
 *   GET url ─▶ 301/302/303/307/308 with Location ─▶ GET Location (resolved against url) … at most maxRedirects times
 *          └▶ any other status ─▶ the response, for the caller to read
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import { VmpilotError } from '../../shared/errors.js';

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** The connections of one download: plain and TLS, the latter trusting node's CAs plus an extra one. */
export class GetAgents {
  readonly http = new http.Agent({ keepAlive: false });
  readonly https: https.Agent;

  /** `ca`: PEM certificate(s) trusted as well as node's own CA list (`--ca-file`: a private mirror). */
  constructor(ca?: Buffer) {
    this.https = new https.Agent({ keepAlive: false, ...(ca ? { ca: [...rootCertificates, ca.toString('utf8')] } : {}) });
  }

  /** Close whatever is still open. */
  close(): void {
    this.http.destroy();
    this.https.destroy();
  }
}

/** How one GET behaves. */
export interface GetOptions {
  headers: Record<string, string>;
  agents: GetAgents;
  /** A connection silent this long (waiting for the answer or between body bytes) is closed with an error. */
  idleTimeoutMs: number;
  /** Redirects followed at most; one more is an error. */
  maxRedirects: number;
  signal?: AbortSignal | undefined;
}

/** A response and the URL that gave it (after redirects). */
export interface GetAnswer {
  res: IncomingMessage;
  url: string;
}

/** A failure no retry can mend (bad redirect): the caller gives up at once. */
export function permanentGetError(message: string): VmpilotError {
  return new VmpilotError('VMP_UNREACHABLE', message, { details: { permanent: true } });
}

/** One request, no redirects: resolves with the response once its head has come. */
function getOnce(url: URL, o: GetOptions): Promise<IncomingMessage> {
  const secure = url.protocol === 'https:';
  return new Promise<IncomingMessage>((resolve, reject) => {
    const req = (secure ? https : http).request(url, {
      method: 'GET',
      agent: secure ? o.agents.https : o.agents.http,
      headers: o.headers,
      ...(o.signal ? { signal: o.signal } : {}),
    });
    let res: IncomingMessage | null = null;
    // the socket's idle timer covers the wait for the head and every pause in the body
    req.setTimeout(o.idleTimeoutMs, () => {
      const err = Object.assign(new Error(`no data for ${o.idleTimeoutMs} ms`), { code: 'ETIMEDOUT' });
      if (res) res.destroy(err);
      else req.destroy(err);
    });
    req.on('error', reject);
    req.on('response', (r) => {
      res = r;
      resolve(r);
    });
    req.end();
  });
}

/** Parse `url` as an http(s) URL, or fail for good naming it. */
function httpUrl(url: string, base?: string): URL {
  let u: URL;
  try {
    u = new URL(url, base);
  } catch {
    throw permanentGetError(base ? `${base} redirected to "${url}", which is not a URL` : `"${url}" is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw permanentGetError(base ? `${base} redirected to ${u.href}: only http and https are followed` : `${u.href}: only http, https and file URLs can be downloaded`);
  }
  return u;
}

/**
 * GET `url`, following up to `maxRedirects` redirects (a relative Location
 * is resolved against the URL that sent it; the same headers are sent on
 * every hop). Rejects with node's error when no answer came, and with a
 * permanent error for a redirect with no Location, to a non-http URL, or
 * one too many.
 */
export async function getFollowingRedirects(url: string, o: GetOptions): Promise<GetAnswer> {
  let current = httpUrl(url);
  for (let hops = 0; ; hops++) {
    const res = await getOnce(current, o);
    const status = res.statusCode ?? 0;
    if (!REDIRECTS.has(status)) return { res, url: current.href };
    res.resume(); // a redirect's body is of no use: let the connection go
    const location = res.headers.location;
    if (!location) throw permanentGetError(`GET ${current.href}: HTTP ${status} without a Location`);
    const next = httpUrl(location, current.href);
    if (hops >= o.maxRedirects) throw permanentGetError(`GET ${url}: more than ${o.maxRedirects} redirects (the last to ${next.href})`);
    current = next;
  }
}
