/**
 * Who is calling: the admin, a pilot-to-be (the shared registration token,
 * or a director instance's one-time credential) or a registered pilot (its
 * own credential). Secrets are stored only as sha256
 * hashes and compared in constant time. A missing or unknown token is 401;
 * a known token on a route it may not use is 403.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { systemClock, type Clock } from '../../shared/clock.js';
import { VmpilotError } from '../../shared/errors.js';
import { CREDENTIAL_PREFIX } from '../director/credential.js';
import type { Store } from '../store/store.js';
import type { RefusalLog } from './refusal-log.js';

/** What a caller with an instance credential that is no longer valid is told. */
export const SPENT_INSTANCE_CREDENTIAL =
  'the instance credential was already used, or its instance is gone (failed, halted or deleted): it registers one pilot, once; ' +
  'start a new instance (`vmpilot-server instances start`, or let the director start one), or register with the shared registration token';

/** The sha256 of a secret, hex: what is stored instead of the secret. */
export function sha256Hex(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** A new random secret, url-safe (256 bits). */
export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** True when `secret` hashes to `hashHex`, compared in constant time. */
export function matchesHash(secret: string, hashHex: string): boolean {
  return hashesEqual(sha256Hex(secret), hashHex);
}

/** True when two hex hashes are the same, compared in constant time. */
function hashesEqual(aHex: string, bHex: string): boolean {
  const a = Buffer.from(aHex, 'hex');
  const b = Buffer.from(bHex, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The hashed tokens the server accepts. */
export interface TokenHashes {
  adminHash: string;
  pilotHash: string;
}

/** The role a token plays. */
export type Caller =
  | { kind: 'admin' }
  | { kind: 'registrar' }
  /** A machine the director started, with its one-time credential (`vmpi_…`), before its pilot registered. */
  | { kind: 'instance'; instanceId: number }
  | { kind: 'pilot'; pilotId: number }
  /** `expired`: a pilot credential past its expiry; `spentInstance`: an instance credential no longer valid. */
  | { kind: 'unknown'; expired?: boolean; spentInstance?: boolean };

/** The bearer token of a request, or null. */
export function bearerToken(request: FastifyRequest): string | null {
  const h = request.headers.authorization;
  if (typeof h !== 'string') return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1] ?? null;
}

/** Tells who a request comes from, and refuses it when it may not call a route. */
export class Authenticator {
  constructor(
    private readonly tokens: TokenHashes,
    private readonly store: Store,
    private readonly clock: Clock = systemClock,
    /** Where refusals are logged, at a rate (default: one line each on the request's logger). */
    private readonly refusals: RefusalLog | null = null,
  ) {}

  /**
   * Who holds `token`. A pilot credential is looked up by its hash (an index
   * lookup: the hash, not the secret, is compared) and counts only until it
   * expires.
   */
  async identify(token: string): Promise<Caller> {
    // hashed once: every comparison and lookup below is of the hash (one SHA-256 per request, not three)
    const hash = sha256Hex(token);
    if (hashesEqual(hash, this.tokens.adminHash)) return { kind: 'admin' };
    if (hashesEqual(hash, this.tokens.pilotHash)) return { kind: 'registrar' };
    const instanceLike = token.startsWith(CREDENTIAL_PREFIX);
    if (instanceLike) {
      // valid only while its instance is coming and no pilot registered with it (store.ts instanceByCredential)
      const instance = await this.store.instanceByCredential(hash);
      if (instance) return { kind: 'instance', instanceId: instance.id };
    }
    // (a pilot credential is random base64url: it may, once in a billion, start with the prefix too)
    const owner = await this.store.credentialOwner(hash);
    if (!owner) return instanceLike ? { kind: 'unknown', spentInstance: true } : { kind: 'unknown' };
    if (owner.expiresAt !== null && owner.expiresAt <= this.clock.now()) return { kind: 'unknown', expired: true };
    return { kind: 'pilot', pilotId: owner.pilotId };
  }

  /**
   * Let the request through when `allowed` says its caller may call this
   * route; otherwise throw and log the source address (at a rate: a flood
   * of bad tokens is a few lines, with counts). A missing or unknown
   * token is VMP_UNAUTHORIZED (401). A known token on the wrong route is
   * VMP_FORBIDDEN (403) when `forbidKnown` (pilot routes: another pilot's id),
   * else 401: the admin and registration routes accept one token only.
   */
  async require(
    request: FastifyRequest,
    what: string,
    allowed: (caller: Caller) => boolean,
    forbidKnown = false,
  ): Promise<Caller> {
    const token = bearerToken(request);
    const caller: Caller = token === null ? { kind: 'unknown' } : await this.identify(token);
    if (allowed(caller)) return caller;
    const fields = { ip: request.ip, route: request.routeOptions.url, caller: caller.kind };
    const warn = (message: string, f: Record<string, unknown>) => (this.refusals ? this.refusals.warn(message, f) : request.log.warn(f, message));
    if (caller.kind === 'unknown' || !forbidKnown) {
      const expired = caller.kind === 'unknown' && caller.expired === true;
      const spent = caller.kind === 'unknown' && caller.spentInstance === true;
      warn('authentication failed', { ...fields, ...(expired ? { expired } : {}), ...(spent ? { instanceCredential: 'spent or unknown' } : {}) });
      const message =
        token === null ? `${what} needs a bearer token`
        : expired ? `the pilot credential has expired; register again`
        : spent ? SPENT_INSTANCE_CREDENTIAL
        : `the token is not valid for ${what}`;
      throw new VmpilotError('VMP_UNAUTHORIZED', message);
    }
    warn('authorization refused', fields);
    throw new VmpilotError('VMP_FORBIDDEN', `this token may not be used for ${what}`);
  }
}
