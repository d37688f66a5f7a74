/**
 * The real ControlPlane: JSON over HTTP(S) (node's http, see http-call.ts). `register` carries
 * the registration token; every later call carries the per-pilot credential
 * it returned. Failures become VmpilotErrors with stable codes.
 */
import {
  apiUrl,
  paths,
  type ErrorReply,
  type HeartbeatReply,
  type HeartbeatRequest,
  type MatchReply,
  type MatchRequest,
  type RegisterReply,
  type RegisterRequest,
  type Report,
  type ReportsReply,
} from '../../protocol/index.js';
import { VmpilotError, codeForStatus, httpStatusOf, isErrorCode, type ErrorCode } from '../../shared/errors.js';
import { transportReason } from '../../shared/transport-errors.js';
import type { ControlPlane } from '../ports.js';
import { HttpClient, HttpTransportError } from './http-call.js';

/** Seconds a match call may take beyond its `waitSec` before it counts as a timeout. */
export const MATCH_MARGIN_SEC = 15;
const CALL_TIMEOUT_MS = 30_000;

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
  'ECONNABORTED',
]);

/**
 * The VmpilotError code of an error reply with `status` and, when the body is
 * the server's envelope, its `code`, both read from the catalogue
 * (src/shared/errors.ts): the body's code when the catalogue gives it this
 * status (VMP_REPORT_SEQ and VMP_CONFLICT share 409; VMP_RATE_LIMITED is
 * 429), else the catalogue's code for the status, else VMP_SERVER: a status
 * the agent does not know (413, 502 from a relay, a proxy's page) is server
 * trouble, to be tried again.
 */
export function codeForReply(status: number, code?: unknown): ErrorCode {
  if (isErrorCode(code) && httpStatusOf(code) === status && status < 500) return code;
  return codeForStatus(status) ?? 'VMP_SERVER';
}

/** Options of the HTTP control plane. */
export interface HttpControlPlaneOptions {
  /** Base URL of the server, e.g. http://127.0.0.1:8080 */
  server: string;
  /** The registration token. */
  token: string;
  /** PEM CA certificate(s) to trust for an https server (`--ca-file`). */
  ca?: Buffer | undefined;
  /** How calls travel (default: HTTP, node's http/https); mailbox mode passes them as files (mailbox-control-plane.ts). */
  transport?: Pick<HttpClient, 'call' | 'close'>;
}

/** ControlPlane over HTTP. One instance per agent process. */
export class HttpControlPlane implements ControlPlane {
  private credential: string | null = null;
  private pilotId: number | null = null;
  private readonly client: Pick<HttpClient, 'call' | 'close'>;

  constructor(private readonly options: HttpControlPlaneOptions) {
    this.client = options.transport ?? new HttpClient(options.ca);
  }

  async register(body: RegisterRequest): Promise<RegisterReply> {
    const reply = await this.post<RegisterReply>(paths.register, body, this.options.token);
    this.credential = reply.credential;
    this.pilotId = reply.pilotId;
    return reply;
  }

  resume(pilotId: number, credential: string): void {
    this.pilotId = pilotId;
    this.credential = credential;
  }

  async heartbeat(body: HeartbeatRequest): Promise<HeartbeatReply> {
    const reply = await this.post<HeartbeatReply>(paths.heartbeat(this.id()), body, this.cred());
    // the server renews the credential before it expires: every later call carries the new one
    if (reply.credential) this.credential = reply.credential;
    return reply;
  }

  match(body: MatchRequest, signal?: AbortSignal): Promise<MatchReply> {
    const timeout = (body.waitSec + MATCH_MARGIN_SEC) * 1000;
    return this.post(paths.match(this.id()), body, this.cred(), signal, timeout);
  }

  report(reports: Report[]): Promise<ReportsReply> {
    return this.post(paths.reports(this.id()), { reports }, this.cred());
  }

  /** Close idle connections (the agent is about to exit). */
  async close(): Promise<void> {
    this.client.close();
  }

  private id(): number {
    if (this.pilotId === null) throw new VmpilotError('VMP_INTERNAL', 'control plane used before register');
    return this.pilotId;
  }

  private cred(): string {
    return this.credential ?? this.options.token;
  }

  private async post<T>(p: string, body: unknown, bearer: string, signal?: AbortSignal, timeoutMs = CALL_TIMEOUT_MS): Promise<T> {
    // the server URL's own path stays (a server behind a proxy at https://host/vmpilot)
    const url = apiUrl(this.options.server, p).href;
    let status: number;
    let text: string;
    try {
      ({ status, text } = await this.client.call({
        method: 'POST',
        url,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
        body: JSON.stringify(body),
        signal,
        timeoutMs,
      }));
    } catch (err) {
      throw mapTransportError(err, url, signal, this.options.server);
    }
    if (status < 200 || status > 299) {
      let message = `HTTP ${status} from ${url}`;
      let bodyCode: unknown;
      const details: Record<string, unknown> = { status, url };
      try {
        const parsed = JSON.parse(text) as ErrorReply;
        if (parsed.error?.message) message = `${parsed.error.message} (HTTP ${status})`;
        // the agent acts on reports out of order (a fault) and too many requests (retry later): codeForReply reads them
        bodyCode = parsed.error?.code;
        if (typeof parsed.error?.appliedSeq === 'number') details.appliedSeq = parsed.error.appliedSeq;
      } catch {
        // not JSON: keep the status line
      }
      throw new VmpilotError(codeForReply(status, bodyCode), message, { details });
    }
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new VmpilotError('VMP_SERVER', `${url} answered with something that is not JSON`, { cause: err });
    }
  }
}

function mapTransportError(err: unknown, url: string, signal: AbortSignal | undefined, server: string): VmpilotError {
  if (signal?.aborted) {
    return new VmpilotError('VMP_UNREACHABLE', `request to ${url} aborted`, { cause: err, details: { aborted: true } });
  }
  const code = err instanceof HttpTransportError ? err.code : ((err as { code?: string }).code ?? '');
  // OpenSSL's own text ("…ssl3_get_record:wrong version number…") said in words, with what to do
  const why = transportReason(err, new URL(server), '--ca-file CA.pem (or caFile, VMPILOT_CA_FILE)');
  const message = why.hint ? `${why.reason}; ${why.hint}` : why.reason;
  if (CONNECTION_CODES.has(code)) {
    return new VmpilotError('VMP_UNREACHABLE', `cannot reach ${url}: ${message}`, { cause: err, details: { errno: code } });
  }
  return new VmpilotError('VMP_UNREACHABLE', `cannot reach ${url}: ${message}`, { cause: err });
}
