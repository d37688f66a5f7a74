/**
 * The `endpoints:` section of `serve --config`: where the director may start
 * machines, which shapes of machine each offers and at what cost, its
 * limits, the groups it serves with their quotas there, and its timeouts.
 * Validated once (a bad key is VMP_CONFIG naming its full path) and frozen.
 *
 * ```yaml
 * endpoints:
 *   laptop:                      # a name: a-z, 0-9 and -, up to 24, starting with a letter
 *     driver: process            # process | slurm | pbs | sge | qemu
 *     process: { workDir: /var/lib/vmpilot/instances }   # the driver's own settings
 *     shapes:
 *       small: { cores: 2, memoryMb: 2000, lifetimeSec: 86400, costPerHour: 0 }
 *     limits: { instances: 4, cores: 8, startsPerCycle: 2 }
 *     groups: { atlas: { maxCores: 6 }, '*': {} }        # absent: every group, no quota
 *     timeouts: { bootSec: 120, registrationSec: 120, maxLifetimeSec: 86400, idleSec: 120 }
 * ```
 * docs/director.md has every key with its default.
 */
import { type DriverSettings, DRIVER_KINDS, driverSettingsFrom } from './driver-settings.js';
import { type At, badConfig, bool, int, mapping, num, optStr, str, under } from './config-check.js';
import { checkCloudShapes } from './cloud-settings.js';

/** Where a shape's current price comes from, when it is not a fixed cost. */
export interface PriceSourceConfig {
  /**
   * A JSON file mapping keys to prices per hour (e.g. written by a spot-price
   * poller), read every cycle; null: the endpoint's driver says the price
   * (`price: { from: driver }`: ec2's live spot or on-demand price).
   */
  file: string | null;
  /** The key of this shape in the file (default: the shape's name). */
  key: string;
  /** A price older than this (the file's mtime) is not trusted: the shape is not started. */
  maxAgeSec: number;
}

/** One kind of machine an endpoint offers. */
export interface ShapeConfig {
  name: string;
  cores: number;
  memoryMb: number;
  /** How long one instance may live (a batch job's wall time; a VM's cap). */
  lifetimeSec: number;
  /** Fixed cost per hour; with `price`, the fallback is none: an unknown price means no start. */
  costPerHour: number;
  price: PriceSourceConfig | null;
  /** Never start it while its price is above this (null: any price). */
  maxCostPerHour: number | null;
}

/** An endpoint's limits. */
export interface EndpointLimits {
  /** Live instances (requested to halted) at most. */
  instances: number;
  /** Cores of live instances at most. */
  cores: number;
  /** Starts per director cycle at most: the ramp. */
  startsPerCycle: number;
}

/** A group's quota on one endpoint: counted over the live instances started for it. */
export interface GroupQuota {
  maxInstances: number | null;
  maxCores: number | null;
}

/** An endpoint's timeouts, in seconds. */
export interface EndpointTimeouts {
  /** From the create call until the driver says the machine runs (a batch job: leaves the queue). */
  bootSec: number;
  /** From running until its pilot registers. */
  registrationSec: number;
  /** An instance is drained at this age (or its shape's lifetime, if shorter), terminated `drainGraceSec` later. */
  maxLifetimeSec: number;
  /** The pilot halts after this long without work (its --idle-timeout). */
  idleSec: number;
  /** After a drain, terminate at the latest this much later. */
  drainGraceSec: number;
  /** A pilot stalled this long is terminated. */
  stalledGraceSec: number;
  /** A resource the driver lists as ours that no record knows is removed after this long. */
  orphanSec: number;
  /** The pilot's grace time between SIGTERM and SIGKILL of its payloads (its --grace). */
  payloadGraceSec: number;
}

/** How the failure memory backs off an offering of this endpoint. */
export interface BackoffConfig {
  /** The first delay. */
  baseSec: number;
  /** The longest delay. */
  maxSec: number;
  /** An instance that ends this soon after its start, or whose pilot halts with 300-699 this soon, fizzled. */
  fizzleSec: number;
}

