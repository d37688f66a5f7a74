/**
 * The requirement language: what a payload needs of the node it runs on,
 * beyond cores, memory and wall time. It is a set of keys, each with one
 * fixed meaning and value syntax, and no expressions: a value is a number
 * (at least), a list (any of, none of, or all of, by key) or a list of
 * names with an optional comparison (`x86_64-v3`: that level or higher;
 * `el>=9`: that version or newer). docs/requirements.md is the reference.
 *
 * | key           | value                     | met by a node that                              |
 * |---------------|---------------------------|-------------------------------------------------|
 * | `gpus`        | N                         | has N GPUs free for it (counted like cores)     |
 * | `gpuMemoryMb` | M (needs `gpus`)          | gives it GPUs of at least M MiB each            |
 * | `arch`        | ARCH[-vL], …              | has one of these architectures (and level ≥ L)  |
 * | `platform`    | NAME, NAME>=V, NAME<=V, … | runs one of these OS platforms                  |
 * | `site`        | SITE, …                   | is at one of these sites                        |
 * | `notSite`     | SITE, …                   | is at none of these sites                       |
 * | `tag`         | TAG, …                    | has every one of these tags                     |
 * | `scratchMb`   | M                         | has M MiB of scratch disk free for it           |
 *
 * Pure; shared by the admin CLI (flags and submit files), the server (it
 * normalises what it is sent before storing it) and the agent (it checks
 * what it is handed). Matching is in requirement-match.ts.
 */

/** What a payload needs of its node. Every key is optional; none means "any node". */
export interface Requirements {
  /** GPUs it needs, counted like cores: never two payloads on one device. */
  gpus?: number;
  /** Memory each of its GPUs must have, MiB. Only with `gpus`. */
  gpuMemoryMb?: number;
  /** Any of these architectures, canonical (`x86_64`, `x86_64-v3`, `aarch64`). */
  arch?: string[];
  /** Any of these OS platforms: `el9`, or a comparison `el>=9`, `ubuntu<=22.04`. */
  platform?: string[];
  /** Any of these sites. */
  site?: string[];
  /** None of these sites. */
  notSite?: string[];
  /** Every one of these tags. */
  tag?: string[];
  /** Scratch disk it needs, MiB, counted like memory. */
  scratchMb?: number;
}

/** One GPU of a node. */
export interface GpuInfo {
  /** Its id as a payload gets it in CUDA_VISIBLE_DEVICES: an index ("0") or a UUID ("GPU-…"), as the node's allocation names it. */
  id: string;
  model?: string | null;
  /** Its memory, MiB; null or absent: unknown (it then meets no `gpuMemoryMb`). */
  memoryMb?: number | null;
}

/**
 * What a node is and has beyond cores and memory, as its agent reports it
 * (docs/requirements.md says where each comes from). Every field is
 * optional: absent or null means unknown, which meets no requirement.
 */
export interface Capabilities {
  /** `x86_64`, `aarch64`, … (the kernel's machine name, canonical). */
  arch?: string | null;
  /** The x86-64 micro-architecture level, 1 to 4; null elsewhere. */
  cpuLevel?: number | null;
  /** The OS platform, normalised: `el9`, `debian12`, `ubuntu22.04`. */
  platform?: string | null;
  site?: string | null;
  tags?: string[];
  /** The GPUs the agent may give its payloads. */
  gpus?: GpuInfo[];
  /** Scratch disk the agent may give its payloads, MiB. */
  scratchMb?: number | null;
}

/** The requirement keys, in the order they are checked and shown. */
export const REQUIREMENT_KEYS = ['arch', 'platform', 'site', 'notSite', 'tag', 'gpus', 'gpuMemoryMb', 'scratchMb'] as const;
export type RequirementKey = (typeof REQUIREMENT_KEYS)[number];

/** Bounds on requirement values. */
export const REQUIREMENT_LIMITS = {
  gpus: 64,
  gpuMemoryMb: 64 * 1024 * 1024,
  scratchMb: 2 ** 40,
  listEntries: 32,
  nameLength: 100,
} as const;

/** A value that does not fit its key: which key, the value as given, and what was expected. */
export class RequirementError extends RangeError {
  constructor(
    readonly key: string,
    readonly value: unknown,
    readonly expected: string,
  ) {
    super(`${key} ${show(value)}: expected ${expected}`);
    this.name = 'RequirementError';
  }
}

function show(v: unknown): string {
  return typeof v === 'string' ? `"${v}"` : JSON.stringify(v) ?? String(v);
}

