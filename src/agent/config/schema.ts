/**
 * The agent's configuration schema: one table of keys, each with its flag,
 * environment variable, default and validator. The loader (load.ts) applies
 * precedence flags > env > config file > defaults and validates once.
 */
import type { HaltAction } from '../ports.js';
import { LIMITS, REQUIREMENT_LIMITS, RequirementError, normaliseRequirement, parseArch, parsePlatform, formatArch } from '../../protocol/index.js';
import { AWS_METADATA_URL, SPOT_NOTICE_KINDS, type SpotNoticeKind } from '../resources/spot-notice.js';
import { parseMailboxUrl } from '../control/mailbox-url.js';

/** The validated, frozen configuration of one agent process. */
export interface AgentConfig {
  /** The server's http(s) URL (or a relay's), or a mailbox file:///DIR/NAME on a shared filesystem (docs/hpc.md). */
  server: string | null;
  /** The registration token: from `--token-file`, VMPILOT_PILOT_TOKEN or the config file (never a command line). */
  token: string | null;
  /** The file the token was read from (hidden from sandboxed payloads); null when it came from elsewhere. */
  tokenFile: string | null;
  /** PEM file of the CA that signed the server's TLS certificate (a private CA); null: the system's CAs. */
  caFile: string | null;
  /** Cores to offer; null means "as many as the node has" (probed). */
  cores: number | null;
  /** Memory to offer in MiB; null means probed. */
  memoryMb: number | null;
  /** Halt with code 300 once the server has had no payload for the agent this many seconds (answered time only); 0 disables. */
  idleTimeoutSec: number;
  halt: HaltAction;
  /** Absolute path of the state directory. */
  stateDir: string;
  /** Seconds between SIGTERM and SIGKILL of payloads when halting. */
  graceSec: number;
  logLevel: string;
  /** The agent must be gone this many seconds after boot; null for no limit. */
  lifetimeSec: number | null;
  /** The environment every payload starts from (a safe subset of the agent's). */
  payloadBaseEnv: Readonly<Record<string, string>>;
  /** Machine features: a directory or an http(s) base URL; null when not given. */
  machineFeatures: string | null;
  /** Job features: a directory or an http(s) base URL; null when not given. */
  jobFeatures: string | null;
  /** Run payloads as this user (name or uid) when the agent runs as root; null: one account per slot. */
  payloadUser: string | null;
  /** How payloads are kept from the agent and from each other: auto, bwrap, unshare or none (isolation/plan.ts). */
  isolation: IsolationChoice;
  /** Stop taking smaller work once a larger payload has waited this long (seconds). */
  starvationSec: number;
  /** Cap on each of a payload's stdout and stderr files, MiB (older output is dropped). */
  maxOutputMb: number;
  /** The batch system's variables (Slurm, PBS, Grid Engine) and PATH, as the agent found them. */
  batchEnv: Readonly<Record<string, string>>;
  /** Never halt for idleness before this many seconds after start. */
  minLifetimeSec: number;
  /** Halt with code 700 after this long without reaching the server while nothing runs; 0 never. */
  orphanTimeoutSec: number;
  /** A second operator drain file besides `<stateDir>/drain` (drains while it exists). */
  drainFile: string;
  /** `$JOBOUTPUTS`: a directory, or an http(s) URL to PUT `heartbeat` and `shutdown_message` to; null: none. */
  jobOutputs: string | null;
  /** A relay's URL: bootstrap artifacts with http(s) URLs are fetched through its cache (docs/hpc.md). */
  artifactsVia: string | null;
  /** A bootstrap spec (YAML: check, software, env, setup) to run once registered; null: none. */
  bootstrap: string | null;
  /** The config file read (hidden from sandboxed payloads: it may hold the token); null: none. */
  configFile: string | null;
  /** Watch this cloud's spot interruption notice as a deadline (resources/spot-notice.ts); null: none. */
  spotNotice: SpotNoticeKind | null;
  /** The instance metadata service's base URL (the spot notice is read there). */
  metadataUrl: string;
  /**
   * Drain this many seconds before the deadline (a batch job's end, MJF
   * shutdowntime, --lifetime), so that no new work starts that late; null:
   * 60 s before the deadline minus the grace.
   */
  drainBeforeSec: number | null;
  /** The id the server shows for this pilot (a cloud instance id); null: the batch job's id, when there is one. */
  externalId: string | null;
  /** Labels sent at registration (site, cloud, ...), shown by `vmpilot-server pilots`. */
  labels: Readonly<Record<string, string>>;
  /** GPUs to offer (0: none), whatever the allocation and probe say; null: found (docs/requirements.md). */
  gpus: number | null;
  /** Memory of each GPU offered, MiB; null: as probed (unknown for declared GPUs). */
  gpuMemoryMb: number | null;
  /** Architecture to declare, canonical (`x86_64-v3`: x86_64 at level 3); null: probed. */
  arch: string | null;
  /** OS platform to declare (`el9`); null: from os-release. */
  platform: string | null;
  /** The site this node is at; null: none. */
  site: string | null;
  /** Tags this node has (payloads' `tag` requirements). */
  tags: readonly string[];
  /** Scratch disk to offer, MiB; null: the site's scratch_limit_bytes, else the disk free under the state dir. */
  scratchMb: number | null;
}

