/**
 * The server's configuration file (`serve --config FILE`, YAML): fair-share
 * groups and the policies of the queue and of pilots. Every key is optional;
 * an unknown key or a bad value is a VMP_CONFIG error naming the key, the
 * value and what was expected. Validated once and frozen.
 *
 * ```yaml
 * groups:                 # fair shares: any positive numbers, compared as fractions
 *   atlas: { share: 70, requireIsolation: true }   # only to pilots whose payloads cannot reach them
 *   cms:   { share: 30 }
 * defaultShare: 1         # a group not listed
 * usageHalfLifeSec: 3600  # recent usage decays by half in this time
 * stallAfterSec: 600      # no contact for this long: the pilot is stalled
 * maxAttempts: 3          # a payload lost this many times fails
 * credentialTtlSec: 3600  # pilot credentials live this long; heartbeats renew them
 * endpoints: { … }        # where the director starts machines: director/endpoint-config.ts, docs/director.md
 * directorCycleSec: 5     # the director's cycle (it also cycles soon after each submit)
 * limits:                 # what one caller may use up (api/limits.ts; 0: no limit for a rate or cap)
 *   labelBytes: 4096                 # a registration's labels, in bytes of JSON
 *   capabilityBytes: 16384           # a node's capabilities (register, heartbeat), in bytes of JSON
 *   registerBurstPerToken: 2000      # registrations at once per registration token,
 *   registerPerSecPerToken: 50       #   then this many a second
 *   registerBurstPerAddress: 1000    # the same per source address
 *   registerPerSecPerAddress: 50
 *   longPollsPerPilot: 2             # match requests one pilot holds open (a new one answers the oldest)
 *   longPollsTotal: 100000           # in all (beyond: 429)
 *   requestTimeoutSec: 30            # a request (headers and body) must arrive within this
 *   headersTimeoutSec: 10            # its headers within this
 *   keepAliveSec: 72                 # an idle connection closes after this
 *   socketSlackSec: 60               # a socket silent longer than the longest long poll plus this closes
 * relays: { … }           # relays the server knows, and whether pilots must come through one: relay-config.ts, docs/hpc.md
 * ```
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { VmpilotError, describeError } from '../shared/errors.js';
import { type EndpointConfig, endpointsFrom } from './director/endpoint-config.js';
import { DEFAULT_LIMITS, LIMIT_RANGES, type ApiLimits } from './api/limits.js';
import { NO_RELAYS, relaysFrom, type RelayPolicy } from './relay-config.js';

/** The server configuration, after defaults. */
export interface ServerConfig {
  readonly shares: ReadonlyMap<string, number>;
  /** Groups whose payloads go only to pilots that isolate their payloads (isolation other than none). */
  readonly requireIsolation: ReadonlySet<string>;
  readonly defaultShare: number;
  readonly usageHalfLifeSec: number;
  readonly stallAfterSec: number;
  readonly maxAttempts: number;
  readonly credentialTtlSec: number;
  /** Where the director may start machines, in the order written (none: no director). */
  readonly endpoints: readonly EndpointConfig[];
  /** Seconds between the director's cycles (it also cycles soon after each submit). */
  readonly directorCycleSec: number;
  /** What one caller may use up (api/limits.ts). */
  readonly limits: ApiLimits;
  /** Relays the server knows (by their token's sha256), and whether registrations must come through one. */
  readonly relays: RelayPolicy;
}

export const DEFAULT_SERVER_CONFIG: ServerConfig = Object.freeze({
  limits: DEFAULT_LIMITS,
  shares: new Map<string, number>(),
  requireIsolation: new Set<string>(),
  defaultShare: 1,
  usageHalfLifeSec: 3600,
  stallAfterSec: 600,
  maxAttempts: 3,
  credentialTtlSec: 3600,
  endpoints: Object.freeze([]),
  directorCycleSec: 5,
  relays: NO_RELAYS,
});

const NUMBERS = {
  defaultShare: [0, 1e9],
  usageHalfLifeSec: [1, 365 * 86400],
  stallAfterSec: [1, 30 * 86400],
  maxAttempts: [1, 100],
  credentialTtlSec: [0, 365 * 86400],
  directorCycleSec: [1, 86400],
} as const;

const bad = (where: string, message: string) => new VmpilotError('VMP_CONFIG', `${where}: ${message}`);

