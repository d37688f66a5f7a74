/**
 * The settings of the cloud drivers, as written under `endpoints.NAME.<driver>`:
 * `ec2` (Amazon EC2 or an EC2-compatible API, on-demand or spot), `openstack`
 * (Keystone v3, Compute, Networking) and `opennebula` (XML-RPC). Each has a
 * `shapes:` mapping that says, for every shape of the endpoint, what to ask
 * the cloud for (instance types, a flavour, a template); endpoint-config.ts
 * checks that every shape has one (`checkCloudShapes`). Secrets may be
 * given inline or, better, in a file only the server can read.
 */
import {
  ABSOLUTE_PATH,
  ABSOLUTE_PATH_TEXT,
  type At,
  badConfig,
  bool,
  int,
  mapping,
  num,
  optStr,
  str,
  strList,
  under,
} from './config-check.js';

/** How one EC2 shape is bought: the instance types it may be, and on which market. */
export interface Ec2ShapeSettings {
  /** Candidate instance types, each with at least the shape's cores and memory; the cheapest available is used. */
  instanceTypes: readonly string[];
  /** spot, on-demand, or any (both markets ranked together by price). */
  market: 'spot' | 'on-demand' | 'any';
  /** The most one spot instance may cost per hour (null: its on-demand price when known, else EC2's default, the on-demand price). */
  maxPrice: number | null;
  /** Another image for this shape (null: the endpoint's). */
  imageId: string | null;
}

/** `ec2`: RunInstances with the instance's key as ClientToken. */
export interface Ec2Settings {
  kind: 'ec2';
  /** null: the region of the AWS chain (AWS_REGION, the shared config file). */
  region: string | null;
  /** An EC2-compatible API's URL (null: AWS's own). */
  endpoint: string | null;
  /** A named profile of the shared config files (null: the chain's default). */
  profile: string | null;
  imageId: string;
  /** Availability zone → subnet; empty: the default VPC, zones from `zones` or any. */
  subnets: Readonly<Record<string, string>>;
  /** Zones to use when no subnets are given (empty: every zone the spot price history names). */
  zones: readonly string[];
  securityGroupIds: readonly string[];
  keyName: string | null;
  /** An IAM instance profile name (null: none). */
  instanceProfile: string | null;
  /** The spot price history's product (Linux/UNIX unless the image is something else). */
  productDescription: string;
  /** On-demand price per hour of each instance type (EC2's API does not say it): the on-demand offers' prices, and spot's default cap. */
  onDemandPrices: Readonly<Record<string, number>>;
  /** How long spot prices are trusted before they are asked again. */
  priceCacheSec: number;
  /** How long a (type, zone, market) that had no capacity or too low a price is left out. */
  capacityBackoffSec: number;
  /** More tags on every instance. */
  tags: Readonly<Record<string, string>>;
  shapes: Readonly<Record<string, Ec2ShapeSettings>>;
}

/** How the openstack driver logs in to Keystone v3. */
export type OpenStackAuth =
  | { method: 'password'; username: string; userDomain: string; password: SecretRef; project: string; projectDomain: string }
  | { method: 'application-credential'; id: string; secret: SecretRef };

/** A secret: inline, or the path of a file that holds it (read when a token is needed). */
export type SecretRef = { value: string } | { file: string };

/** What one OpenStack shape is. */
export interface OpenStackShapeSettings {
  /** A flavour name or id. */
  flavor: string;
  /** Another image for this shape (name or id; null: the endpoint's). */
  image: string | null;
}

/** `openstack`: a server per instance, a floating IP when `publicIp`. */
export interface OpenStackSettings {
  kind: 'openstack';
  /** Keystone v3, e.g. https://keystone.example.org:5000/v3 */
  authUrl: string;
  auth: OpenStackAuth;
  /** The region in the service catalogue (null: the first of each service). */
  region: string | null;
  /** Which catalogue endpoint to use. */
  interface: 'public' | 'internal' | 'admin';
  /** Image name or id. */
  image: string;
  /** Network name or id (null: the project's only network). */
  network: string | null;
  keyName: string | null;
  securityGroups: readonly string[];
  /** Attach a floating IP from `floatingPool` once the server is ACTIVE; released on delete. */
  publicIp: boolean;
  /** The external network the floating IPs come from (name or id). */
  floatingPool: string | null;
  /** A PEM file of the CA that signed the cloud's certificates (null: the system's). */
  caFile: string | null;
  shapes: Readonly<Record<string, OpenStackShapeSettings>>;
}

/** What one OpenNebula shape is. */
export interface OpenNebulaShapeSettings {
  /** The VM template's id. */
  templateId: number;
}

