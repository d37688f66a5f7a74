/**
 * What a relay (`vmpilot relay`, src/relay/) and the server agree on. A relay
 * forwards the pilot protocol unchanged, each pilot's own bearer token
 * included, and adds its own relay token in one header, so that the server
 * knows which relay (and site) a pilot came through and can refuse relays it
 * does not know. The header is the relay's, never a pilot's: a relay strips
 * one sent by a client before adding its own.
 */

/** The header that carries the relay's own token (lower case, as node spells received headers). */
export const RELAY_TOKEN_HEADER = 'x-vmpilot-relay-token';

/** The relay a pilot registered through, as the server records it (`serve --config` relays.tokens). */
export interface RelayRef {
  /** The relay's name in the server's configuration, e.g. `login01`. */
  name: string;
  /** The site it serves, e.g. `CC-IN2P3`. */
  site: string;
}

/**
 * The relay's artifact route: `GET /v1/relay/artifact?url=URL&sha256=HEX`
 * fetches a bootstrap artifact once over the wide-area link, checks its
 * sha256 and serves it from the relay's cache (only from the prefixes the
 * relay was given with `--artifacts-from`).
 */
export const RELAY_ARTIFACT_PATH = '/v1/relay/artifact';

/** Where an agent behind the relay at `relay` downloads the artifact at `url` with `sha256`. Pure. */
export function relayArtifactUrl(relay: string, url: string, sha256: string): string {
  const at = new URL(RELAY_ARTIFACT_PATH.slice(1), relay.endsWith('/') ? relay : `${relay}/`);
  at.searchParams.set('url', url);
  at.searchParams.set('sha256', sha256);
  return at.href;
}
