/**
 * Conditional GETs of the admin API's JSON replies: each carries an ETag
 * (a hash of its body), and a request whose If-None-Match names it gets 304
 * with no body. A dashboard that polls a view that did not change then
 * receives a few headers instead of the page again (the browser revalidates
 * on its own and hands the page its cached copy).
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';

/** The ETag of a body: a strong validator, 16 hex digits of its SHA-256. */
export function etagOf(body: string): string {
  return `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"`;
}

/** Whether an If-None-Match header names `etag` (a list, `*`, weak forms). Pure. */
export function matchesEtag(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch.split(',').some((t) => {
    const v = t.trim().replace(/^W\//, '');
    return v === '*' || v === etag;
  });
}

/** Add the ETag and the 304 to every successful JSON GET under /v1/. */
export function registerEtags(app: FastifyInstance): void {
  app.addHook('onSend', async (request, reply, payload) => {
    if (request.method !== 'GET' || reply.statusCode !== 200 || typeof payload !== 'string') return payload;
    if (!request.url.startsWith('/v1/') || !/^application\/json/.test(String(reply.getHeader('content-type') ?? ''))) return payload;
    const etag = etagOf(payload);
    void reply.header('etag', etag);
    // the reply may depend on the token (a 401 never reaches here); keep it out of shared caches
    void reply.header('cache-control', 'private, no-cache');
    if (matchesEtag(request.headers['if-none-match'], etag)) {
      void reply.code(304);
      return '';
    }
    return payload;
  });
}
