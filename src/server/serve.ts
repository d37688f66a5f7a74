/**
 * `vmpilot-server serve`: open the store, resolve the tokens, listen, and
 * run until SIGTERM or SIGINT; then answer waiting matches, stop, close the
 * database and return (exit status 0).
 *
 * stdout contract: the first line is exactly
 * `vmpilot-server listening on http://HOST:PORT` (`https://` with
 * --tls-cert/--tls-key; the real port when 0 was asked); then, only for
 * tokens generated now, `admin token: T` and `pilot token: T`. Logs go to
 * stderr as pino JSON. `--db` names a SQLite file, or a PostgreSQL database
 * as a postgres:// (postgresql://) URL (store/pg.ts). With `endpoints:` in --config the director runs
 * (director/wiring.ts). The stall sweeper and the director run on the leader
 * only (leader.ts): on PostgreSQL the replica holding the leader lock
 * (store/pg-leader.ts), on SQLite always this server; the campaign starts
 * after listening and is closed first on a signal.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { systemClock, type Clock } from '../shared/clock.js';
import { VmpilotError, describeError } from '../shared/errors.js';
import { createServerLogger } from './log.js';
import { LIMITS } from '../protocol/index.js';
import { buildApp } from './api/app.js';
import { Waiters } from './api/waiters.js';
import { PgNotifier } from './api/pg-notifier.js';
import { pgWakeConnect } from './store/pg-wake-connection.js';
import { wakeupsOf } from './wakeup-options.js';
import { DEFAULT_SERVER_CONFIG, loadServerConfig, type ServerConfig } from './config.js';
import { instanceCounts, localServerUrl, makeDirector } from './director/wiring.js';
import type { Director } from './director/loop.js';
import { ServerMetrics } from './metrics/server-metrics.js';
import { ALWAYS_LEADER, Leadership, singletonDuties } from './leader.js';
import { fairSharePicker } from './queue/pick.js';
import { pgLeaderLock } from './store/pg-leader.js';
import { isPostgresUrl, openPgStore, redactedUrl } from './store/pg.js';
import { openSqliteStore } from './store/sqlite.js';
import type { Store, StorePolicy } from './store/store.js';
import { Sweeper } from './sweeper.js';
import { resolveTokens, type GivenTokens } from './tokens.js';

/** What `serve` is told, after the command line and environment are read. */
export interface ServeOptions {
  listen: string;
  /** A SQLite file, or a postgres:// (postgresql://) URL. */
  db: string;
  /** With PostgreSQL: at most this many connections (default pg-sql.ts DEFAULT_POOL_SIZE). */
  dbPoolSize?: number | undefined;
  /** With PostgreSQL: how wake-ups reach the other servers (--db-wakeups; default listen; api/pg-notifier.ts). */
  dbWakeups?: string | undefined;
  /** With PostgreSQL: every waiter is woken this often (--db-poll-ms; default DEFAULT_POLL_MS of the mode). */
  dbPollMs?: number | undefined;
  tokens: GivenTokens;
  heartbeatIntervalSec: number;
  matchWaitMaxSec: number;
  logLevel: string;
  /** YAML file with groups and shares and the queue's policies (see config.ts). */
  configFile?: string | undefined;
  /** PEM certificate (chain) and key: serve HTTPS. */
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  /** Overrides the file's stallAfterSec. */
  stallAfterSec?: number | undefined;
  /** The environment the director's local agents start with (director/wiring.ts agentBaseEnv; default: a PATH only). */
  agentEnv?: Readonly<Record<string, string>>;
}

/** The TLS material, read from the files; throws VMP_USAGE/VMP_CONFIG naming the flag. */
export function readTls(o: Pick<ServeOptions, 'tlsCert' | 'tlsKey'>): { cert: Buffer; key: Buffer } | null {
  if (!o.tlsCert && !o.tlsKey) return null;
  if (!o.tlsCert || !o.tlsKey) throw new VmpilotError('VMP_USAGE', '--tls-cert and --tls-key go together: give both, or neither');
  const read = (flag: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new VmpilotError('VMP_CONFIG', `cannot read ${flag} ${file}: ${describeError(err)}`, { cause: err });
    }
  };
  return { cert: read('--tls-cert', o.tlsCert), key: read('--tls-key', o.tlsKey) };
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
  wakeupsOf(o);
}

