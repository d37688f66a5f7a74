/**
 * The spot interruption notice of a cloud, as a deadline source: on an EC2
 * spot instance (`--spot-notice aws`), the instance metadata service says
 * when the instance will be interrupted, about two minutes ahead, at
 * `latest/meta-data/spot/instance-action` (`{"action": "terminate",
 * "time": "2026-01-01T12:02:00Z"}`; 404 while there is none). IMDSv2: a
 * session token is asked for with a PUT to `latest/api/token` (its TTL in
 * a header) and sent with every GET; it is kept until shortly before it
 * expires, and asked for again when the service refuses it (401).
 *
 * The notice's time becomes a deadline candidate (mjf/deadline.ts), so the
 * agent does what it does for any deadline: takes no payload that cannot
 * finish before it, drains, stops its payloads a grace before it (they are
 * reported evicted and requeued), and halts. A notice once seen is kept: a
 * failed read later does not take it back.
 */
import { systemClock, type Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/log.js';

/** Which clouds' notices the agent knows. */
export const SPOT_NOTICE_KINDS = ['aws'] as const;
export type SpotNoticeKind = (typeof SPOT_NOTICE_KINDS)[number];

/** The metadata service's address on EC2. */
export const AWS_METADATA_URL = 'http://169.254.169.254';
/** The token's lifetime asked for (seconds), and how long before its end a new one is asked. */
const TOKEN_TTL_SEC = 21600;
const TOKEN_RENEW_MS = 60_000;
/** One metadata call may take this long (the service is local; a hung one must not hold the deadline watch). */
const CALL_MS = 2000;

/** What a notice says. */
export interface SpotAction {
  action: string;
  /** When the instance is interrupted (ms epoch). */
  at: number;
}

/** Read an instance-action document; null when it is not one. Pure. */
export function parseInstanceAction(text: string): SpotAction | null {
  try {
    const doc = JSON.parse(text) as { action?: unknown; time?: unknown };
    const at = typeof doc.time === 'string' ? Date.parse(doc.time) : NaN;
    return typeof doc.action === 'string' && Number.isFinite(at) ? { action: doc.action, at } : null;
  } catch {
    return null;
  }
}

/** The notice watch of one agent. */
export class SpotNotice {
  private token: { value: string; until: number } | null = null;
  private seen: SpotAction | null = null;
  private lastProblem: string | null = null;
  private readonly base: string;

  constructor(
    readonly kind: SpotNoticeKind,
    metadataUrl: string,
    private readonly log: Logger,
    private readonly clock: Pick<Clock, 'now'> = systemClock,
  ) {
    this.base = metadataUrl.replace(/\/+$/, '');
  }

  /** The notice as of now (the one seen before, when the service cannot be read). */
  async read(): Promise<SpotAction | null> {
    if (this.seen) return this.seen;
    try {
      let res = await this.get();
      if (res.status === 401) {
        this.token = null;
        res = await this.get();
      }
      if (res.status === 404) return this.ok(null);
      if (res.status !== 200) return this.problem(`GET spot/instance-action: HTTP ${res.status}`);
      const action = parseInstanceAction(res.text);
      if (!action) return this.problem(`spot/instance-action is not a notice: ${res.text.slice(0, 200)}`);
      this.seen = action;
      this.log.warn({ action: action.action, at: new Date(action.at).toISOString() }, 'spot interruption notice: the instance is interrupted at this time');
      return action;
    } catch (err) {
      const cause = (err as { cause?: { message?: string } }).cause?.message;
      return this.problem(`${(err as Error).message}${cause ? ` (${cause})` : ''}`);
    }
  }

  private ok(v: null): null {
    if (this.lastProblem !== null) this.log.info({ metadata: this.base }, 'spot notice readable again');
    this.lastProblem = null;
    return v;
  }

  /** Log a problem once (until it changes); no notice. */
  private problem(p: string): null {
    if (p !== this.lastProblem) this.log.warn({ metadata: this.base, problem: p }, 'spot notice not read');
    this.lastProblem = p;
    return null;
  }

  private async sessionToken(): Promise<string> {
    if (this.token && this.token.until > this.clock.now()) return this.token.value;
    const res = await fetch(`${this.base}/latest/api/token`, { method: 'PUT', headers: { 'x-aws-ec2-metadata-token-ttl-seconds': String(TOKEN_TTL_SEC) }, signal: AbortSignal.timeout(CALL_MS) });
    const text = await res.text();
    if (res.status !== 200 || text.trim() === '') throw new Error(`PUT latest/api/token: HTTP ${res.status}`);
    this.token = { value: text.trim(), until: this.clock.now() + TOKEN_TTL_SEC * 1000 - TOKEN_RENEW_MS };
    return this.token.value;
  }

  private async get(): Promise<{ status: number; text: string }> {
    const token = await this.sessionToken();
    const res = await fetch(`${this.base}/latest/meta-data/spot/instance-action`, { headers: { 'x-aws-ec2-metadata-token': token }, signal: AbortSignal.timeout(CALL_MS) });
    return { status: res.status, text: await res.text() };
  }
}
