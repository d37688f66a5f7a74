/**
 * Requests from the relay to places other than the server: bootstrap
 * artifacts (GET, following up to 5 redirects) and `$JOBOUTPUTS` uploads
 * (PUT, streamed). No relay token goes with them: it is for the server
 * only. https trusts the system's CAs plus `--ca-file`; `node:https` is
 * loaded on first use.
 */
import http from 'node:http';
import type { Readable } from 'node:stream';
import { VmpilotError } from '../shared/errors.js';

/** One request to `url`. */
export interface WebRequest {
  method: 'GET' | 'PUT';
  headers?: Record<string, string>;
  /** The body to stream (PUT). */
  body?: Readable;
  /** No byte in this long (ms): given up. */
  timeoutMs: number;
  ca?: Buffer | undefined;
}

let httpsModule: Promise<typeof import('node:https')> | null = null;

/** Send one request; resolve with the answer (its body unread). Rejects VMP_UNREACHABLE when none came. */
export async function openUrl(url: URL, r: WebRequest): Promise<http.IncomingMessage> {
  const request =
    url.protocol === 'https:'
      ? (await (httpsModule ??= import('node:https'))).request
      : url.protocol === 'http:'
        ? http.request
        : null;
  if (!request) throw new VmpilotError('VMP_BAD_REQUEST', `${url.href}: only http:// and https:// URLs`);
  return new Promise((resolve, reject) => {
    const req = request(url, { method: r.method, headers: r.headers ?? {}, ...(r.ca && url.protocol === 'https:' ? { ca: r.ca } : {}) });
    req.setTimeout(r.timeoutMs, () => req.destroy(Object.assign(new Error(`no answer in ${r.timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', (err) => reject(new VmpilotError('VMP_UNREACHABLE', `cannot reach ${url.origin}: ${err.message}`, { cause: err })));
    req.on('response', resolve);
    if (r.body) {
      r.body.on('error', (err) => req.destroy(err));
      r.body.pipe(req);
    } else req.end();
  });
}

/** GET `url`, following up to 5 redirects; the final answer must be 200. */
export async function getFollowing(url: URL, r: Omit<WebRequest, 'method' | 'body'>): Promise<{ res: http.IncomingMessage; url: URL }> {
  let at = url;
  for (let hops = 0; ; hops++) {
    const res = await openUrl(at, { ...r, method: 'GET' });
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location && hops < 5) {
      res.resume();
      at = new URL(res.headers.location, at);
      continue;
    }
    if (status !== 200) {
      res.resume();
      throw new VmpilotError(status >= 500 ? 'VMP_UNREACHABLE' : 'VMP_NOT_FOUND', `GET ${at.href} answered HTTP ${status}`);
    }
    return { res, url: at };
  }
}
