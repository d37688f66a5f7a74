/**
 * The pure parts of the openstack driver: the body of `POST /servers`, what
 * a server's status means to the director, and the quota check against the
 * Compute limits (`GET /limits`: `maxTotalCores`, `totalCoresUsed`, …; -1
 * is no limit).
 */
import { VmpilotError } from '../../../../shared/errors.js';
import type { OpenStackSettings } from '../../cloud-settings.js';
import type { DriverResource } from '../../ports.js';

/** A flavour, as far as the driver needs it. */
export interface Flavor {
  id: string;
  name: string;
  vcpus: number;
  ramMb: number;
}

/** One of our servers. */
export interface ServerView {
  id: string;
  /** Its name: the instance's key. */
  name: string;
  /** Nova's status: BUILD, ACTIVE, SHUTOFF, ERROR, DELETED, … */
  status: string;
  /** Being deleted (task_state deleting, or DELETED): not listed any more. */
  deleting: boolean;
  createdAt: number | null;
  /** The fault's message of a server in ERROR. */
  fault: string | null;
  floatingIp: string | null;
}

/** Compute's user_data limit: 65535 bytes, base64. */
export const USER_DATA_MAX_BASE64 = 65535;

/** The body of `POST /servers` for one instance. */
export function serverBody(o: { key: string; prefix: string; flavorId: string; imageId: string; networkId: string | null; settings: OpenStackSettings; userData: string }): Record<string, unknown> {
  const userData = Buffer.from(o.userData, 'utf8').toString('base64');
  if (userData.length > USER_DATA_MAX_BASE64) {
    throw new VmpilotError('VMP_DRIVER', `openstack: the user-data is ${userData.length} bytes in base64; the Compute API takes at most ${USER_DATA_MAX_BASE64}`);
  }
  const s = o.settings;
  return {
    server: {
      name: o.key,
      imageRef: o.imageId,
      flavorRef: o.flavorId,
      user_data: userData,
      metadata: { 'vmpilot-key': o.key, 'vmpilot-prefix': o.prefix },
      ...(o.networkId ? { networks: [{ uuid: o.networkId }] } : {}),
      ...(s.keyName ? { key_name: s.keyName } : {}),
      ...(s.securityGroups.length > 0 ? { security_groups: s.securityGroups.map((name) => ({ name })) } : {}),
    },
  };
}

/** A server as the director sees it: BUILD is pending; SHUTOFF (powered off at halt), ERROR and the like have ended. */
export function resourceOf(s: ServerView): DriverResource {
  const ended = ['SHUTOFF', 'STOPPED', 'ERROR', 'DELETED', 'SOFT_DELETED', 'SHELVED', 'SHELVED_OFFLOADED'].includes(s.status);
  const state = s.status === 'BUILD' ? 'pending' : ended ? 'ended' : 'running';
  const detail = [s.status, s.fault, s.floatingIp ? `floating IP ${s.floatingIp}` : null].filter((x) => x !== null).join(': ');
  return { id: s.id, key: s.name, state, createdAt: s.createdAt, detail };
}

/** What a new server of `flavor` would pass in the project's absolute limits, or null when it fits. */
export function quotaProblem(absolute: Readonly<Record<string, unknown>>, flavor: Flavor): string | null {
  const n = (k: string) => (typeof absolute[k] === 'number' ? (absolute[k] as number) : null);
  const checks: [string, string, string, number][] = [
    ['instances', 'maxTotalInstances', 'totalInstancesUsed', 1],
    ['cores', 'maxTotalCores', 'totalCoresUsed', flavor.vcpus],
    ['RAM (MB)', 'maxTotalRAMSize', 'totalRAMUsed', flavor.ramMb],
  ];
  for (const [what, maxKey, usedKey, need] of checks) {
    const max = n(maxKey);
    const used = n(usedKey) ?? 0;
    if (max !== null && max >= 0 && used + need > max) return `${what}: ${used} of ${max} in use, flavour ${flavor.name} needs ${need}`;
  }
  return null;
}
