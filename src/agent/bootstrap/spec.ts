/**
 * What the bootstrap is asked to do, from the YAML file given with
 * `--bootstrap FILE` (or VMPILOT_BOOTSTRAP, or `bootstrap` in the config):
 *
 * ```yaml
 * check:    { minDiskMb: 2000, minMemoryMb: 1000, paths: [/cvmfs/atlas.cern.ch] }
 * software:
 *   - url: https://example.org/tool-1.2.tar.gz
 *     sha256: 3f9c…                 # 64 hex digits, checked before use
 *     dest: tool                    # relative to <state-dir>/software, or absolute
 *     unpack: true                  # a (gzip) tar: unpacked safely
 * env:      { TOOL_HOME: /var/lib/vmpilot/software/tool }
 * setup:    ["tool/bin/selftest --quick"]
 * cacheDir: /var/cache/vmpilot      # shared by the agents of a node (default ~/.cache/vmpilot/artifacts; as root /var/cache/vmpilot/artifacts)
 * ```
 *
 * Parsed and checked once; a bad value is VMP_CONFIG naming the key.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { VmpilotError } from '../../shared/errors.js';

/** One software artifact. */
export interface Artifact {
  url: string;
  sha256: string;
  /** Absolute path where it is linked (a directory when unpacked). */
  dest: string;
  unpack: boolean;
}

/** The checked bootstrap spec. */
export interface BootstrapSpec {
  check: { minDiskMb: number; minMemoryMb: number; paths: string[] };
  software: Artifact[];
  env: Record<string, string>;
  setup: string[];
  /** Absolute path of the artifact cache. */
  cacheDir: string;
  /** Seconds one setup command may take. */
  setupTimeoutSec: number;
}

const KEYS = ['check', 'software', 'env', 'setup', 'cacheDir', 'setupTimeoutSec'];

/** Check a parsed document; `where` names the file in errors; relative paths resolve against `softwareDir`. */
export function checkSpec(doc: unknown, where: string, softwareDir: string, defaultCacheDir: string): BootstrapSpec {
  const bad = (key: string, expected: string) => new VmpilotError('VMP_CONFIG', `bootstrap ${where}: ${key}: expected ${expected}`);
  if (doc === null || doc === undefined) doc = {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw bad('(top)', 'a mapping with keys ' + KEYS.join(', '));
  const d = doc as Record<string, unknown>;
  for (const k of Object.keys(d)) if (!KEYS.includes(k)) throw bad(k, `one of the keys ${KEYS.join(', ')}`);
  const int = (key: string, v: unknown, dflt: number) => {
    if (v === undefined) return dflt;
    if (!Number.isInteger(v) || (v as number) < 0) throw bad(key, 'a whole number ≥ 0');
    return v as number;
  };
  const c = (d.check ?? {}) as Record<string, unknown>;
  if (typeof c !== 'object' || Array.isArray(c)) throw bad('check', 'a mapping of minDiskMb, minMemoryMb, paths');
  for (const k of Object.keys(c)) if (!['minDiskMb', 'minMemoryMb', 'paths'].includes(k)) throw bad(`check.${k}`, 'one of minDiskMb, minMemoryMb, paths');
  const paths = c.paths ?? [];
  if (!Array.isArray(paths) || !paths.every((p) => typeof p === 'string' && path.isAbsolute(p))) throw bad('check.paths', 'a list of absolute paths');
  const software = d.software ?? [];
  if (!Array.isArray(software)) throw bad('software', 'a list of {url, sha256, dest, unpack}');
  const artifacts = software.map((raw: unknown, i): Artifact => {
    const a = (raw ?? {}) as Record<string, unknown>;
    const key = (k: string) => `software[${i}].${k}`;
    for (const k of Object.keys(a)) if (!['url', 'sha256', 'dest', 'unpack'].includes(k)) throw bad(key(k), 'one of url, sha256, dest, unpack');
    let url: URL;
    try {
      url = new URL(String(a.url));
    } catch {
      throw bad(key('url'), 'an http(s) or file URL');
    }
    if (!['http:', 'https:', 'file:'].includes(url.protocol)) throw bad(key('url'), 'an http(s) or file URL');
    if (typeof a.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(a.sha256)) throw bad(key('sha256'), '64 lower-case hex digits');
    if (typeof a.dest !== 'string' || a.dest === '' || (!path.isAbsolute(a.dest) && a.dest.split(/[\\/]/).includes('..'))) {
      throw bad(key('dest'), 'an absolute path, or a relative one without ".."');
    }
    if (a.unpack !== undefined && typeof a.unpack !== 'boolean') throw bad(key('unpack'), 'true or false');
    return { url: url.href, sha256: a.sha256, dest: path.resolve(softwareDir, a.dest), unpack: a.unpack === true };
  });
  const env = d.env ?? {};
  if (typeof env !== 'object' || Array.isArray(env)) throw bad('env', 'a mapping of NAME: value');
  for (const [k, v] of Object.entries(env as Record<string, unknown>)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw bad(`env.${k}`, 'a variable name of letters, digits and _');
    if (typeof v !== 'string' && typeof v !== 'number') throw bad(`env.${k}`, 'a string');
  }
  const setup = d.setup ?? [];
  if (!Array.isArray(setup) || !setup.every((s) => typeof s === 'string' && s.trim() !== '')) throw bad('setup', 'a list of shell commands');
  const cacheDir = d.cacheDir ?? defaultCacheDir;
  if (typeof cacheDir !== 'string' || !path.isAbsolute(cacheDir)) throw bad('cacheDir', 'an absolute path');
  return {
    check: { minDiskMb: int('check.minDiskMb', c.minDiskMb, 0), minMemoryMb: int('check.minMemoryMb', c.minMemoryMb, 0), paths: paths as string[] },
    software: artifacts,
    env: Object.fromEntries(Object.entries(env as Record<string, string | number>).map(([k, v]) => [k, String(v)])),
    setup: setup as string[],
    cacheDir,
    setupTimeoutSec: int('setupTimeoutSec', d.setupTimeoutSec, 600),
  };
}

/** Read and check the bootstrap file. */
export function readSpec(file: string, softwareDir: string, defaultCacheDir: string): BootstrapSpec {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new VmpilotError('VMP_CONFIG', `bootstrap ${file} cannot be read: ${(err as Error).message}`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new VmpilotError('VMP_CONFIG', `bootstrap ${file} is not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  return checkSpec(doc, file, softwareDir, defaultCacheDir);
}
