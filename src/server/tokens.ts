/**
 * The server's two shared secrets: the admin token and the pilot registration
 * token. Each comes from its flag, else its environment variable, else the
 * hash stored by an earlier start, else it is generated, stored (hashed) and
 * shown once. Only hashes are kept; the server never needs the token itself.
 */
import { newSecret, sha256Hex, type TokenHashes } from './api/auth.js';
import type { Store } from './store/store.js';

/** Settings keys of the stored hashes. */
export const TOKEN_SETTINGS = { admin: 'admin_token_sha256', pilot: 'pilot_token_sha256' } as const;

/** The tokens given by flag or environment (flag first), when any. */
export interface GivenTokens {
  admin?: string | undefined;
  pilot?: string | undefined;
}

/** The hashes to accept, and the tokens generated now (to show once). */
export interface ResolvedTokens {
  hashes: TokenHashes;
  generated: { admin?: string; pilot?: string };
}

/** Resolve both tokens, generating and storing the ones that are missing. */
export async function resolveTokens(store: Store, given: GivenTokens): Promise<ResolvedTokens> {
  const generated: ResolvedTokens['generated'] = {};
  const one = async (kind: 'admin' | 'pilot'): Promise<string> => {
    const token = given[kind];
    if (token) return sha256Hex(token);
    const stored = await store.getSetting(TOKEN_SETTINGS[kind]);
    if (stored) return stored;
    const fresh = newSecret();
    const hash = sha256Hex(fresh);
    await store.setSetting(TOKEN_SETTINGS[kind], hash);
    generated[kind] = fresh;
    return hash;
  };
  const adminHash = await one('admin');
  const pilotHash = await one('pilot');
  return { hashes: { adminHash, pilotHash }, generated };
}