/** What `--isolation` may say. */
export const ISOLATION_CHOICES = ['auto', 'bwrap', 'unshare', 'none'] as const;
export type IsolationChoice = (typeof ISOLATION_CHOICES)[number];

/** Keys a user can set (flags, env, config file). */
export type ConfigKey = Exclude<keyof AgentConfig, 'payloadBaseEnv' | 'batchEnv' | 'configFile'>;

/** A validator: turns a raw value into a typed one, or returns an error text "expected …". */
type Parse = (raw: unknown) => { ok: true; value: unknown } | { ok: false; expected: string };

const integer =
  (min: number, max: number, nullable = false): Parse =>
  (raw) => {
    if (nullable && (raw === null || raw === 'none' || raw === '')) return { ok: true, value: null };
    const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) return { ok: false, expected: `an integer from ${min} to ${max}` };
    return { ok: true, value: n };
  };

const text =
  (nullable: boolean, check?: (s: string) => string | null): Parse =>
  (raw) => {
    if (nullable && (raw === null || raw === undefined)) return { ok: true, value: null };
    if (typeof raw !== 'string' || raw.trim() === '') return { ok: false, expected: 'a non-empty string' };
    const problem = check?.(raw.trim());
    return problem ? { ok: false, expected: problem } : { ok: true, value: raw.trim() };
  };

const notHttp = (s: string): string | null => {
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:' ? null : 'an http:// or https:// URL';
  } catch {
    return 'an http:// or https:// URL';
  }
};

/** The server: an http(s) URL, or a mailbox on a shared filesystem (file:///DIR/NAME, docs/hpc.md). */
const serverUrl = text(true, (s) => {
  if (!s.startsWith('file:')) return notHttp(s) === null ? null : 'an http:// or https:// URL, or a mailbox file:///DIR/NAME';
  const m = parseMailboxUrl(s);
  return typeof m === 'string' ? m : null;
});

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

const LABEL_KEY = /^[A-Za-z0-9_.-]{1,100}$/;
/** The most bytes of JSON a registration's labels may take: what a server takes by default (its limits.labelBytes). */
const LABEL_BYTES = 4096;

/**
 * Labels: `KEY=VALUE` items (a list: `--label` repeated; or one string
 * separated by commas: VMPILOT_LABELS), or a mapping (the config file).
 * Keys of letters, digits, `_ . -`; values of printable text, at most 1000
 * characters; at most 64 labels and 4096 bytes of JSON in all (what the
 * server takes by default).
 */
const labels: Parse = (raw) => {
  const expected = 'labels KEY=VALUE (KEY of letters, digits, _ . -; at most 64), e.g. site=CERN-PROD';
  let entries: [string, unknown][];
  if (typeof raw === 'string') entries = raw.split(',').filter((t) => t.trim() !== '').map(splitLabel);
  else if (Array.isArray(raw)) entries = raw.map((t) => splitLabel(String(t)));
  else if (raw && typeof raw === 'object') entries = Object.entries(raw as Record<string, unknown>);
  else return { ok: false, expected };
  const out: Record<string, string> = {};
  for (const [k, v] of entries) {
    const value = typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v).trim() : null;
    if (!LABEL_KEY.test(k) || value === null || value.length > 1000 || /[\u0000-\u001f\u007f]/.test(value)) return { ok: false, expected };
    out[k] = value;
  }
  if (Object.keys(out).length > 64) return { ok: false, expected };
  // the server refuses more (its limits.labelBytes, 4096 by default): say so here, before anything starts
  const bytes = Buffer.byteLength(JSON.stringify(out));
  if (bytes > LABEL_BYTES) return { ok: false, expected: `labels of at most ${LABEL_BYTES} bytes of JSON in all (the server's limit), not ${bytes}: keep fewer or shorter labels` };
  return { ok: true, value: Object.freeze(out) };
};