/** Run the server until a signal; resolves when it has stopped cleanly. */
export async function serve(o: ServeOptions, write = (line: string) => process.stdout.write(`${line}\n`), clock: Clock = systemClock): Promise<void> {
  const address = parseListen(o.listen);
  checkServeOptions(o);
  const config: ServerConfig = o.configFile ? loadServerConfig(o.configFile) : DEFAULT_SERVER_CONFIG;
  const tls = readTls(o);
  const stallAfterSec = o.stallAfterSec ?? config.stallAfterSec;
  const log = createServerLogger({ level: o.logLevel, base: { role: 'server' } });
  const store = await openStore(o, { maxAttempts: config.maxAttempts, usageHalfLifeSec: config.usageHalfLifeSec, clock });
  let app: ReturnType<typeof buildApp> | undefined;
  let leadership: Leadership | undefined;
  let director: Director | null = null;
  let wakeups: PgNotifier | null = null;
  try {
    const tokens = await resolveTokens(store, o.tokens);
    const metrics = new ServerMetrics();
    // on PostgreSQL, wake-ups reach the other servers of the database too (api/pg-notifier.ts)
    const crossing = wakeupsOf(o);
    wakeups = crossing && new PgNotifier({ ...crossing, clock, log: log.child({ role: 'wake-ups' }), connect: pgWakeConnect(o.db) });
    await wakeups?.start();
    const notifier = wakeups ?? new Waiters(clock);
    // with endpoints: the director (director/wiring.ts), started once the server listens and its URL is known
    let url = '';
    const elected = isPostgresUrl(o.db);
    director = await makeDirector({ store, clock, log, config, elected, serverUrl: () => localServerUrl(url), baseEnv: o.agentEnv ?? { PATH: '/usr/local/bin:/usr/bin:/bin' } });
    app = buildApp({
      store,
      clock,
      log,
      tokens: tokens.hashes,
      heartbeatIntervalSec: o.heartbeatIntervalSec,
      matchWaitMaxSec: o.matchWaitMaxSec,
      leaseSec: stallAfterSec,
      credentialTtlSec: config.credentialTtlSec,
      picker: fairSharePicker(config.shares, config.defaultShare, config.requireIsolation),
      shares: config.shares,
      defaultShare: config.defaultShare,
      isolationPolicy: config.requireIsolation,
      usageHalfLifeSec: config.usageHalfLifeSec,
      metrics,
      notifier,
      limits: config.limits,
      relays: config.relays,
      director,
      endpoints: config.endpoints,
      ...(director ? { instanceCounts: () => instanceCounts(store) } : {}),
      ...(tls ? { https: tls } : {}),
    });
    // the singletons, on the leader only: a new sweeper each time this server becomes the leader
    const sweeper = () => new Sweeper({ store, clock, log, stallAfterSec, metrics, onRequeued: () => notifier.wakeAll() });
    leadership = new Leadership({ lock: elected ? pgLeaderLock(o.db) : ALWAYS_LEADER, clock, log, duties: singletonDuties(sweeper, director), onChange: (leader) => (metrics.leader = leader) });
    try {
      await app.listen({ host: address.host, port: address.port });
    } catch (err) {
      throw new VmpilotError('VMP_LISTEN', `cannot listen on ${o.listen}: ${listenReason(err)}`, { cause: err });
    }
    const port = (app.server.address() as AddressInfo).port;
    const host = address.host.includes(':') ? `[${address.host}]` : address.host;
    url = `${tls ? 'https' : 'http'}://${host}:${port}`;
    write(`vmpilot-server listening on ${url}`);
    if (tokens.generated.admin) write(`admin token: ${tokens.generated.admin}`);
    if (tokens.generated.pilot) write(`pilot token: ${tokens.generated.pilot}`);
    leadership.start();
    const shares = Object.fromEntries(config.shares);
    log.info({ host: address.host, port, db: isPostgresUrl(o.db) ? redactedUrl(o.db) : o.db, tls: tls !== null, ...(crossing ? { wakeups: crossing } : {}), queued: await store.queuedCount(), shares, stallAfterSec, limits: config.limits }, 'server started');
    const signal = await untilSignal();
    log.info({ signal }, 'stopping');
  } finally {
    // drivers closed, machines keep running: the next start reconciles them
    await leadership?.close();
    await director?.close();
    await app?.close();
    await wakeups?.close();
    await store.close();
  }
  log.info('stopped');
}

/** The store `o.db` names: PostgreSQL for a postgres:// or postgresql:// URL, else a SQLite file. */
async function openStore(o: Pick<ServeOptions, 'db' | 'dbPoolSize'>, policy: StorePolicy): Promise<Store> {
  // one SQLite transaction for the heartbeats that arrive together (store/heartbeat-group.ts)
  if (!isPostgresUrl(o.db)) return openSqliteStore(o.db, policy, { groupCommit: policy.clock ?? systemClock });
  return openPgStore(o.db, policy, o.dbPoolSize === undefined ? {} : { poolSize: o.dbPoolSize });
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