/** `opennebula`: one.template.instantiate per instance, the user-data as context. */
export interface OpenNebulaSettings {
  kind: 'opennebula';
  /** The XML-RPC endpoint, e.g. http://one.example.org:2633/RPC2 */
  endpoint: string;
  user: string;
  password: SecretRef;
  caFile: string | null;
  shapes: Readonly<Record<string, OpenNebulaShapeSettings>>;
}

/** The cloud drivers' settings. */
export type CloudSettings = Ec2Settings | OpenStackSettings | OpenNebulaSettings;

const URL_TEXT = 'an http:// or https:// URL';
const HTTP_URL = /^https?:\/\/[^\s?#@]+$/;
const AWS_ID = (prefix: string) => new RegExp(`^${prefix}-[0-9a-f]{8,17}$`);
const INSTANCE_TYPE = /^[a-z0-9][a-z0-9-]*\.[a-z0-9]+$/;
const ZONE = /^[a-z0-9-]{3,64}$/;
const CLOUD_NAME = /^[^\n\r\0]{1,255}$/;
const TAG_KEY = /^(?!aws:)[A-Za-z0-9 +\-=._:/@]{1,128}$/;
const TAG_VALUE = /^[A-Za-z0-9 +\-=._:/@]{0,256}$/;

function secretFrom(value: unknown, fileValue: unknown, at: At, key: string): SecretRef {
  if (value !== undefined && fileValue !== undefined) throw badConfig(under(at, `${key}File`), `and ${key} exclude each other: give the secret, or the file that holds it`);
  if (fileValue !== undefined) return { file: str(fileValue, under(at, `${key}File`), ABSOLUTE_PATH, ABSOLUTE_PATH_TEXT) };
  if (value === undefined) throw badConfig(under(at, key), `is missing; give ${key}File (a file only the server can read) or ${key}`);
  return { value: str(value, under(at, key), /^[^\n\r\0]{1,1000}$/, 'a one-line secret') };
}

function stringMap(value: unknown, at: At, keyPattern: RegExp, keyText: string, valuePattern: RegExp, valueText: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(mapping(value, at, null))) {
    if (!keyPattern.test(k)) throw badConfig(under(at, k), `is not ${keyText}`);
    out[k] = str(v, under(at, k), valuePattern, valueText);
  }
  return out;
}