/** An architecture and, for x86-64, the micro-architecture level asked for (null: any level). */
export interface ArchSpec {
  arch: string;
  level: number | null;
}

const ARCH_ALIASES: Readonly<Record<string, string>> = { 'x86-64': 'x86_64', amd64: 'x86_64', x64: 'x86_64', arm64: 'aarch64' };

/**
 * Parse an architecture as users and kernels write it: `x86_64`, `x86-64`
 * or `amd64` (the same), with an optional x86-64 level `-v1` to `-v4`
 * (`x86_64-v3`: level 3 or higher, as the x86-64 psABI defines them);
 * `aarch64` or `arm64`; any other plain name (`ppc64le`, `s390x`,
 * `riscv64`) as it is. Null when it is none of these.
 */
export function parseArch(text: string): ArchSpec | null {
  const t = text.trim().toLowerCase();
  const m = /^([a-z][a-z0-9_-]*?)(?:-v([0-9]+))?$/.exec(t);
  if (!m) return null;
  const arch = ARCH_ALIASES[m[1]!] ?? m[1]!;
  if (m[2] === undefined) return /^[a-z][a-z0-9_]*$/.test(arch) ? { arch, level: null } : null;
  const level = Number(m[2]);
  return arch === 'x86_64' && level >= 1 && level <= 4 ? { arch, level } : null;
}

/** The canonical spelling of an architecture spec: `x86_64-v3`, `aarch64`. */
export function formatArch(a: ArchSpec): string {
  return a.level === null ? a.arch : `${a.arch}-v${a.level}`;
}

/** A platform asked for: exactly `name`, or a family with a version comparison. */
export type PlatformSpec = { kind: 'exact'; name: string } | { kind: 'compare'; family: string; op: '>=' | '<='; version: number[] };

const PLATFORM_NAME = /^[a-z][a-z0-9.+_-]*$/;
const VERSION = /^[0-9]+(?:\.[0-9]+)*$/;

/** Split a platform name into family and version (`el9` → el, [9]; `ubuntu22.04` → ubuntu, [22, 4]), or null when it has no version. */
export function splitPlatform(name: string): { family: string; version: number[] } | null {
  const m = /^([a-z][a-z_-]*?)([0-9]+(?:\.[0-9]+)*)$/.exec(name);
  return m ? { family: m[1]!, version: m[2]!.split('.').map(Number) } : null;
}

/** Parse `el9`, `debian12`, `ubuntu22.04` (exact) or `el>=9`, `ubuntu<=22.04` (a comparison); null when it is neither. */
export function parsePlatform(text: string): PlatformSpec | null {
  const t = text.trim().toLowerCase();
  const m = /^([a-z][a-z_-]*?)\s*(>=|<=)\s*([0-9.]+)$/.exec(t);
  if (m) return VERSION.test(m[3]!) ? { kind: 'compare', family: m[1]!, op: m[2] as '>=' | '<=', version: m[3]!.split('.').map(Number) } : null;
  return PLATFORM_NAME.test(t) && t.length <= REQUIREMENT_LIMITS.nameLength ? { kind: 'exact', name: t } : null;
}

/** The canonical spelling of a platform spec. */
export function formatPlatform(p: PlatformSpec): string {
  return p.kind === 'exact' ? p.name : `${p.family}${p.op}${p.version.join('.')}`;
}

const SITE = /^[A-Za-z0-9_.-]+$/;
const TAG = /^[A-Za-z0-9_.:+-]+$/;

/** The entries of a list value: an array, or one string of comma-separated entries; trimmed, empty ones dropped, duplicates once. */
function entries(key: string, raw: unknown): string[] {
  const parts = typeof raw === 'string' ? raw.split(',') : Array.isArray(raw) && raw.every((x) => typeof x === 'string' || typeof x === 'number') ? raw.flatMap((x) => String(x).split(',')) : null;
  if (parts === null) throw new RequirementError(key, raw, 'a list of names, or one string of names separated by commas');
  const list = [...new Set(parts.map((s) => s.trim()).filter(Boolean))];
  if (list.length === 0) throw new RequirementError(key, raw, 'at least one name');
  if (list.length > REQUIREMENT_LIMITS.listEntries) throw new RequirementError(key, raw, `at most ${REQUIREMENT_LIMITS.listEntries} names`);
  return list;
}

/** A whole number in [min, max] from a number or a string of digits. */
function whole(key: string, raw: unknown, min: number, max: number): number {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new RequirementError(key, raw, `a whole number from ${min} to ${max}`);
  return n;
}

