/**
 * The pure parts of the ec2 driver: an instance as the director sees it,
 * the user-data as EC2 takes it (base64, at most 16 KB before encoding),
 * the client tokens of a key, and which RunInstances errors mean "try the
 * next offer" (EC2's error codes, as its API reference lists them).
 */
import type { Instance } from '@aws-sdk/client-ec2';
import { VmpilotError } from '../../../../shared/errors.js';
import type { DriverResource } from '../../ports.js';

/** EC2's limit on user-data, in bytes before base64. */
export const USER_DATA_MAX_BYTES = 16 * 1024;

/** The user-data as RunInstances takes it: base64; VMP_DRIVER naming both sizes when it is too large. */
export function ec2UserData(text: string): string {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > USER_DATA_MAX_BYTES) {
    throw new VmpilotError('VMP_DRIVER', `ec2: the user-data is ${bytes} bytes; EC2 takes at most ${USER_DATA_MAX_BYTES} bytes (before base64): leave out extra packages or ssh keys`);
  }
  return Buffer.from(text, 'utf8').toString('base64');
}

/**
 * The client tokens one key may use, in order: the key itself, then the key
 * with a suffix: each further offer one create tries gets the next, and so
 * does a retry after EC2 said a token was spent by a request that made
 * nothing (at most 64 ASCII characters each). The same order every time, so
 * a create repeated after a restart meets the tokens of the first.
 */
export function clientTokens(key: string): string[] {
  if (key.length > 62) throw new VmpilotError('VMP_INTERNAL', `key ${key} is too long for an EC2 client token`);
  return [key, ...'abcdefghijklmnop'.split('').map((c) => `${key}.${c}`)];
}

/** The AWS error code of an SDK error (its name), or "error". */
export function awsCode(err: unknown): string {
  const e = err as { name?: unknown; Code?: unknown };
  return typeof e?.Code === 'string' ? e.Code : typeof e?.name === 'string' && e.name !== 'Error' ? e.name : 'error';
}

/**
 * Errors that concern one (type, zone, market), not the request: no
 * capacity there, a spot price above the cap, a type the zone does not
 * have, the spot instance limit, a full subnet. The next offer may work.
 * Others (InstanceLimitExceeded, VcpuLimitExceeded, a bad image, no right)
 * fail the create: the director backs the whole offering off.
 */
export function isNextOfferError(code: string): boolean {
  return ['InsufficientInstanceCapacity', 'InsufficientHostCapacity', 'InsufficientCapacity', 'SpotMaxPriceTooLow', 'Unsupported', 'MaxSpotInstanceCountExceeded', 'InsufficientFreeAddressesInSubnet'].includes(code);
}

/** An instance as the director sees it (its key from its tag, or `key` when the answer has no tags yet). */
export function resourceOf(i: Instance, key?: string): DriverResource {
  const name = i.State?.Name ?? 'pending';
  const state = name === 'pending' ? 'pending' : name === 'running' ? 'running' : 'ended';
  const tagKey = i.Tags?.find((t) => t.Key === 'vmpilot:key')?.Value;
  const market = i.InstanceLifecycle === 'spot' ? 'spot' : 'on-demand';
  const reason = i.StateReason?.Message ? `: ${i.StateReason.Message}` : '';
  return {
    id: i.InstanceId!,
    key: tagKey ?? key ?? '',
    state,
    createdAt: i.LaunchTime ? i.LaunchTime.getTime() : null,
    detail: `${name} (${market} ${i.InstanceType ?? '?'}${i.Placement?.AvailabilityZone ? ` in ${i.Placement.AvailabilityZone}` : ''})${reason}`,
  };
}
