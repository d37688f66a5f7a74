/**
 * `GET /v1/relay/artifact?url=URL&sha256=HEX`: a bootstrap artifact
 * (`vmpilot run --bootstrap`, software: url, sha256) fetched once by the
 * relay from `URL`, checked against `HEX`, cached and served to every
 * compute node that asks (with Range, so the agent's download resumes).
 * The relay fetches only from the prefixes it was given
 * (`--artifacts-from`), so it is not a way out to anywhere; the content is
 * pinned by its sha256, so a cached file is the file asked for.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { VmpilotError, describeError, isVmpilotError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { ContentCache } from './cache.js';
import { relayStatusOf } from './forward.js';
import { sendFile } from './send-file.js';
import { getFollowing } from './web.js';

/** The upstream URL an artifact request may be fetched from, or a VmpilotError saying why not. Pure. */
export function artifactSource(query: URLSearchParams, allowed: readonly string[]): { url: URL; sha256: string } {
  const sha256 = query.get('sha256') ?? '';
  const raw = query.get('url') ?? '';
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new VmpilotError('VMP_BAD_REQUEST', `sha256 "${sha256}": expected the artifact's sha256, 64 lower-case hex digits`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new VmpilotError('VMP_BAD_REQUEST', `url "${raw}": expected the artifact's http(s) URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new VmpilotError('VMP_BAD_REQUEST', `url "${raw}": expected an http:// or https:// URL`);
  if (allowed.length === 0) throw new VmpilotError('VMP_FORBIDDEN', 'this relay fetches no artifacts: start it with --artifacts-from PREFIX');
  if (!allowed.some((p) => url.href.startsWith(p))) throw new VmpilotError('VMP_FORBIDDEN', `${url.href} is not under an --artifacts-from prefix of this relay (${allowed.join(', ')})`);
  return { url, sha256 };
}

/** Serves bootstrap artifacts through the cache. */
export class Artifacts {
  constructor(
    private readonly cache: ContentCache,
    private readonly allowed: readonly string[],
    private readonly ca: Buffer | undefined,
    private readonly log: Logger,
  ) {}

  /** Answer one artifact request. */
  async serve(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void> {
    try {
      const { url, sha256 } = artifactSource(query, this.allowed);
      const file = await this.cache.get(sha256, null, async () => {
        const got = await getFollowing(url, { timeoutMs: 60_000, ca: this.ca });
        return { stream: got.res, from: got.url.href };
      });
      await sendFile(req, res, file, { 'x-vmpilot-sha256': sha256 }, `"${sha256}"`);
    } catch (err) {
      const e = isVmpilotError(err) ? err : new VmpilotError('VMP_INTERNAL', describeError(err), { cause: err });
      this.log.warn({ err: e.message }, 'artifact not served');
      if (!res.headersSent) res.writeHead(relayStatusOf(e.code), { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify({ error: { code: e.code, message: `relay: ${e.message}` } }));
      else res.destroy();
    }
  }
}
