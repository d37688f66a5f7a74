/**
 * The director as `serve` runs it: made once at start when `endpoints:` are
 * configured (none: no director). Its id is the setting `director.id`, made
 * on the first start and kept, so a restart knows its own resources by their
 * tag; one driver per endpoint (drivers/index.ts `driverFor`); prices from
 * the price files and, for shapes `price: { from: driver }`, from the
 * drivers; demand in the fair-share order of the server's groups. The
 * server's URL is given as a function: it is known once the server listens.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../../shared/clock.js';
import { VmpilotError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { ServerConfig } from '../config.js';
import { defaultAgentDir, pickAgentFile, readManifest, type AgentManifest } from '../delivery/manifest.js';
import { agentRef } from '../delivery/shell.js';
import type { InstanceStore, SettingsStore } from '../store/store.js';
import { DIRECTOR_ID } from './credential.js';
import type { DemandPolicy } from './demand.js';
import { driverFor, type DriverDeps } from './drivers/index.js';
import { DriverPrices } from './drivers/live-prices.js';
import { Director } from './loop.js';
import type { Driver } from './ports.js';
import { FilePrices } from './prices.js';

/** The setting that holds this server's director id. */
export const DIRECTOR_ID_SETTING = 'director.id';

/** The wall time the fair queue assumes for a payload that declares none (docs/director.md: 1 h). */
export const DEFAULT_WALL_SEC = 3600;

const ID_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** A new director id: 8 random lower-case letters and digits. */
export function newDirectorId(): string {
  return [...randomBytes(8)].map((b) => ID_CHARS[b % ID_CHARS.length]).join('');
}

/** The director id kept in the settings, made and kept on the first call. VMP_CONFIG when the stored one is not an id. */
export async function directorIdOf(store: Pick<SettingsStore, 'getSetting' | 'setSetting'>, make: () => string = newDirectorId): Promise<string> {
  const kept = await store.getSetting(DIRECTOR_ID_SETTING);
  if (kept !== null) {
    if (!DIRECTOR_ID.test(kept)) throw new VmpilotError('VMP_CONFIG', `the setting ${DIRECTOR_ID_SETTING} is "${kept}", not 4-12 of a-z and 0-9: the database was changed by hand`);
    return kept;
  }
  const id = make();
  if (!DIRECTOR_ID.test(id)) throw new VmpilotError('VMP_INTERNAL', `made a director id "${id}" that is not 4-12 of a-z and 0-9`);
  await store.setSetting(DIRECTOR_ID_SETTING, id);
  return id;
}

/** The environment local agents start with: PATH, HOME and LANG of `env` only, never the server's secrets. Pure. */
export function agentBaseEnv(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = { PATH: env.PATH ?? '/usr/local/bin:/usr/bin:/bin' };
  if (env.HOME !== undefined) out.HOME = env.HOME;
  if (env.LANG !== undefined) out.LANG = env.LANG;
  return out;
}

/**
 * The server's URL as a machine on this host reaches it: the URL it printed,
 * with a wildcard listen (0.0.0.0, ::) made 127.0.0.1. Pure.
 */
export function localServerUrl(printed: string): string {
  const u = new URL(printed);
  if (u.hostname === '0.0.0.0' || u.hostname === '[::]' || u.hostname === '::') u.hostname = '127.0.0.1';
  return u.toString().replace(/\/$/, '');
}

/** The demand policy of the server's groups. Pure. */
export function demandPolicyOf(config: Pick<ServerConfig, 'shares' | 'defaultShare'>): DemandPolicy {
  return { shares: config.shares, defaultShare: config.defaultShare, defaultWallSec: DEFAULT_WALL_SEC };
}

/** What makeDirector needs. */
export interface DirectorWiring {
  store: InstanceStore & Pick<SettingsStore, 'getSetting' | 'setSetting'>;
  clock: Clock;
  log: Logger;
  config: Pick<ServerConfig, 'endpoints' | 'shares' | 'defaultShare'> & Partial<Pick<ServerConfig, 'directorCycleSec'>>;
  /** The server's URL as local machines reach it, once it listens. */
  serverUrl: () => string;
  /** The environment local agents start with (agentBaseEnv). */
  baseEnv: Readonly<Record<string, string>>;
  /** The node binary that runs local agents (default: the server's own). */
  node?: string;
  /** Where the built agent files are (default: beside the server bundle). */
  agentDir?: string;
  /** The director runs on the elected leader of the replicas only (loop.ts DirectorOptions.elected: a shorter lease). */
  elected?: boolean;
}

/** The director of the configured endpoints, not started; null when there are none. */
export async function makeDirector(w: DirectorWiring): Promise<Director | null> {
  const endpoints = w.config.endpoints;
  if (endpoints.length === 0) return null;
  const directorId = await directorIdOf(w.store);
  const agentDir = w.agentDir ?? defaultAgentDir();
  // read once: batch, VM and cloud machines fetch the agent file it names; the process driver runs the bundle itself
  const manifest: AgentManifest | null = await readManifest(agentDir).catch(() => null);
  const deps: DriverDeps = {
    clock: w.clock,
    directorId,
    agentDir,
    agentFile: (flavour) => {
      if (!manifest) throw new VmpilotError('VMP_CONFIG', `no agent manifest in ${agentDir}: build the agent (npm run build) before configuring batch, VM or cloud endpoints`);
      return agentRef(pickAgentFile(manifest, flavour));
    },
    node: w.node ?? process.execPath,
    baseEnv: w.baseEnv,
    log: w.log.child({ role: 'director' }),
  };
  const drivers = new Map<string, Driver>();
  try {
    for (const ep of endpoints) drivers.set(ep.name, driverFor(ep, deps));
  } catch (err) {
    await Promise.all([...drivers.values()].map((d) => d.close().catch(() => undefined)));
    throw err;
  }
  w.log.info({ directorId, endpoints: endpoints.map((e) => `${e.name} (${e.driver.kind})`) }, 'director made');
  return new Director({
    store: w.store,
    clock: w.clock,
    log: w.log.child({ role: 'director' }),
    endpoints,
    drivers,
    directorId,
    serverUrl: w.serverUrl,
    demandPolicy: demandPolicyOf(w.config),
    prices: new DriverPrices(drivers, new FilePrices(w.clock, w.log)),
    ...(w.config.directorCycleSec === undefined ? {} : { everyMs: w.config.directorCycleSec * 1000 }),
    ...(w.elected ? { elected: true } : {}),
  });
}

/** Live instances by endpoint and state, for the overview. */
export async function instanceCounts(store: Pick<InstanceStore, 'liveInstances'>): Promise<{ endpoint: string; state: string; count: number }[]> {
  const by = new Map<string, { endpoint: string; state: string; count: number }>();
  for (const i of await store.liveInstances()) {
    const k = `${i.endpoint}\u0000${i.state}`;
    const c = by.get(k) ?? { endpoint: i.endpoint, state: i.state, count: 0 };
    c.count++;
    by.set(k, c);
  }
  return [...by.values()];
}
