/**
 * Per-instance secrets: the idempotency key that names an instance's
 * resource at its driver, and the one-time registration credential its
 * machine's pilot registers with (in its user-data, batch script or
 * environment) instead of the shared registration token. Only the
 * credential's sha256 is stored; the server accepts it for one registration,
 * which ties the pilot to its instance.
 */
import { createHash, randomBytes } from 'node:crypto';

/** How the director makes keys and credentials (a port, so tests can make them predictable). */
export interface Secrets {
  /** A new idempotency key for an instance of `endpoint`, starting with `prefix`. */
  key(prefix: string): string;
  /** A new registration credential. */
  credential(): string;
}

/** The prefix of the credentials, so that a leaked one is recognised for what it is. */
export const CREDENTIAL_PREFIX = 'vmpi_';

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** Random keys and credentials from node's crypto. */
export const randomSecrets: Secrets = {
  key: (prefix) => prefix + [...randomBytes(10)].map((b) => BASE32[b & 31]).join(''),
  credential: () => CREDENTIAL_PREFIX + randomBytes(32).toString('base64url'),
};

/** The sha256 of a credential, hex: what the store keeps. */
export function credentialHash(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/**
 * The tag every resource of one endpoint of one director carries: the prefix
 * of its keys. `directorId` tells two servers sharing a cluster apart; the
 * endpoint name tells two endpoints on one cluster apart, so neither removes
 * the other's machines as orphans.
 */
export function resourcePrefix(directorId: string, endpoint: string): string {
  return `vmp-${directorId}-${endpoint}-`;
}

/** A director id: 4 to 12 lower-case letters and digits. */
export const DIRECTOR_ID = /^[a-z0-9]{4,12}$/;