/** One endpoint, after defaults. */
export interface EndpointConfig {
  name: string;
  /** False: configured but not started from (until `endpoint enable`). */
  enabled: boolean;
  driver: DriverSettings;
  /** The server's URL as the machines reach it (null: the server's own URL). */
  serverUrl: string | null;
  /** In the order written; the first is preferred among equals. */
  shapes: readonly ShapeConfig[];
  limits: EndpointLimits;
  /** Group → quota; null: every group, no quota. The key "*" is every group not named. */
  groups: ReadonlyMap<string, GroupQuota> | null;
  timeouts: EndpointTimeouts;
  backoff: BackoffConfig;
}

const ENDPOINT_KEYS = ['driver', 'enabled', 'serverUrl', 'shapes', 'limits', 'groups', 'timeouts', 'backoff', ...DRIVER_KINDS] as const;
const ENDPOINT_NAME = /^[a-z][a-z0-9-]{0,23}$/;
const SHAPE_NAME = /^[a-z0-9][a-z0-9._-]{0,31}$/;
const GROUP_NAME = /^([A-Za-z0-9_.-]{1,100}|\*)$/;
const DAY = 86400;

/** The defaults of the timeouts, in seconds. */
export const TIMEOUT_DEFAULTS: EndpointTimeouts = Object.freeze({
  bootSec: 600,
  registrationSec: 600,
  maxLifetimeSec: 7 * DAY,
  idleSec: 300,
  drainGraceSec: 600,
  stalledGraceSec: 300,
  orphanSec: 600,
  payloadGraceSec: 30,
});

/** The defaults of the backoff, in seconds (a failed offering waits 60 s, then 120, … up to 30 min). */
export const BACKOFF_DEFAULTS: BackoffConfig = Object.freeze({ baseSec: 60, maxSec: 1800, fizzleSec: 600 });

/** Validate the `endpoints:` mapping; `where` names the file in errors. Pure. */
export function endpointsFrom(raw: unknown, where: string): readonly EndpointConfig[] {
  const at: At = { where, path: 'endpoints' };
  const rec = mapping(raw, at, null);
  const out: EndpointConfig[] = [];
  for (const [name, value] of Object.entries(rec)) {
    const eat = under(at, name);
    if (!ENDPOINT_NAME.test(name)) throw badConfig(eat, 'is not a usable endpoint name: a-z, 0-9 and -, 1 to 24, starting with a letter');
    out.push(endpointFrom(name, value, eat));
  }
  return Object.freeze(out);
}

