/**
 * The options of `vmpilot relay`, checked once: every error names the flag,
 * the value and what was expected (VMP_USAGE), or the file that could not be
 * read (VMP_CONFIG). This is the only module of the relay that reads the
 * environment (VMPILOT_RELAY_TOKEN, VMPILOT_RELAY_TOKEN_FILE, HOME,
 * XDG_CACHE_HOME). The relay token never comes from a command line.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { VmpilotError, describeError } from '../shared/errors.js';
import { DEFAULT_SPOOL_POLL_MAX_MS } from './spool.js';

/** The checked options. */
export interface RelayOptions {
  server: URL;
  listen: { host: string; port: number } | null;
  /** `--tls-cert` and `--tls-key`: the listener speaks HTTPS. */
  tls: { cert: Buffer; key: Buffer } | null;
  /** `--cache-max-mb`, in bytes: the cache is pruned, least recently used first, beyond it. */
  cacheMaxBytes: number;
  spool: string | null;
  ca: Buffer | undefined;
  relayToken: string | null;
  cacheDir: string;
  outputs: URL | null;
  artifactsFrom: string[];
  callSockets: number;
  pollSockets: number;
  pollMs: number;
  /** The longest pause between looks into a quiet spool (at least pollMs). */
  pollMaxMs: number;
  logLevel: string;
}

const usage = (flag: string, value: unknown, expected: string) =>
  new VmpilotError('VMP_USAGE', `${flag} ${typeof value === 'string' ? `"${value}"` : String(value)}: expected ${expected}`);

function httpUrl(flag: string, value: string): URL {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw usage(flag, value, 'an http:// or https:// URL');
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username || u.password || u.hash) throw usage(flag, value, 'an http:// or https:// URL without user, password or fragment');
  return u;
}

function int(flag: string, value: unknown, def: number, min: number, max: number): number {
  if (value === undefined) return def;
  if (typeof value !== 'string' || !/^\d+$/.test(value.trim()) || Number(value) < min || Number(value) > max) throw usage(flag, value, `a whole number from ${min} to ${max}`);
  return Number(value);
}

/** HOST:PORT or [IPv6]:PORT. Pure. */
export function parseHostPort(flag: string, text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  const host = m?.[1] ?? m?.[2];
  if (!host || !(port >= 0 && port <= 65535)) throw usage(flag, text, 'HOST:PORT, e.g. 0.0.0.0:8081 or 10.1.0.5:8081 (port 0: any free port)');
  return { host, port };
}

function readText(what: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new VmpilotError('VMP_CONFIG', `${what} ${file} cannot be read: ${describeError(err)}`, { cause: err });
  }
}

/** Check `flags` (commander's parsed options) with `env`. */
export function relayOptions(flags: Record<string, unknown>, env: Record<string, string | undefined> = process.env): RelayOptions {
  if (flags.relayToken !== undefined) {
    throw new VmpilotError('VMP_USAGE', '--relay-token: a token on the command line is visible to every process on the node; use --relay-token-file FILE or VMPILOT_RELAY_TOKEN');
  }
  if (typeof flags.server !== 'string') throw new VmpilotError('VMP_USAGE', '--server URL is required: the vmpilot server the relay forwards to');
  const server = httpUrl('--server', flags.server);
  const listen = typeof flags.listen === 'string' ? parseHostPort('--listen', flags.listen) : null;
  const spool = typeof flags.spool === 'string' ? path.resolve(flags.spool) : null;
  if (!listen && !spool) throw new VmpilotError('VMP_USAGE', 'give --listen HOST:PORT (agents reach the relay over HTTP), --spool DIR (mailboxes on a shared filesystem), or both');
  if ((typeof flags.tlsCert === 'string') !== (typeof flags.tlsKey === 'string')) {
    throw new VmpilotError('VMP_USAGE', `${typeof flags.tlsCert === 'string' ? '--tls-key' : '--tls-cert'} is missing: --tls-cert and --tls-key go together (the certificate chain and its private key, PEM)`);
  }
  if (typeof flags.tlsCert === 'string' && !listen) throw new VmpilotError('VMP_USAGE', '--tls-cert is for the --listen side: give --listen HOST:PORT too');
  const tls = typeof flags.tlsCert === 'string' ? { cert: readText('--tls-cert', flags.tlsCert), key: readText('--tls-key', flags.tlsKey as string) } : null;
  const tokenFile = (flags.relayTokenFile as string | undefined) ?? env.VMPILOT_RELAY_TOKEN_FILE;
  let relayToken = env.VMPILOT_RELAY_TOKEN?.trim() || null;
  if (tokenFile) {
    relayToken = readText('relay token file', tokenFile).toString('utf8').trim();
    if (!/^[A-Za-z0-9._~+/=-]{16,512}$/.test(relayToken)) throw new VmpilotError('VMP_CONFIG', `relay token file ${tokenFile}: expected the token alone on one line (16 to 512 characters of A-Z a-z 0-9 . _ ~ + / = -)`);
  }
  const home = env.HOME ?? '/tmp';
  const cacheDir = path.resolve((flags.cacheDir as string | undefined) ?? path.join(env.XDG_CACHE_HOME || path.join(home, '.cache'), 'vmpilot-relay'));
  const artifactsFrom = ((flags.artifactsFrom as string[] | undefined) ?? []).map((p) => httpUrl('--artifacts-from', p).href);
  const logLevel = (flags.logLevel as string | undefined) ?? 'info';
  const pollMs = int('--poll-ms', flags.pollMs, 200, 10, 60_000);
  const pollMaxMs = int('--poll-max-ms', flags.pollMaxMs, Math.max(pollMs, DEFAULT_SPOOL_POLL_MAX_MS), 10, 600_000);
  if (pollMaxMs < pollMs) throw new VmpilotError('VMP_USAGE', `--poll-max-ms ${pollMaxMs} is less than --poll-ms ${pollMs}: the longest pause cannot be shorter than the shortest`);
  return {
    server,
    listen,
    tls,
    cacheMaxBytes: int('--cache-max-mb', flags.cacheMaxMb, 4096, 1, 10_000_000) * 1024 * 1024,
    spool,
    ca: typeof flags.caFile === 'string' ? readText('--ca-file', flags.caFile) : undefined,
    relayToken,
    cacheDir,
    outputs: typeof flags.outputs === 'string' ? httpUrl('--outputs', flags.outputs) : null,
    artifactsFrom,
    callSockets: int('--connections', flags.connections, 16, 1, 1024),
    pollSockets: int('--poll-connections', flags.pollConnections, 1024, 1, 100_000),
    pollMs,
    pollMaxMs,
    logLevel,
  };
}
