/**
 * The admin commands' one HTTP client (undici). Every failure becomes a
 * VmpilotError with a stable code: VMP_UNREACHABLE when the server cannot be
 * reached, and for an HTTP error the code of the server's error envelope
 * (VMP_UNAUTHORIZED, VMP_FORBIDDEN, VMP_NOT_FOUND, VMP_BAD_REQUEST with the
 * server's message naming the field, VMP_CONFLICT, VMP_SERVER); a reply
 * without one gets the code the catalogue (src/shared/errors.ts) gives its status.
 */
import { readFileSync } from 'node:fs';
import { Agent, request, type Dispatcher } from 'undici';
import type { ErrorReply } from '../../protocol/index.js';
import { apiUrl } from '../../protocol/paths.js';
import { VmpilotError, codeForStatus, describeError, isErrorCode, type ErrorCode } from '../../shared/errors.js';
import { transportReason } from '../../shared/transport-errors.js';

/** Where the server is and the admin token to show it. */
export interface ClientOptions {
  server: string;
  token: string | undefined;
  /** A file holding the admin token (its first line): keeps the token out of the command line, where `ps` shows it. */
  tokenFile?: string | undefined;
  /** PEM file of the CA that signed the server's certificate (https with a private CA). */
  caFile?: string | undefined;
}

/** The admin token: from --token-file (VMPILOT_TOKEN_FILE), or --token (VMPILOT_TOKEN); throws VMP_USAGE naming what is wrong. */
export function adminToken(o: Pick<ClientOptions, 'token' | 'tokenFile'>): string {
  if (o.tokenFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(o.tokenFile, 'utf8');
    } catch (err) {
      throw new VmpilotError('VMP_USAGE', `cannot read --token-file ${o.tokenFile}: ${describeError(err)}`);
    }
    const token = text.split('\n')[0]!.trim();
    if (!token) throw new VmpilotError('VMP_USAGE', `--token-file ${o.tokenFile} is empty: put the admin token on its first line`);
    return token;
  }
  if (!o.token) throw new VmpilotError('VMP_USAGE', 'no admin token', { details: { hint: 'pass --token-file F (or VMPILOT_TOKEN_FILE), or set VMPILOT_TOKEN' } });
  return o.token;
}

/** A JSON client for the admin API. */
export class AdminClient {
  private readonly base: URL;
  private readonly dispatcher: Dispatcher | undefined;
  private readonly token: string;

