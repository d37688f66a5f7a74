/**
 * What the cloud drivers put in a machine's user-data: the #cloud-config of
 * `vmpilot-server user-data` with the instance's own credential, its cores,
 * timeouts and lifetime, halting by powering the machine off (which ends
 * the instance, or stops it where the cloud keeps stopped machines: the
 * driver lists it as ended and the director deletes it).
 */
import { VmpilotError } from '../../../shared/errors.js';
import type { AgentRef } from '../../delivery/shell.js';
import { userData } from '../../delivery/user-data.js';
import type { CreateRequest } from '../ports.js';

/** The user-data text of `request`'s machine. */
export function cloudUserData(request: CreateRequest, agent: AgentRef, extra: { spotNotice?: 'aws' } = {}): string {
  const b = request.bootstrap;
  return userData({
    server: b.serverUrl,
    token: undefined,
    instanceCredential: b.credential,
    agent,
    cores: request.cores,
    idleTimeoutSec: b.idleTimeoutSec,
    graceSec: b.graceSec,
    lifetimeSec: Math.max(60, b.lifetimeSec),
    halt: 'poweroff',
    packages: [],
    sshKeys: [],
    ...(extra.spotNotice ? { spotNotice: extra.spotNotice } : {}),
  });
}

/** The shape of the endpoint a request is for: its own `shape`, else the first with its cores and memory. */
export function shapeOf<T>(request: CreateRequest, shapes: Readonly<Record<string, T>>, sizes: readonly { name: string; cores: number; memoryMb: number }[], driver: string): { name: string; settings: T } {
  const name = request.shape ?? sizes.find((s) => s.cores === request.cores && s.memoryMb === request.memoryMb)?.name;
  const settings = name === undefined ? undefined : shapes[name];
  if (name === undefined || settings === undefined) {
    throw new VmpilotError('VMP_DRIVER', `${driver}: no shape ${request.shape ?? `of ${request.cores} cores and ${request.memoryMb} MB`} in this endpoint's ${driver} settings`);
  }
  return { name, settings };
}
