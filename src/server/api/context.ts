/**
 * What the API's route modules share: the options the server was built with
 * and what app.ts makes of them. Its own file so that app.ts imports the
 * routes and the routes import this, with no circle between them.
 */
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/log.js';
import type { Director } from '../director/loop.js';
import type { EndpointConfig } from '../director/endpoint-config.js';
import type { ServerMetrics } from '../metrics/server-metrics.js';
import type { Candidate, Picker } from '../queue/offer.js';
import type { IsolationPolicy } from '../queue/pick.js';
import type { RelayPolicy } from '../relay-config.js';
import type { Store } from '../store/store.js';
import type { Authenticator, TokenHashes } from './auth.js';
import type { ApiLimits } from './limits.js';
import type { LongPolls } from './long-polls.js';
import type { Notifier } from './notifier.js';
import type { TokenBuckets } from './rate-limit.js';
import type { RefusalLog } from './refusal-log.js';

/** What the API needs. */
export interface AppOptions {
  store: Store;
  clock: Clock;
  log: Logger;
  /** sha256 hashes of the admin token and the pilot registration token. */
  tokens: TokenHashes;
  heartbeatIntervalSec: number;
  /** The longest a match request is held open. */
  matchWaitMaxSec: number;
  /** The stall time (`--stall-after`), told to pilots at register as their lease (RegisterReply.leaseSec); absent: not told. */
  leaseSec?: number;
  /** Largest request body in bytes (default 1 MiB). */
  bodyLimit?: number;
  /** How long a pilot credential lives, in seconds; heartbeats renew it (default 3600; 0: never expires). */
  credentialTtlSec?: number;
  /** The queue's picker (default: every group the same share). */
  picker?: Picker;
  /** Groups whose payloads go only to pilots that isolate them (the picker must apply the same; default none). */
  isolationPolicy?: IsolationPolicy;
  /** Half-life of the recent usage fair shares compare, in seconds (default 3600). */
  usageHalfLifeSec?: number;
  /** The metrics to count into (default: a new set). */
  metrics?: ServerMetrics;
  /** Wake-ups of waiting matches (default: in memory, new; pass it to wake matches from outside, e.g. the stall sweep). */
  notifier?: Notifier;
  /** PEM certificate and key: the server speaks HTTPS only. */
  https?: { cert: Buffer; key: Buffer };
  /** Limits on registrations, long polls and slow clients (default: DEFAULT_LIMITS). */
  limits?: Partial<ApiLimits>;
  /** The groups' fair shares and the share of groups not named, as the picker applies them (the overview shows the targets; default none, 1). */
  shares?: ReadonlyMap<string, number>;
  defaultShare?: number;
  /** Cloud instances by endpoint and state, when a director runs (the overview shows them; default: none). */
  instanceCounts?: () => Promise<{ endpoint: string; state: string; count: number }[]>;
  /** Relays the server knows, and whether registrations must come through one (default: none, not required). */
  relays?: RelayPolicy;
  /** The director, when `endpoints:` are configured (none: no director; the director routes say so). */
  director?: Director | null;
  /** The configured endpoints (default: none). */
  endpoints?: readonly EndpointConfig[];
}

/** What the route modules share. */
export interface ApiContext extends AppOptions {
  auth: Authenticator;
  notifier: Notifier;
  metrics: ServerMetrics;
  picker: Picker;
  isolationPolicy: IsolationPolicy;
  usageHalfLifeSec: number;
  credentialTtlSec: number;
  /** The waiting candidates the designations were last made from (or are being read), at most a second old (match.ts). */
  waitingCache: { at: number; candidates: Promise<Candidate[]> } | null;
  limits: ApiLimits;
  /** Refusals, logged at a rate. */
  refusals: RefusalLog;
  /** The match requests held open, per pilot and in all. */
  longPolls: LongPolls;
  /** Registrations per registration token and per source address. */
  registrations: { byToken: TokenBuckets; byAddress: TokenBuckets };
  shares: ReadonlyMap<string, number>;
  defaultShare: number;
}