  constructor(private readonly options: ClientOptions) {
    try {
      this.base = new URL(options.server);
    } catch {
      throw new VmpilotError('VMP_USAGE', `--server "${options.server}" is not a URL (e.g. http://127.0.0.1:8080)`);
    }
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:') {
      throw new VmpilotError('VMP_USAGE', `--server "${options.server}" must start with http:// or https://`);
    }
    this.token = adminToken(options);
    if (options.caFile) {
      let ca: Buffer;
      try {
        ca = readFileSync(options.caFile);
      } catch (err) {
        throw new VmpilotError('VMP_USAGE', `cannot read --ca-file ${options.caFile}: ${describeError(err)}`);
      }
      this.dispatcher = new Agent({ connect: { ca } });
    }
  }

  /** GET a path and parse the JSON reply. */
  async get<T>(path: string): Promise<T> {
    return (await this.call<T>('GET', path)).body;
  }

  /**
   * GET a listing page after page (newest first), following each page's
   * `Link: <…>; rel="next"`, until there is none or `max` rows are in.
   */
  async getPages<T>(path: string, max = Infinity): Promise<T[]> {
    const rows: T[] = [];
    let next: string | null = path;
    while (next !== null && rows.length < max) {
      const page: { body: T[]; link: string | null } = await this.call<T[]>('GET', next);
      rows.push(...page.body);
      next = nextPage(page.link);
    }
    return rows.slice(0, max);
  }

  /** POST a JSON body and parse the JSON reply. */
  async post<T>(path: string, body: unknown): Promise<T> {
    return (await this.call<T>('POST', path, body)).body;
  }

  /**
   * POST a JSON body whose reply is NDJSON sent as it happens: `onLine` gets
   * each line, parsed, as it arrives. The reply may be silent for minutes
   * between lines: only `timeoutMs` in all bounds it.
   */
  async postLines(path: string, body: unknown, onLine: (line: unknown) => void, timeoutMs: number): Promise<void> {
    const url = apiUrl(this.base, path);
    let res;
    try {
      res = await request(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        ...(this.dispatcher ? { dispatcher: this.dispatcher } : {}),
        headersTimeout: 30_000,
        bodyTimeout: timeoutMs,
      });
    } catch (err) {
      const why = transportReason(err, this.base, '--ca-file CA.pem (or VMPILOT_CA_FILE)');
      throw new VmpilotError('VMP_UNREACHABLE', `cannot reach the server at ${this.base.origin}: ${why.reason}`, {
        cause: err,
        details: { hint: why.hint ?? 'check --server (or VMPILOT_SERVER) and that the server is running' },
      });
    }
    if (res.statusCode < 200 || res.statusCode >= 300) throw httpError(res.statusCode, await res.body.text(), `POST ${url.pathname}`);
    let rest = '';
    const take = (line: string) => {
      if (line.trim() === '') return;
      try {
        onLine(JSON.parse(line));
      } catch (err) {
        if (err instanceof SyntaxError) throw new VmpilotError('VMP_SERVER', `the server answered POST ${url.pathname} with a line that is not JSON`);
        throw err;
      }
    };
    try {
      for await (const chunk of res.body) {
        rest += (chunk as Buffer).toString('utf8');
        let nl: number;
        while ((nl = rest.indexOf('\n')) >= 0) {
          take(rest.slice(0, nl));
          rest = rest.slice(nl + 1);
        }
      }
    } catch (err) {
      if (err instanceof VmpilotError) throw err;
      throw new VmpilotError('VMP_UNREACHABLE', `the server's answer to POST ${url.pathname} was cut off: ${describeError(err)}`, { cause: err });
    }
    take(rest);
  }

  private async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ body: T; link: string | null }> {
    // the base's own path stays: a server behind a proxy at http://host/api is called at http://host/api/v1/...;
    // so does a Link header's next page, which the server names by its own path (/v1/pilots?before=…)
    const url = apiUrl(this.base, path);
    let res;
    try {
      res = await request(url, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        ...(this.dispatcher ? { dispatcher: this.dispatcher } : {}),
        headersTimeout: 30_000,
        bodyTimeout: 30_000,
      });
    } catch (err) {
      const why = transportReason(err, this.base, '--ca-file CA.pem (or VMPILOT_CA_FILE)');
      throw new VmpilotError('VMP_UNREACHABLE', `cannot reach the server at ${this.base.origin}${this.base.pathname.replace(/\/+$/, '')}: ${why.reason}`, {
        cause: err,
        details: { hint: why.hint ?? 'check --server (or VMPILOT_SERVER) and that the server is running' },
      });
    }
    const text = await res.body.text();
    if (res.statusCode >= 200 && res.statusCode < 300) {
      const link = res.headers.link;
      try {
        return { body: JSON.parse(text) as T, link: typeof link === 'string' ? link : null };
      } catch {
        throw new VmpilotError('VMP_SERVER', `the server answered ${method} ${url.pathname} with something that is not JSON`);
      }
    }
    throw httpError(res.statusCode, text, `${method} ${url.pathname}`);
  }
}

/** The path of the `rel="next"` page in a Link header, or null. */
export function nextPage(link: string | null): string | null {
  const m = link ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link) : null;
  return m?.[1] ?? null;
}

/** The VmpilotError for an HTTP error reply. */
export function httpError(status: number, text: string, what: string): VmpilotError {
  let code: string | undefined;
  let message = `${what}: HTTP ${status}`;
  try {
    const body = JSON.parse(text) as ErrorReply;
    code = body.error.code;
    message = body.error.message;
  } catch {
    // not our envelope: keep the status line
  }
  // the server's own code says most (VMP_DRIVER, VMP_CONFIG); VMP_INTERNAL is a server failure to us
  const known = isErrorCode(code) && code !== 'VMP_INTERNAL' ? code : undefined;
  const final: ErrorCode = known ?? codeForStatus(status) ?? (status >= 400 && status < 500 ? 'VMP_BAD_REQUEST' : 'VMP_SERVER');
  const hint = final === 'VMP_UNAUTHORIZED' ? { hint: 'pass the admin token with --token T or VMPILOT_TOKEN' } : {};
  return new VmpilotError(final, `the server refused it (${status}): ${message}`, { details: { status, ...hint } });
}
