/**
 * The relay's HTTP side, for agents on compute nodes that reach the login
 * node but not the server (`vmpilot run --server http://LOGIN:PORT`):
 *
 *   POST /v1/register, /v1/pilots/N/{heartbeat,match,reports}, GET /v1/health
 *                               → the server, as they came (forward.ts)
 *   GET  /v1/agent/<file>       → the cache, once per file (agent-files.ts)
 *   GET  /v1/relay/artifact?url=&sha256=  → the cache (artifacts.ts)
 *   PUT  /outputs/<path>        → `--outputs URL` (outputs.ts)
 *
 * Anything else is 404, admin routes included. A request body is at most
 * 1 MiB, as at the server, and must arrive within 30 s (408 and the
 * connection closed otherwise: a client trickling a body holds nothing for
 * long); headers within 30 s. With a certificate (`--tls-cert`) it speaks
 * HTTPS, so that agents' tokens do not cross the site network in clear.
 * When an agent goes away (it aborted a match to
 * ask again with more cores), the relay drops the server request too, so the
 * server's long poll ends as it would without a relay.
 */
import http from 'node:http';
import https from 'node:https';
import { RELAY_ARTIFACT_PATH } from '../protocol/relay.js';
import { type Clock, systemClock } from '../shared/clock.js';
import type { Logger } from '../shared/log.js';
import { describeError } from '../shared/errors.js';
import type { AgentFiles } from './agent-files.js';
import type { Artifacts } from './artifacts.js';
import { errorAnswer, type PilotAnswer, type PilotForwarder } from './forward.js';
import { OUTPUTS_PREFIX, type Outputs } from './outputs.js';

/** The largest request body the relay takes (the server's limit). */
export const MAX_BODY_BYTES = 1024 * 1024;
/** How long a request body may take to arrive. */
export const BODY_TIMEOUT_MS = 30_000;

/** What the HTTP side serves. */
export interface HttpRelayParts {
  forwarder: PilotForwarder;
  agentFiles: AgentFiles;
  artifacts: Artifacts;
  /** Null: no `--outputs`, PUT /outputs/ is refused. */
  outputs: Outputs | null;
  log: Logger;
  /** PEM certificate (chain) and key: HTTPS. Absent: HTTP. */
  tls?: { cert: Buffer; key: Buffer };
  /** For the body timeout (default the system clock). */
  clock?: Clock;
  /** How long a body may take (default BODY_TIMEOUT_MS; tests shorten it). */
  bodyTimeoutMs?: number;
}

/** The node http (or https) server of the relay (not listening yet). */
export function httpRelay(parts: HttpRelayParts): http.Server {
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    void handle(parts, req, res).catch((err: unknown) => {
      parts.log.error({ err: describeError(err), url: req.url }, 'request failed');
      if (!res.headersSent) send(res, errorAnswer(500, 'VMP_INTERNAL', 'relay: internal error; see the relay log'));
      else res.destroy();
    });
  };
  const server: http.Server = parts.tls ? https.createServer({ cert: parts.tls.cert, key: parts.tls.key }, handler) : http.createServer(handler);
  // a TLS handshake that does not finish is a connection held for nothing
  if (parts.tls) (server as https.Server).on('tlsClientError', (err, socket) => socket.destroy(err));
  // longer than any client's idle keep-alive, so a reused connection is not closed under it
  server.keepAliveTimeout = 75_000;
  server.headersTimeout = 30_000;
  server.requestTimeout = 0; // long polls: the upstream timeout bounds them
  return server;
}

function send(res: http.ServerResponse, a: PilotAnswer): void {
  const headers: Record<string, string> = { 'content-type': a.contentType, 'content-length': String(a.body.length) };
  if (a.retryAfter !== undefined) headers['retry-after'] = a.retryAfter;
  res.writeHead(a.status, headers).end(a.body);
}

async function handle(parts: HttpRelayParts, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://relay');
  const p = url.pathname;
  const method = req.method ?? 'GET';
  if (p.startsWith('/v1/agent/') && (method === 'GET' || method === 'HEAD')) {
    let name: string;
    try {
      name = decodeURIComponent(p.slice('/v1/agent/'.length));
    } catch {
      return send(res, errorAnswer(400, 'VMP_BAD_REQUEST', `agent file name "${p.slice('/v1/agent/'.length)}" is not a valid URL path`));
    }
    return parts.agentFiles.serve(req, res, name);
  }
  if (p === RELAY_ARTIFACT_PATH && (method === 'GET' || method === 'HEAD')) return parts.artifacts.serve(req, res, url.searchParams);
  if (p.startsWith(OUTPUTS_PREFIX) && method === 'PUT') {
    if (!parts.outputs) return send(res, errorAnswer(404, 'VMP_NOT_FOUND', 'this relay forwards no outputs: start it with --outputs URL'));
    return parts.outputs.put(req, res, p.slice(OUTPUTS_PREFIX.length));
  }
  if (method !== 'GET' && method !== 'POST') return send(res, errorAnswer(404, 'VMP_NOT_FOUND', `no route ${method} ${p} at the relay`));
  const bodyTimeoutMs = parts.bodyTimeoutMs ?? BODY_TIMEOUT_MS;
  const body = method === 'POST' ? await readBody(req, bodyTimeoutMs, parts.clock ?? systemClock) : null;
  if (body === 'too large') return send(res, errorAnswer(413, 'VMP_BAD_REQUEST', `request body is too large (more than ${MAX_BODY_BYTES} bytes)`));
  if (body === 'too slow') {
    res.setHeader('connection', 'close');
    send(res, errorAnswer(408, 'VMP_BAD_REQUEST', `the request body did not arrive within ${bodyTimeoutMs / 1000} s: send it promptly`));
    return void res.on('finish', () => req.socket.destroy());
  }
  if (body === 'gone') return;
  const gone = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) gone.abort();
  };
  res.on('close', onClose);
  try {
    const answer = await parts.forwarder.forward({
      method: method as 'GET' | 'POST',
      path: p,
      authorization: req.headers.authorization ?? null,
      body,
      from: req.socket.remoteAddress,
      signal: gone.signal,
    });
    send(res, answer);
  } catch (err) {
    if (gone.signal.aborted) return; // the agent went away: nobody to answer
    throw err;
  } finally {
    res.off('close', onClose);
  }
}

/** The request's body, at most MAX_BODY_BYTES within `timeoutMs`; 'too large' beyond, 'too slow' after, 'gone' when the client went away. */
function readBody(req: http.IncomingMessage, timeoutMs: number, clock: Clock): Promise<Buffer | 'too large' | 'too slow' | 'gone'> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const done = (v: Buffer | 'too large' | 'too slow' | 'gone') => {
      if (!settled) {
        settled = true;
        timer.abort();
        resolve(v);
      }
    };
    const timer = new AbortController();
    void clock.sleep(timeoutMs, timer.signal).then(() => {
      if (settled) return;
      req.pause();
      done('too slow');
    });
    req.on('data', (d: Buffer) => {
      size += d.length;
      if (size > MAX_BODY_BYTES) {
        req.pause();
        done('too large');
        return;
      }
      chunks.push(d);
    });
    req.on('end', () => done(Buffer.concat(chunks)));
    req.on('error', () => done('gone'));
    req.on('close', () => done('gone'));
  });
}
