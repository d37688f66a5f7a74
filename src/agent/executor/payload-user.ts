/**
 * The unprivileged user payloads run as when the agent runs as root
 * (`payloadUser`). Resolved from /etc/passwd (no native modules); the state
 * directory is made traversable (o+x, never readable) so that user reaches
 * its payload directory.
 */
import { readFileSync } from 'node:fs';
import { chmod, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { VmpilotError } from '../../shared/errors.js';

/** A resolved user. */
export interface PayloadUser {
  name: string;
  uid: number;
  gid: number;
}

/** Find `nameOrUid` in passwd text ("name:x:uid:gid:..."). Pure. */
export function findUser(passwd: string, nameOrUid: string): PayloadUser | null {
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (f.length < 4) continue;
    const [name, , uid, gid] = f as [string, string, string, string];
    if (name === nameOrUid || uid === nameOrUid) return { name, uid: Number(uid), gid: Number(gid) };
  }
  if (/^\d+$/.test(nameOrUid)) return { name: nameOrUid, uid: Number(nameOrUid), gid: Number(nameOrUid) };
  return null;
}

/**
 * The user to run payloads as: null when `configured` is null or the agent
 * is not root (it cannot switch users: payloads run as the agent). Throws
 * VMP_CONFIG when the configured user does not exist.
 */
export function resolvePayloadUser(configured: string | null, agentUid: number, passwdFile = '/etc/passwd'): PayloadUser | null {
  if (configured === null || agentUid !== 0) return null;
  let passwd = '';
  try {
    passwd = readFileSync(passwdFile, 'utf8');
  } catch {
    // numeric uids still work
  }
  const user = findUser(passwd, configured);
  if (!user) throw new VmpilotError('VMP_CONFIG', `payloadUser "${configured}": no such user in ${passwdFile}; expected a user name or uid`);
  if (user.uid === 0) throw new VmpilotError('VMP_CONFIG', `payloadUser "${configured}" is root; expected an unprivileged user`);
  return user;
}

/** Let `user` traverse the state dir to its payload directories (adds o+x to the state dir and payloads/). */
export async function openStateDirTo(stateDir: string): Promise<void> {
  const payloads = path.join(stateDir, 'payloads');
  await mkdir(payloads, { recursive: true });
  for (const dir of [stateDir, payloads]) {
    const { mode } = await stat(dir);
    await chmod(dir, (mode & 0o7777) | 0o001);
  }
}