/** `endpoints.NAME.ec2`. */
export function ec2From(value: unknown, at: At): Ec2Settings {
  const e = mapping(value, at, ['region', 'endpoint', 'profile', 'imageId', 'subnets', 'zones', 'securityGroupIds', 'keyName', 'instanceProfile', 'productDescription', 'onDemandPrices', 'priceCacheSec', 'capacityBackoffSec', 'tags', 'shapes'], false);
  const subnets = stringMap(e.subnets, under(at, 'subnets'), ZONE, 'an availability zone name (e.g. eu-west-1a)', AWS_ID('subnet'), 'a subnet id (subnet-0123abcd…)');
  const zones = strList(e.zones, under(at, 'zones'), ZONE, 'availability zone names');
  if (zones.length > 0 && Object.keys(subnets).length > 0) throw badConfig(under(at, 'zones'), 'and subnets exclude each other: with subnets, the zones are their keys');
  const onDemandAt = under(at, 'onDemandPrices');
  const onDemandPrices: Record<string, number> = {};
  for (const [t, p] of Object.entries(mapping(e.onDemandPrices, onDemandAt, null))) {
    if (!INSTANCE_TYPE.test(t)) throw badConfig(under(onDemandAt, t), 'is not an instance type (e.g. m5.xlarge)');
    onDemandPrices[t] = num(p, under(onDemandAt, t), 0, 1e6);
  }
  const shapesAt = under(at, 'shapes');
  const shapes: Record<string, Ec2ShapeSettings> = {};
  for (const [name, raw] of Object.entries(mapping(e.shapes, shapesAt, null, false))) {
    const sat = under(shapesAt, name);
    const s = mapping(raw, sat, ['instanceTypes', 'market', 'maxPrice', 'imageId'], false);
    const instanceTypes = strList(s.instanceTypes, under(sat, 'instanceTypes'), INSTANCE_TYPE, 'instance types (e.g. m5.xlarge)', 20);
    if (instanceTypes.length === 0) throw badConfig(under(sat, 'instanceTypes'), 'is missing; name at least one instance type, e.g. instanceTypes: [m5.xlarge]');
    const market = str(s.market, under(sat, 'market'), /^(spot|on-demand|any)$/, 'spot, on-demand or any', 'on-demand') as Ec2ShapeSettings['market'];
    // ranking both markets together needs each type's on-demand price
    const unpriced = market === 'any' ? instanceTypes.find((t) => onDemandPrices[t] === undefined) : undefined;
    if (unpriced) throw badConfig(under(onDemandAt, unpriced), `is missing: shape ${name} may buy ${unpriced} on demand (market any), which needs its price per hour`);
    shapes[name] = Object.freeze({
      instanceTypes: Object.freeze(instanceTypes),
      market,
      maxPrice: s.maxPrice === undefined ? null : num(s.maxPrice, under(sat, 'maxPrice'), 0.0001, 1e6),
      imageId: optStr(s.imageId, under(sat, 'imageId'), AWS_ID('ami'), 'an image id (ami-0123abcd…)'),
    });
  }
  return Object.freeze({
    kind: 'ec2',
    region: optStr(e.region, under(at, 'region'), /^[a-z]{2}(-[a-z]+)+-\d+$|^[a-z0-9-]{1,64}$/, 'a region name (e.g. eu-west-1)'),
    endpoint: optStr(e.endpoint, under(at, 'endpoint'), HTTP_URL, URL_TEXT),
    profile: optStr(e.profile, under(at, 'profile'), /^[A-Za-z0-9._-]{1,64}$/, 'a profile name'),
    imageId: str(e.imageId, under(at, 'imageId'), AWS_ID('ami'), 'an image id (ami-0123abcd…)'),
    subnets: Object.freeze(subnets),
    zones: Object.freeze(zones),
    securityGroupIds: Object.freeze(strList(e.securityGroupIds, under(at, 'securityGroupIds'), AWS_ID('sg'), 'security group ids (sg-0123abcd…)')),
    keyName: optStr(e.keyName, under(at, 'keyName'), /^[^\n\r\0]{1,255}$/, 'a key pair name'),
    instanceProfile: optStr(e.instanceProfile, under(at, 'instanceProfile'), /^[A-Za-z0-9+=,.@_-]{1,128}$/, 'an instance profile name'),
    productDescription: str(e.productDescription, under(at, 'productDescription'), /^[A-Za-z0-9 /()._-]{1,64}$/, 'a product description (e.g. Linux/UNIX)', 'Linux/UNIX'),
    onDemandPrices: Object.freeze(onDemandPrices),
    priceCacheSec: int(e.priceCacheSec, under(at, 'priceCacheSec'), 10, 86400, 300),
    capacityBackoffSec: int(e.capacityBackoffSec, under(at, 'capacityBackoffSec'), 1, 86400, 180),
    tags: Object.freeze(stringMap(e.tags, under(at, 'tags'), TAG_KEY, 'a tag key (not starting with aws:)', TAG_VALUE, 'a tag value')),
    shapes: Object.freeze(shapes),
  });
}

function openstackAuthFrom(value: unknown, at: At): OpenStackAuth {
  const a = mapping(value, at, ['method', 'username', 'userDomain', 'password', 'passwordFile', 'project', 'projectDomain', 'id', 'secret', 'secretFile'], false);
  const method = str(a.method, under(at, 'method'), /^(password|application-credential)$/, 'password or application-credential', a.id !== undefined ? 'application-credential' : 'password');
  const only = (keys: string[]) => {
    for (const k of Object.keys(a)) if (k !== 'method' && !keys.includes(k)) throw badConfig(under(at, k), `is not used with method ${method} (it takes ${keys.join(', ')})`);
  };
  if (method === 'application-credential') {
    only(['id', 'secret', 'secretFile']);
    return Object.freeze({ method, id: str(a.id, under(at, 'id'), /^[A-Za-z0-9-]{1,64}$/, 'an application credential id'), secret: secretFrom(a.secret, a.secretFile, at, 'secret') });
  }
  only(['username', 'userDomain', 'password', 'passwordFile', 'project', 'projectDomain']);
  return Object.freeze({
    method: 'password',
    username: str(a.username, under(at, 'username'), CLOUD_NAME, 'a user name'),
    userDomain: str(a.userDomain, under(at, 'userDomain'), CLOUD_NAME, 'a domain name', 'Default'),
    password: secretFrom(a.password, a.passwordFile, at, 'password'),
    project: str(a.project, under(at, 'project'), CLOUD_NAME, 'a project name'),
    projectDomain: str(a.projectDomain, under(at, 'projectDomain'), CLOUD_NAME, 'a domain name', 'Default'),
  });
}