function endpointFrom(name: string, value: unknown, at: At): EndpointConfig {
  const e = mapping(value, at, ENDPOINT_KEYS, false);
  const kind = str(e.driver, under(at, 'driver'), new RegExp(`^(${DRIVER_KINDS.join('|')})$`), `one of ${DRIVER_KINDS.join(', ')}`);
  for (const other of DRIVER_KINDS) {
    if (other !== kind && e[other] !== undefined) throw badConfig(under(at, other), `is set but the driver is ${kind}: put the driver's settings under ${at.path}.${kind}`);
  }
  const driver = driverSettingsFrom(kind as DriverSettings['kind'], e[kind], under(at, kind));
  const shapes = shapesFrom(e.shapes, under(at, 'shapes'));
  const timeouts = timeoutsFrom(e.timeouts, under(at, 'timeouts'));
  const limits = limitsFrom(e.limits, under(at, 'limits'), shapes);
  const serverUrl = optStr(e.serverUrl, under(at, 'serverUrl'), /^https?:\/\/[^\s/?#@]+(\/[^\s?#]*)?$/, 'an http:// or https:// URL without user, query or fragment');
  if (driver.kind === 'qemu' && serverUrl !== null) {
    throw badConfig(under(at, 'serverUrl'), 'cannot be set for the qemu driver: its VMs reach the server only through their one forwarded port');
  }
  if (driver.kind === 'ec2' || driver.kind === 'openstack' || driver.kind === 'opennebula') checkCloudShapes(driver, shapes, at);
  for (const s of shapes) {
    if ((driver.kind === 'slurm' || driver.kind === 'pbs' || driver.kind === 'sge') && s.lifetimeSec < 120) {
      throw badConfig(under(under(at, 'shapes'), s.name), `lifetimeSec is ${s.lifetimeSec}; a batch job needs at least 120`);
    }
  }
  return Object.freeze({
    name,
    enabled: bool(e.enabled, under(at, 'enabled'), true),
    driver,
    serverUrl: serverUrl === null ? null : serverUrl.replace(/\/+$/, ''),
    shapes,
    limits,
    groups: groupsFrom(e.groups, under(at, 'groups')),
    timeouts,
    backoff: backoffFrom(e.backoff, under(at, 'backoff')),
  });
}

function shapesFrom(value: unknown, at: At): readonly ShapeConfig[] {
  const rec = mapping(value, at, null, false);
  const names = Object.keys(rec);
  if (names.length === 0) throw badConfig(at, 'is empty; name at least one shape, e.g. shapes: { small: { cores: 2, memoryMb: 2000 } }');
  return Object.freeze(
    names.map((name) => {
      const sat = under(at, name);
      if (!SHAPE_NAME.test(name)) throw badConfig(sat, 'is not a usable shape name: a-z, 0-9 and . _ -, 1 to 32');
      const s = mapping(rec[name], sat, ['cores', 'memoryMb', 'lifetimeSec', 'costPerHour', 'price', 'maxCostPerHour'], false);
      if (s.costPerHour !== undefined && s.price !== undefined) throw badConfig(under(sat, 'price'), 'and costPerHour exclude each other: a fixed cost, or a price source');
      return Object.freeze({
        name,
        cores: int(s.cores, under(sat, 'cores'), 1, 4096),
        memoryMb: int(s.memoryMb, under(sat, 'memoryMb'), 64, 64 * 1024 * 1024),
        lifetimeSec: int(s.lifetimeSec, under(sat, 'lifetimeSec'), 60, 366 * DAY, 7 * DAY),
        costPerHour: num(s.costPerHour, under(sat, 'costPerHour'), 0, 1e6, 0),
        price: s.price === undefined ? null : priceFrom(s.price, under(sat, 'price'), name),
        maxCostPerHour: s.maxCostPerHour === undefined ? null : num(s.maxCostPerHour, under(sat, 'maxCostPerHour'), 0, 1e6),
      });
    }),
  );
}

function priceFrom(value: unknown, at: At, shape: string): PriceSourceConfig {
  const p = mapping(value, at, ['file', 'key', 'maxAgeSec', 'from'], false);
  if (p.from !== undefined) {
    str(p.from, under(at, 'from'), /^(file|driver)$/, 'file or driver');
    if (p.from === 'driver') {
      for (const k of ['file', 'key', 'maxAgeSec']) if (p[k] !== undefined) throw badConfig(under(at, k), 'is for a price file, not from: driver');
      return Object.freeze({ file: null, key: shape, maxAgeSec: 0 });
    }
  }
  return Object.freeze({
    file: str(p.file, under(at, 'file'), /^\/\S*$/, 'an absolute path to a JSON file of prices per hour'),
    key: str(p.key, under(at, 'key'), /^\S{1,200}$/, 'a key of that file (no spaces)', shape),
    maxAgeSec: int(p.maxAgeSec, under(at, 'maxAgeSec'), 1, 30 * DAY, 3600),
  });
}

function limitsFrom(value: unknown, at: At, shapes: readonly ShapeConfig[]): EndpointLimits {
  const l = mapping(value, at, ['instances', 'cores', 'startsPerCycle']);
  const instances = int(l.instances, under(at, 'instances'), 0, 1_000_000, 10);
  const biggest = Math.max(...shapes.map((s) => s.cores));
  return Object.freeze({
    instances,
    cores: int(l.cores, under(at, 'cores'), 0, 100_000_000, instances * biggest),
    // the ramp: by default a tenth of the instance limit per cycle (at least one), as Vcycle does
    startsPerCycle: int(l.startsPerCycle, under(at, 'startsPerCycle'), 1, 10_000, Math.max(1, Math.ceil(instances / 10))),
  });
}

function groupsFrom(value: unknown, at: At): ReadonlyMap<string, GroupQuota> | null {
  if (value === undefined || value === null) return null;
  const rec = mapping(value, at, null, false);
  const out = new Map<string, GroupQuota>();
  for (const [group, spec] of Object.entries(rec)) {
    const gat = under(at, group);
    if (!GROUP_NAME.test(group)) throw badConfig(gat, 'is not a group name: letters, digits, _ . - (or "*" for every other group)');
    const q = mapping(spec, gat, ['maxInstances', 'maxCores']);
    out.set(group, Object.freeze({
      maxInstances: q.maxInstances === undefined ? null : int(q.maxInstances, under(gat, 'maxInstances'), 0, 1_000_000),
      maxCores: q.maxCores === undefined ? null : int(q.maxCores, under(gat, 'maxCores'), 0, 100_000_000),
    }));
  }
  return out;
}

function timeoutsFrom(value: unknown, at: At): EndpointTimeouts {
  const t = mapping(value, at, Object.keys(TIMEOUT_DEFAULTS));
  const d = TIMEOUT_DEFAULTS;
  return Object.freeze({
    bootSec: int(t.bootSec, under(at, 'bootSec'), 1, 30 * DAY, d.bootSec),
    registrationSec: int(t.registrationSec, under(at, 'registrationSec'), 1, 30 * DAY, d.registrationSec),
    maxLifetimeSec: int(t.maxLifetimeSec, under(at, 'maxLifetimeSec'), 60, 366 * DAY, d.maxLifetimeSec),
    idleSec: int(t.idleSec, under(at, 'idleSec'), 0, 30 * DAY, d.idleSec),
    drainGraceSec: int(t.drainGraceSec, under(at, 'drainGraceSec'), 0, 30 * DAY, d.drainGraceSec),
    stalledGraceSec: int(t.stalledGraceSec, under(at, 'stalledGraceSec'), 0, 30 * DAY, d.stalledGraceSec),
    orphanSec: int(t.orphanSec, under(at, 'orphanSec'), 60, 30 * DAY, d.orphanSec),
    payloadGraceSec: int(t.payloadGraceSec, under(at, 'payloadGraceSec'), 0, 3600, d.payloadGraceSec),
  });
}

function backoffFrom(value: unknown, at: At): BackoffConfig {
  const b = mapping(value, at, Object.keys(BACKOFF_DEFAULTS));
  const baseSec = int(b.baseSec, under(at, 'baseSec'), 1, DAY, BACKOFF_DEFAULTS.baseSec);
  const maxSec = int(b.maxSec, under(at, 'maxSec'), 1, 30 * DAY, Math.max(BACKOFF_DEFAULTS.maxSec, baseSec));
  if (maxSec < baseSec) throw badConfig(under(at, 'maxSec'), `is ${maxSec}; expected at least baseSec (${baseSec})`);
  return Object.freeze({ baseSec, maxSec, fizzleSec: int(b.fizzleSec, under(at, 'fizzleSec'), 0, DAY, BACKOFF_DEFAULTS.fizzleSec) });
}

/**
 * The groups an instance of `endpoint` may serve: the names its `groups`
 * lists, or null (any group) when it lists none or has `'*'`.
 */
export function servedGroups(endpoint: EndpointConfig): readonly string[] | null {
  if (endpoint.groups === null || endpoint.groups.has('*')) return null;
  return Object.freeze([...endpoint.groups.keys()]);
}

/** The quota of `group` on `endpoint`: null when it is not served there; no limits when groups is null. */
export function quotaFor(endpoint: EndpointConfig, group: string): GroupQuota | null {
  if (endpoint.groups === null) return { maxInstances: null, maxCores: null };
  return endpoint.groups.get(group) ?? endpoint.groups.get('*') ?? null;
}

/** The longest an instance of `shape` lives on `endpoint`: its shape's lifetime or the endpoint's cap. */
export function maxLifeSec(endpoint: EndpointConfig, shape: ShapeConfig): number {
  return Math.min(shape.lifetimeSec, endpoint.timeouts.maxLifetimeSec);
}