function names(key: string, raw: unknown, re: RegExp, what: string): string[] {
  return entries(key, raw).map((s) => {
    if (!re.test(s) || s.length > REQUIREMENT_LIMITS.nameLength) throw new RequirementError(key, s, `${what} (letters, digits and ${re === SITE ? '_ . -' : '_ . : + -'}, at most ${REQUIREMENT_LIMITS.nameLength})`);
    return s;
  });
}

/**
 * One key's value in canonical form, from what a user or a client wrote:
 * a number or a string of digits for the counts, a list or a
 * comma-separated string for the lists. Throws RequirementError naming the
 * key, the value and what was expected.
 */
export function normaliseRequirement<K extends RequirementKey>(key: K, raw: unknown): Requirements[K] {
  switch (key) {
    case 'gpus':
      return whole(key, raw, 0, REQUIREMENT_LIMITS.gpus) as Requirements[K];
    case 'gpuMemoryMb':
      return whole(key, raw, 1, REQUIREMENT_LIMITS.gpuMemoryMb) as Requirements[K];
    case 'scratchMb':
      return whole(key, raw, 1, REQUIREMENT_LIMITS.scratchMb) as Requirements[K];
    case 'arch':
      // aliases (amd64, arm64) become one spelling: duplicates are dropped after that
      return [
        ...new Set(
          entries(key, raw).map((s) => {
            const a = parseArch(s);
            if (!a) throw new RequirementError(key, s, 'an architecture (x86_64, aarch64, ppc64le, …), x86_64 with a level -v1 to -v4 (x86_64-v3)');
            return formatArch(a);
          }),
        ),
      ] as Requirements[K];
    case 'platform':
      return [
        ...new Set(
          entries(key, raw).map((s) => {
            const p = parsePlatform(s);
            if (!p) throw new RequirementError(key, s, 'a platform (el9, debian12, ubuntu22.04) or a comparison (el>=9, ubuntu<=22.04)');
            return formatPlatform(p);
          }),
        ),
      ] as Requirements[K];
    case 'site':
    case 'notSite':
      return names(key, raw, SITE, 'site names') as Requirements[K];
    case 'tag':
      return names(key, raw, TAG, 'tags') as Requirements[K];
  }
  throw new RequirementError(String(key), raw, `one of the keys ${REQUIREMENT_KEYS.join(', ')}`);
}

/**
 * Requirements in canonical form from a mapping of keys to values (a
 * submit file's entry, the admin CLI's flags, or a SubmitRequest's
 * `requirements`): architectures spelt one way, duplicates dropped,
 * `gpus: 0` left out. Throws RequirementError for an unknown key, a bad
 * value, or `gpuMemoryMb` without `gpus`. Null or an empty mapping gives {}.
 */
export function normaliseRequirements(raw: unknown): Requirements {
  if (raw === null || raw === undefined) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new RequirementError('requirements', raw, `a mapping of ${REQUIREMENT_KEYS.join(', ')}`);
  const out: Requirements = {};
  for (const [key, value] of Object.entries(raw)) {
    if (!(REQUIREMENT_KEYS as readonly string[]).includes(key)) throw new RequirementError(key, value, `one of the requirement keys ${REQUIREMENT_KEYS.join(', ')}`);
    if (value === undefined || value === null) continue;
    (out as Record<string, unknown>)[key] = normaliseRequirement(key as RequirementKey, value);
  }
  if (out.gpus === 0) delete out.gpus;
  if (out.gpuMemoryMb !== undefined && out.gpus === undefined) throw new RequirementError('gpuMemoryMb', out.gpuMemoryMb, 'gpus as well (the memory of each GPU asked for)');
  // one order, so that equal requirements are stored and shown alike
  return Object.fromEntries(REQUIREMENT_KEYS.filter((k) => out[k] !== undefined).map((k) => [k, out[k]])) as Requirements;
}

/** True when `r` asks for nothing. */
export function noRequirements(r: Requirements | null | undefined): boolean {
  if (!r) return true;
  for (const k of REQUIREMENT_KEYS) if (r[k] !== undefined) return false;
  return true;
}

/** Requirements as one line, `key=value` separated by spaces, lists by commas: `gpus=2 arch=x86_64-v3,aarch64`; "-" for none. */
export function formatRequirements(r: Requirements | null | undefined): string {
  if (noRequirements(r)) return '-';
  return REQUIREMENT_KEYS.filter((k) => r![k] !== undefined)
    .map((k) => {
      const v = r![k]!;
      return `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`;
    })
    .join(' ');
}
