/**
 * `vmpilot-server serve`: open the store, resolve the tokens, listen, and
 * run until SIGTERM or SIGINT; then answer waiting matches, stop, close the
 * database and return (exit status 0).
 *
 * stdout contract: the first line is exactly
 * `vmpilot-server listening on http://HOST:PORT` (the real port when 0 was
 * asked); then, only for tokens generated now, `admin token: T` and
 * `pilot token: T`. Logs go to stderr as pino JSON.
 */
import type { AddressInfo } from 'node:net';
import { systemClock, type Clock } from '../shared/clock.js';
import { VmpilotError, describeError } from '../shared/errors.js';
import { createLogger } from '../shared/log.js';
import { LIMITS } from '../protocol/index.js';
import { buildApp } from './api/app.js';
import { openSqliteStore } from './store/sqlite.js';
import { resolveTokens, type GivenTokens } from './tokens.js';

/** What `serve` is told, after the command line and environment are read. */
export interface ServeOptions {
  listen: string;
  db: string;
  tokens: GivenTokens;
  heartbeatIntervalSec: number;
  matchWaitMaxSec: number;
  logLevel: string;
}

/** Where to listen. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** Parse HOST:PORT (or [IPv6]:PORT); throws VMP_USAGE naming --listen. */
export function parseListen(text: string): ListenAddress {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  const host = m?.[1] ?? m?.[2];
  if (!host || !(port >= 0 && port <= 65535)) {
    throw new VmpilotError('VMP_USAGE', `--listen "${text}" is not HOST:PORT (e.g. 127.0.0.1:8080, 0.0.0.0:0, [::1]:8080)`);
  }
  return { host, port };
}

/** Check the numeric options; throws VMP_USAGE naming the flag. */
export function checkServeOptions(o: ServeOptions): void {
  if (!Number.isInteger(o.heartbeatIntervalSec) || o.heartbeatIntervalSec < 1 || o.heartbeatIntervalSec > 86400) {
    throw new VmpilotError('VMP_USAGE', `--heartbeat-interval must be whole seconds from 1 to 86400, not ${o.heartbeatIntervalSec}`);
  }
  if (!(o.matchWaitMaxSec >= 0 && o.matchWaitMaxSec <= LIMITS.waitSec)) {
    throw new VmpilotError('VMP_USAGE', `--match-wait-max must be seconds from 0 to ${LIMITS.waitSec}, not ${o.matchWaitMaxSec}`);
  }
}

/** Run the server until a signal; resolves when it has stopped cleanly. */
export async function serve(o: ServeOptions, write = (line: string) => process.stdout.write(`${line}\n`), clock: Clock = systemClock): Promise<void> {
  const address = parseListen(o.listen);
  checkServeOptions(o);
  const log = createLogger({ level: o.logLevel, base: { role: 'server' } });
  const store = openSqliteStore(o.db);
  let app: ReturnType<typeof buildApp> | undefined;
  try {
    const tokens = await resolveTokens(store, o.tokens);
    app = buildApp({
      store,
      clock,
      log,
      tokens: tokens.hashes,
      heartbeatIntervalSec: o.heartbeatIntervalSec,
      matchWaitMaxSec: o.matchWaitMaxSec,
    });
    try {
      await app.listen({ host: address.host, port: address.port });
    } catch (err) {
      throw new VmpilotError('VMP_LISTEN', `cannot listen on ${o.listen}: ${listenReason(err)}`, { cause: err });
    }
    const port = (app.server.address() as AddressInfo).port;
    const host = address.host.includes(':') ? `[${address.host}]` : address.host;
    write(`vmpilot-server listening on http://${host}:${port}`);
    if (tokens.generated.admin) write(`admin token: ${tokens.generated.admin}`);
    if (tokens.generated.pilot) write(`pilot token: ${tokens.generated.pilot}`);
    log.info({ host: address.host, port, db: o.db, queued: await store.queuedCount() }, 'server started');
    const signal = await untilSignal();
    log.info({ signal }, 'stopping');
  } finally {
    await app?.close();
    await store.close();
  }
  log.info('stopped');
}

function listenReason(err: unknown): string {
  const code = (err as { code?: string }).code;
  if (code === 'EADDRINUSE') return 'the address is already in use';
  if (code === 'EACCES') return 'permission denied (ports below 1024 need privileges)';
  if (code === 'EADDRNOTAVAIL') return 'no such address on this host';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the host name does not resolve';
  return describeError(err);
}

function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      resolve(signal);
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
}