/** Validate a parsed configuration object; `where` names its source in errors. Pure. */
export function serverConfigFrom(raw: unknown, where = 'config'): ServerConfig {
  if (raw === null || raw === undefined) return DEFAULT_SERVER_CONFIG;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw bad(where, 'must be a mapping of keys to values');
  const out: { -readonly [K in keyof ServerConfig]: ServerConfig[K] } = { ...DEFAULT_SERVER_CONFIG, shares: new Map() };
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    if (key === 'groups') {
      ({ shares: out.shares, requireIsolation: out.requireIsolation } = groupsFrom(value, where));
      continue;
    }
    if (key === 'endpoints') {
      out.endpoints = endpointsFrom(value, where);
      continue;
    }
    if (key === 'limits') {
      out.limits = limitsFrom(value, where);
      continue;
    }
    if (key === 'relays') {
      out.relays = relaysFrom(value, where);
      continue;
    }
    const range = (NUMBERS as Record<string, readonly [number, number]>)[key];
    if (!range) throw bad(where, `unknown key "${key}" (known: groups, endpoints, limits, relays, ${Object.keys(NUMBERS).join(', ')})`);
    if (typeof value !== 'number' || !Number.isFinite(value) || value < range[0] || value > range[1]) {
      throw bad(where, `${key} is ${JSON.stringify(value)}; expected a number from ${range[0]} to ${range[1]}`);
    }
    if (key === 'maxAttempts' && !Number.isInteger(value)) throw bad(where, `maxAttempts is ${value}; expected a whole number`);
    (out as unknown as Record<string, number>)[key] = value;
  }
  return Object.freeze(out);
}

function limitsFrom(value: unknown, where: string): ApiLimits {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw bad(where, 'limits must map limit names to numbers, e.g. limits: { registerPerSecPerToken: 50 }');
  }
  const out: Record<string, number> = { ...DEFAULT_LIMITS };
  for (const [key, n] of Object.entries(value as Record<string, unknown>)) {
    const range = (LIMIT_RANGES as Record<string, readonly [number, number]>)[key];
    if (!range) throw bad(where, `limits.${key} is not a limit (known: ${Object.keys(LIMIT_RANGES).join(', ')})`);
    if (typeof n !== 'number' || !Number.isFinite(n) || n < range[0] || n > range[1]) {
      throw bad(where, `limits.${key} is ${JSON.stringify(n)}; expected a number from ${range[0]} to ${range[1]}`);
    }
    out[key] = n;
  }
  return Object.freeze(out as unknown as ApiLimits);
}

function groupsFrom(value: unknown, where: string): { shares: Map<string, number>; requireIsolation: Set<string> } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw bad(where, 'groups must map group names to { share: N }, e.g. groups: { atlas: { share: 70 } }');
  }
  const shares = new Map<string, number>();
  const requireIsolation = new Set<string>();
  for (const [group, spec] of Object.entries(value as Record<string, unknown>)) {
    if (!/^[A-Za-z0-9_.-]{1,100}$/.test(group)) throw bad(where, `groups.${group}: a group name may hold only letters, digits, _ . -`);
    const fields = typeof spec === 'object' && spec !== null ? (spec as { share?: unknown; requireIsolation?: unknown }) : {};
    const share = typeof spec === 'number' ? spec : fields.share;
    const extra = Object.keys(fields).filter((k) => k !== 'share' && k !== 'requireIsolation');
    if (extra.length > 0) throw bad(where, `groups.${group}: unknown key "${extra[0]}" (known: share, requireIsolation)`);
    if (typeof share !== 'number' || !Number.isFinite(share) || share < 0 || share > 1e9) {
      throw bad(where, `groups.${group}.share is ${JSON.stringify(share)}; expected a number from 0 to 1000000000`);
    }
    if (fields.requireIsolation !== undefined && typeof fields.requireIsolation !== 'boolean') {
      throw bad(where, `groups.${group}.requireIsolation is ${JSON.stringify(fields.requireIsolation)}; expected true or false`);
    }
    shares.set(group, share);
    if (fields.requireIsolation === true) requireIsolation.add(group);
  }
  return { shares, requireIsolation };
}

/** Read and validate the YAML file `file`. Throws VMP_CONFIG naming the file. */
export function loadServerConfig(file: string): ServerConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new VmpilotError('VMP_CONFIG', `cannot read --config ${file}: ${describeError(err)}`, { cause: err });
  }
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (err) {
    throw new VmpilotError('VMP_CONFIG', `${file} is not valid YAML: ${describeError(err)}`, { cause: err });
  }
  return serverConfigFrom(raw, file);
}
