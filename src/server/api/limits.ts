/**
 * The limits that keep one caller from exhausting the server: the size of a
 * registration's labels and of a node's capabilities, how fast pilots may register (per registration
 * token and per source address), how many match long polls may wait (per
 * pilot and in all), and how long a client may take to send a request. Set
 * in `serve --config FILE` under `limits:` (config.ts); these are the
 * defaults, chosen so that a site booting thousands of VMs at once behind one
 * address is never refused for long (docs/security.md).
 */

/** The limits the API enforces. A rate or a cap of 0 means no limit. */
export interface ApiLimits {
  /** Largest `labels` of a registration, in bytes of its JSON. */
  readonly labelBytes: number;
  /** Largest `capabilities` of a registration or heartbeat, in bytes of its JSON (GPU models, site and tags are the node's to say). */
  readonly capabilityBytes: number;
  /** Registrations one registration token may make at once, and per second after that (token bucket). */
  readonly registerBurstPerToken: number;
  readonly registerPerSecPerToken: number;
  /** The same per source address. */
  readonly registerBurstPerAddress: number;
  readonly registerPerSecPerAddress: number;
  /** Match requests of one pilot held open at once; a new one answers the oldest. */
  readonly longPollsPerPilot: number;
  /** Match requests held open at once, in all; beyond it a new one is answered 429 at once. */
  readonly longPollsTotal: number;
  /** A request must arrive whole (headers and body) within this many seconds. */
  readonly requestTimeoutSec: number;
  /** Its headers within this many seconds. */
  readonly headersTimeoutSec: number;
  /** An idle keep-alive connection is closed after this many seconds. */
  readonly keepAliveSec: number;
  /** A socket silent for longer than the longest match long poll plus this many seconds is closed (a peer that vanished). */
  readonly socketSlackSec: number;
}

export const DEFAULT_LIMITS: ApiLimits = Object.freeze({
  labelBytes: 4096,
  capabilityBytes: 16384,
  registerBurstPerToken: 2000,
  registerPerSecPerToken: 50,
  registerBurstPerAddress: 1000,
  registerPerSecPerAddress: 50,
  longPollsPerPilot: 2,
  longPollsTotal: 100_000,
  requestTimeoutSec: 30,
  headersTimeoutSec: 10,
  keepAliveSec: 72,
  socketSlackSec: 60,
});

/** Allowed ranges of each limit, for the configuration file. */
export const LIMIT_RANGES: Readonly<Record<keyof ApiLimits, readonly [number, number]>> = {
  labelBytes: [2, 64 * 1024],
  capabilityBytes: [256, 256 * 1024],
  registerBurstPerToken: [0, 1e9],
  registerPerSecPerToken: [0, 1e6],
  registerBurstPerAddress: [0, 1e9],
  registerPerSecPerAddress: [0, 1e6],
  longPollsPerPilot: [1, 64],
  longPollsTotal: [0, 1e7],
  requestTimeoutSec: [1, 3600],
  headersTimeoutSec: [1, 3600],
  keepAliveSec: [1, 3600],
  socketSlackSec: [1, 3600],
};

/** The most rows one page of a listing (GET /v1/pilots, GET /v1/payloads) holds, and the default. */
export const PAGE_MAX = 500;
export const PAGE_DEFAULT = 100;