function splitLabel(item: string): [string, unknown] {
  const at = item.indexOf('=');
  return at < 0 ? [item.trim(), null] : [item.slice(0, at).trim(), item.slice(at + 1)];
}
/** A value the requirement language checks (protocol/requirements.ts), as one or a list of names. */
const requirementValue =
  (key: 'site' | 'tag', one: boolean): Parse =>
  (raw) => {
    if (raw === null || raw === undefined) return { ok: true, value: one ? null : [] };
    try {
      const list = normaliseRequirement(key, raw) as string[];
      if (one && list.length !== 1) return { ok: false, expected: 'one site name' };
      return { ok: true, value: one ? list[0] : Object.freeze(list) };
    } catch (err) {
      if (err instanceof RequirementError) return { ok: false, expected: err.expected };
      throw err;
    }
  };

const arch = text(true, (s) => (parseArch(s) ? null : 'an architecture (x86_64, aarch64, …), x86_64 with a level -v1 to -v4 (x86_64-v3)'));
const platform = text(true, (s) => (parsePlatform(s)?.kind === 'exact' ? null : 'a platform name (el9, debian12, ubuntu22.04)'));

/** Parse a halt setting: "exit", "poweroff", or any other text as a shell command. */
export function parseHalt(raw: string): HaltAction {
  const t = raw.trim();
  if (t === 'exit') return { kind: 'exit' };
  if (t === 'poweroff') return { kind: 'poweroff' };
  return { kind: 'command', command: t };
}

/** One configuration key: how it is spelled in each source, its default and its validator. */
export interface KeySpec {
  key: ConfigKey;
  flag: string;
  env: string;
  default: unknown;
  parse: Parse;
}

