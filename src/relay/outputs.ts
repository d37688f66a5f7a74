/**
 * `PUT /outputs/<path>` at the relay: `$JOBOUTPUTS` as a URL
 * (`vmpilot run --job-outputs http://LOGIN:PORT/outputs/JOB/`), the Vac
 * `heartbeat` and `shutdown_message` files, go through the relay to the
 * place the relay was told (`--outputs URL`): `<URL>/<path>`. The body is
 * streamed, not held; the caller's Authorization goes with it (the storage
 * decides), the relay's own token does not. The relay forwards to that one
 * place only, so it is no open proxy.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { VmpilotError, describeError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { relayStatusOf } from './forward.js';
import { openUrl } from './web.js';

/** The route prefix of outputs at the relay. */
export const OUTPUTS_PREFIX = '/outputs/';

/** Where `PUT /outputs/<rest>` goes: `<base>/<rest>`; a VmpilotError for a path that climbs out. Pure. */
export function outputTarget(base: URL, rest: string): URL {
  const decoded = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return '..'; // not decodable: refused as climbing out would be
    }
  };
  const segments = rest.split('/').map(decoded);
  if (rest === '' || segments.some((s) => s === '..' || s === '.' || s.includes('/') || s.includes('\\'))) {
    throw new VmpilotError('VMP_BAD_REQUEST', `output path "${rest}": expected a relative path without . or .. segments`);
  }
  return new URL(rest, base.href.endsWith('/') ? base : new URL(`${base.href}/`));
}

/** Forwards output uploads to one base URL. */
export class Outputs {
  constructor(
    private readonly base: URL,
    private readonly ca: Buffer | undefined,
    private readonly log: Logger,
  ) {}

  /** Forward one PUT; answer with the storage's status. */
  async put(req: IncomingMessage, res: ServerResponse, rest: string): Promise<void> {
    try {
      const target = outputTarget(this.base, rest);
      const headers: Record<string, string> = {};
      for (const h of ['content-type', 'content-length', 'authorization'] as const) {
        const v = req.headers[h];
        if (typeof v === 'string') headers[h] = v;
      }
      const answer = await openUrl(target, { method: 'PUT', headers, body: req, timeoutMs: 60_000, ca: this.ca });
      res.writeHead(answer.statusCode ?? 502, { 'content-type': String(answer.headers['content-type'] ?? 'text/plain') });
      answer.pipe(res);
    } catch (err) {
      const code = err instanceof VmpilotError ? err.code : 'VMP_INTERNAL';
      this.log.warn({ err: describeError(err), path: rest }, 'output not forwarded');
      if (!res.headersSent) {
        res.writeHead(relayStatusOf(code), { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify({ error: { code, message: `relay: ${describeError(err)}` } }));
      } else res.destroy();
    }
  }
}