/** `endpoints.NAME.openstack`. */
export function openstackFrom(value: unknown, at: At): OpenStackSettings {
  const o = mapping(value, at, ['authUrl', 'auth', 'region', 'interface', 'image', 'network', 'keyName', 'securityGroups', 'publicIp', 'floatingPool', 'caFile', 'shapes'], false);
  const shapesAt = under(at, 'shapes');
  const shapes: Record<string, OpenStackShapeSettings> = {};
  for (const [name, raw] of Object.entries(mapping(o.shapes, shapesAt, null, false))) {
    const sat = under(shapesAt, name);
    const s = mapping(raw, sat, ['flavor', 'image'], false);
    shapes[name] = Object.freeze({ flavor: str(s.flavor, under(sat, 'flavor'), CLOUD_NAME, 'a flavour name or id'), image: optStr(s.image, under(sat, 'image'), CLOUD_NAME, 'an image name or id') });
  }
  const publicIp = bool(o.publicIp, under(at, 'publicIp'), false);
  const floatingPool = optStr(o.floatingPool, under(at, 'floatingPool'), CLOUD_NAME, 'an external network name or id');
  if (publicIp && floatingPool === null) throw badConfig(under(at, 'floatingPool'), 'is missing: publicIp takes its floating IPs from this external network (name or id)');
  return Object.freeze({
    kind: 'openstack',
    authUrl: str(o.authUrl, under(at, 'authUrl'), HTTP_URL, `${URL_TEXT} of Keystone v3 (e.g. https://keystone.example.org:5000/v3)`).replace(/\/+$/, ''),
    auth: openstackAuthFrom(o.auth, under(at, 'auth')),
    region: optStr(o.region, under(at, 'region'), CLOUD_NAME, 'a region name'),
    interface: str(o.interface, under(at, 'interface'), /^(public|internal|admin)$/, 'public, internal or admin', 'public') as OpenStackSettings['interface'],
    image: str(o.image, under(at, 'image'), CLOUD_NAME, 'an image name or id'),
    network: optStr(o.network, under(at, 'network'), CLOUD_NAME, 'a network name or id'),
    keyName: optStr(o.keyName, under(at, 'keyName'), CLOUD_NAME, 'a key pair name'),
    securityGroups: Object.freeze(strList(o.securityGroups, under(at, 'securityGroups'), CLOUD_NAME, 'security group names')),
    publicIp,
    floatingPool,
    caFile: optStr(o.caFile, under(at, 'caFile'), ABSOLUTE_PATH, ABSOLUTE_PATH_TEXT),
    shapes: Object.freeze(shapes),
  });
}

/** `endpoints.NAME.opennebula`. */
export function opennebulaFrom(value: unknown, at: At): OpenNebulaSettings {
  const o = mapping(value, at, ['endpoint', 'user', 'password', 'passwordFile', 'caFile', 'shapes'], false);
  const shapesAt = under(at, 'shapes');
  const shapes: Record<string, OpenNebulaShapeSettings> = {};
  for (const [name, raw] of Object.entries(mapping(o.shapes, shapesAt, null, false))) {
    const sat = under(shapesAt, name);
    const s = mapping(raw, sat, ['templateId'], false);
    shapes[name] = Object.freeze({ templateId: int(s.templateId, under(sat, 'templateId'), 0, 2 ** 31 - 1) });
  }
  return Object.freeze({
    kind: 'opennebula',
    endpoint: str(o.endpoint, under(at, 'endpoint'), HTTP_URL, `${URL_TEXT} of the XML-RPC API (e.g. http://one.example.org:2633/RPC2)`),
    user: str(o.user, under(at, 'user'), /^[^\s:]{1,128}$/, 'a user name (no spaces or colons)'),
    password: secretFrom(o.password, o.passwordFile, at, 'password'),
    caFile: optStr(o.caFile, under(at, 'caFile'), ABSOLUTE_PATH, ABSOLUTE_PATH_TEXT),
    shapes: Object.freeze(shapes),
  });
}

/**
 * Every shape of the endpoint has its cloud settings, and every shape the
 * cloud settings name is one of the endpoint's: a typo in either is an error
 * naming the key, not a shape that can never start.
 */
export function checkCloudShapes(settings: CloudSettings, shapes: readonly { name: string }[], at: At): void {
  const names = new Set(shapes.map((s) => s.name));
  const cloudAt = under(under(at, settings.kind), 'shapes');
  for (const name of names) {
    if (!(name in settings.shapes)) throw badConfig(under(cloudAt, name), `is missing: shape ${name} needs its ${settings.kind} settings (${settings.kind === 'ec2' ? 'instanceTypes' : settings.kind === 'openstack' ? 'flavor' : 'templateId'})`);
  }
  for (const name of Object.keys(settings.shapes)) {
    if (!names.has(name)) throw badConfig(under(cloudAt, name), `is not a shape of this endpoint (its shapes: ${[...names].join(', ')})`);
  }
}