/** Every key, in the order `--help` lists them. */
export const CONFIG_KEYS: readonly KeySpec[] = [
  { key: 'server', flag: '--server', env: 'VMPILOT_SERVER', default: null, parse: serverUrl },
  // no flag takes the token itself: a command line is visible to every process on the node
  { key: 'token', flag: '--token', env: 'VMPILOT_PILOT_TOKEN', default: null, parse: text(true) },
  { key: 'tokenFile', flag: '--token-file', env: 'VMPILOT_PILOT_TOKEN_FILE', default: null, parse: text(true) },
  { key: 'caFile', flag: '--ca-file', env: 'VMPILOT_CA_FILE', default: null, parse: text(true) },
  { key: 'cores', flag: '--cores', env: 'VMPILOT_CORES', default: null, parse: integer(1, LIMITS.cores, true) },
  {
    key: 'memoryMb',
    flag: '--memory-mb',
    env: 'VMPILOT_MEMORY_MB',
    default: null,
    parse: integer(1, LIMITS.memoryMb, true),
  },
  {
    key: 'idleTimeoutSec',
    flag: '--idle-timeout',
    env: 'VMPILOT_IDLE_TIMEOUT_SEC',
    default: 300,
    parse: integer(0, 30 * 86400),
  },
  {
    key: 'halt',
    flag: '--halt',
    env: 'VMPILOT_HALT',
    default: { kind: 'exit' },
    parse: (raw) => {
      const r = text(false)(raw);
      return r.ok ? { ok: true, value: parseHalt(r.value as string) } : { ok: false, expected: 'exit, poweroff or a shell command' };
    },
  },
  { key: 'stateDir', flag: '--state-dir', env: 'VMPILOT_STATE_DIR', default: '.vmpilot-state', parse: text(false) },
  { key: 'graceSec', flag: '--grace', env: 'VMPILOT_GRACE_SEC', default: 30, parse: integer(0, 3600) },
  {
    key: 'logLevel',
    flag: '--log-level',
    env: 'VMPILOT_LOG_LEVEL',
    default: 'info',
    parse: text(false, (s) => (LEVELS.includes(s) ? null : `one of ${LEVELS.join(', ')}`)),
  },
  {
    key: 'lifetimeSec',
    flag: '--lifetime',
    env: 'VMPILOT_LIFETIME_SEC',
    default: null,
    parse: integer(1, LIMITS.wallSec, true),
  },
  { key: 'machineFeatures', flag: '--machine-features', env: 'MACHINEFEATURES', default: null, parse: text(true) },
  { key: 'jobFeatures', flag: '--job-features', env: 'JOBFEATURES', default: null, parse: text(true) },
  {
    key: 'payloadUser',
    flag: '--payload-user',
    env: 'VMPILOT_PAYLOAD_USER',
    default: null,
    parse: text(true, (s) => (/^[a-z_][a-z0-9_.-]*\$?$|^\d+$/i.test(s) ? null : 'a user name or uid')),
  },
  {
    key: 'isolation',
    flag: '--isolation',
    env: 'VMPILOT_ISOLATION',
    default: 'auto',
    parse: text(false, (s) => ((ISOLATION_CHOICES as readonly string[]).includes(s) ? null : `one of ${ISOLATION_CHOICES.join(', ')}`)),
  },
  { key: 'starvationSec', flag: '--starvation', env: 'VMPILOT_STARVATION_SEC', default: 600, parse: integer(0, 30 * 86400) },
  { key: 'maxOutputMb', flag: '--max-output-mb', env: 'VMPILOT_MAX_OUTPUT_MB', default: 100, parse: integer(1, 1024 * 1024) },
  { key: 'minLifetimeSec', flag: '--min-lifetime', env: 'VMPILOT_MIN_LIFETIME_SEC', default: 0, parse: integer(0, 30 * 86400) },
  { key: 'orphanTimeoutSec', flag: '--orphan-timeout', env: 'VMPILOT_ORPHAN_TIMEOUT_SEC', default: 3600, parse: integer(0, 30 * 86400) },
  { key: 'drainFile', flag: '--drain-file', env: 'VMPILOT_DRAIN_FILE', default: '/var/lib/vmpilot/drain', parse: text(false) },
  { key: 'jobOutputs', flag: '--job-outputs', env: 'JOBOUTPUTS', default: null, parse: text(true) },
  { key: 'bootstrap', flag: '--bootstrap', env: 'VMPILOT_BOOTSTRAP', default: null, parse: text(true) },
  {
    key: 'spotNotice',
    flag: '--spot-notice',
    env: 'VMPILOT_SPOT_NOTICE',
    default: null,
    parse: (raw) => {
      if (raw === null || raw === 'none') return { ok: true, value: null };
      return typeof raw === 'string' && (SPOT_NOTICE_KINDS as readonly string[]).includes(raw.trim()) ? { ok: true, value: raw.trim() } : { ok: false, expected: `one of ${SPOT_NOTICE_KINDS.join(', ')} or none` };
    },
  },
  { key: 'drainBeforeSec', flag: '--drain-before', env: 'VMPILOT_DRAIN_BEFORE_SEC', default: null, parse: integer(0, LIMITS.wallSec, true) },
  {
    key: 'externalId',
    flag: '--external-id',
    env: 'VMPILOT_EXTERNAL_ID',
    default: null,
    parse: text(true, (s) => (s.length <= 255 && !/[\u0000-\u001f\u007f]/.test(s) ? null : 'up to 255 printable characters')),
  },
  { key: 'labels', flag: '--label', env: 'VMPILOT_LABELS', default: Object.freeze({}), parse: labels },
  {
    key: 'metadataUrl',
    flag: '--metadata-url',
    env: 'VMPILOT_METADATA_URL',
    default: AWS_METADATA_URL,
    parse: (raw) => {
      const r = text(true, notHttp)(raw);
      return r.ok && r.value === null ? { ok: false, expected: 'an http:// or https:// URL' } : r;
    },
  },
  { key: 'artifactsVia', flag: '--artifacts-via', env: 'VMPILOT_ARTIFACTS_VIA', default: null, parse: text(true, notHttp) },
  { key: 'gpus', flag: '--gpus', env: 'VMPILOT_GPUS', default: null, parse: integer(0, REQUIREMENT_LIMITS.gpus, true) },
  { key: 'gpuMemoryMb', flag: '--gpu-memory-mb', env: 'VMPILOT_GPU_MEMORY_MB', default: null, parse: integer(1, REQUIREMENT_LIMITS.gpuMemoryMb, true) },
  {
    key: 'arch',
    flag: '--arch',
    env: 'VMPILOT_ARCH',
    default: null,
    parse: (raw) => {
      const r = arch(raw);
      return r.ok && typeof r.value === 'string' ? { ok: true, value: formatArch(parseArch(r.value)!) } : r;
    },
  },
  {
    key: 'platform',
    flag: '--platform',
    env: 'VMPILOT_PLATFORM',
    default: null,
    parse: (raw) => {
      const r = platform(raw);
      return r.ok && typeof r.value === 'string' ? { ok: true, value: r.value.toLowerCase() } : r;
    },
  },
  { key: 'site', flag: '--site', env: 'VMPILOT_SITE', default: null, parse: requirementValue('site', true) },
  { key: 'tags', flag: '--tag', env: 'VMPILOT_TAGS', default: Object.freeze([]), parse: requirementValue('tag', false) },
  { key: 'scratchMb', flag: '--scratch-mb', env: 'VMPILOT_SCRATCH_MB', default: null, parse: integer(1, REQUIREMENT_LIMITS.scratchMb, true) },
];

/** Environment variables a payload inherits from the agent; nothing else (no tokens) leaks. */
export const PAYLOAD_ENV_KEYS: readonly string[] = [
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'LANG',
  'LC_ALL',
  'LC_CTYPE',
  'TZ',
  'TERM',
  'MACHINEFEATURES',
  'JOBFEATURES',
];
