/**
 * Forward one call of the pilot protocol to the server, for an agent behind
 * the relay (over HTTP, http-relay.ts, or from a mailbox, spool.ts). The
 * call goes as the agent made it, its bearer token included; the relay adds
 * its own token (upstream.ts). When the server cannot be reached the agent
 * gets a 502 whose body says so (VMP_UNREACHABLE): to the agent that is "no
 * answer", as a refused connection is, so it retries and counts no idle
 * time. The relay logs when the server stops answering and when it is back,
 * not every failed call.
 */
import { pilotCallKind } from '../protocol/pilot-calls.js';
import { LIMITS } from '../protocol/index.js';
import { VmpilotError, describeError, httpStatusOf, isVmpilotError, type ErrorCode } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { Upstream } from './upstream.js';

/** A short call may take this long at the server (ms); the agent gives up after 30 s. */
const CALL_TIMEOUT_MS = 60_000;
/** A long poll may take its wait plus this (ms). */
const POLL_MARGIN_MS = 30_000;

/** One call from an agent. */
export interface PilotCall {
  method: 'GET' | 'POST';
  path: string;
  /** The agent's `Authorization` header, passed on as it is; null: none. */
  authorization: string | null;
  body: Buffer | null;
  /** Where the agent called from (passed on as x-forwarded-for). */
  from?: string | undefined;
  signal?: AbortSignal | undefined;
}

/** The server's answer as the agent gets it. */
export interface PilotAnswer {
  status: number;
  contentType: string;
  body: Buffer;
  /** The server's `retry-after` (a 429 or 503 says when to come back), passed on as it is. */
  retryAfter?: string;
}

/**
 * The status of the relay's own error with `code`: the catalogue's
 * (src/shared/errors.ts) for a refusal of the request (400, 403, 404, ...),
 * 502 for everything else, which is the relay's or the server's failure and
 * not the caller's. Pure.
 */
export function relayStatusOf(code: ErrorCode): number {
  const status = httpStatusOf(code);
  return status < 500 ? status : 502;
}

/** An error answer in the protocol's shape. Pure. */
export function errorAnswer(status: number, code: string, message: string): PilotAnswer {
  return { status, contentType: 'application/json; charset=utf-8', body: Buffer.from(JSON.stringify({ error: { code, message } })) };
}

/** How long a long poll may take: the wait it asks for (bounded), plus a margin. Pure. */
export function pollTimeoutMs(body: Buffer | null): number {
  let waitSec: number = LIMITS.waitSec;
  try {
    const w = (JSON.parse(body?.toString('utf8') ?? 'null') as { waitSec?: unknown } | null)?.waitSec;
    if (typeof w === 'number' && w >= 0 && w <= LIMITS.waitSec) waitSec = w;
  } catch {
    // the server will say what is wrong with the body
  }
  return waitSec * 1000 + POLL_MARGIN_MS;
}

/** Forwards pilot calls; remembers whether the server answered, to log changes only. */
export class PilotForwarder {
  private down = false;

  constructor(
    private readonly upstream: Upstream,
    private readonly log: Logger,
  ) {}

  /** True while the last call found the server unreachable. */
  get serverDown(): boolean {
    return this.down;
  }

  /**
   * Forward `call`; resolve with what to answer the agent. A call that is not
   * of the pilot protocol is answered 404 without reaching the server.
   * Rejects only when `call.signal` aborted (the agent went away).
   */
  async forward(call: PilotCall): Promise<PilotAnswer> {
    const kind = pilotCallKind(call.method, call.path);
    if (kind === null) {
      return errorAnswer(404, 'VMP_NOT_FOUND', `the relay forwards only the pilot protocol (register, heartbeat, match, reports, health; agent files), not ${call.method} ${call.path}`);
    }
    const headers: Record<string, string> = { accept: 'application/json' };
    if (call.authorization) headers.authorization = call.authorization;
    if (call.body) headers['content-type'] = 'application/json';
    if (call.from) headers['x-forwarded-for'] = call.from;
    try {
      const answer = await this.upstream.call({
        method: call.method,
        path: call.path,
        headers,
        body: call.body ?? undefined,
        lane: kind === 'long-poll' ? 'polls' : 'calls',
        timeoutMs: kind === 'long-poll' ? pollTimeoutMs(call.body) : CALL_TIMEOUT_MS,
        signal: call.signal,
      });
      if (this.down) this.log.info({ server: this.upstream.base.origin }, 'server reachable again');
      this.down = false;
      const retryAfter = answer.headers['retry-after'];
      return {
        status: answer.status,
        contentType: String(answer.headers['content-type'] ?? 'application/json; charset=utf-8'),
        body: answer.body,
        ...(typeof retryAfter === 'string' ? { retryAfter } : {}),
      };
    } catch (err) {
      if (call.signal?.aborted) throw err;
      if (!isVmpilotError(err, 'VMP_UNREACHABLE')) throw err;
      if (!this.down) this.log.warn({ server: this.upstream.base.origin, err: describeError(err) }, 'server unreachable');
      this.down = true;
      return errorAnswer(502, 'VMP_UNREACHABLE', `relay: ${describeError(err)}`);
    }
  }
}

/** The error an aborted call rejects with (the agent went away or gave up). */
export function abortedError(): VmpilotError {
  return new VmpilotError('VMP_UNREACHABLE', 'aborted', { details: { aborted: true } });
}
