/**
 * Relays: a request that carries a relay token (RELAY_TOKEN_HEADER, added by
 * `vmpilot relay`) must carry one the server knows (`relays.tokens` in
 * `serve --config`, stored as sha256 and compared in constant time), or it is
 * refused (401) whatever the pilot's own token says. With `relays.required`
 * a registration that came through no relay is refused (403). The relay a
 * registration came through is kept for the register route (`relayOf`), which
 * records it with the pilot. The relay token says which relay forwarded a
 * call, nothing more: each call is still authorized by the pilot's own token.
 *
 * Per-address limits (limits.ts): every node behind a relay reaches the
 * server from the relay's one address, so a registration that came through
 * a known relay is counted under the node's address as the relay saw it
 * (its `x-forwarded-for`, believed only beside a known relay token and kept
 * apart from direct addresses by the relay's name); one through a relay
 * that names no address (mailbox mode: the node has none) is limited by its
 * registration token alone (`registrationAddressKey`).
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { RELAY_TOKEN_HEADER, type RelayRef } from '../../protocol/relay.js';
import { routes } from '../../protocol/paths.js';
import { VmpilotError } from '../../shared/errors.js';
import type { KnownRelay, RelayPolicy } from '../relay-config.js';
import { sha256Hex } from './auth.js';

const through = new WeakMap<FastifyRequest, RelayRef>();

/** The relay `request` came through, once the check has let it in; null: it came directly. */
export function relayOf(request: FastifyRequest): RelayRef | null {
  return through.get(request) ?? null;
}

/** The longest forwarded address believed (an IPv6 address with a zone fits). */
const MAX_ADDRESS = 100;

/**
 * The key a registration counts under in the per-address limit: the source
 * address for a direct call; for one through a known relay, the relay's name
 * and the node's address it forwarded (the first of `forwardedFor`), or null
 * (no per-address limit) when it forwarded none. Pure.
 */
export function registrationAddressKey(ip: string, relay: RelayRef | null, forwardedFor: string | string[] | undefined): string | null {
  if (!relay) return ip;
  const first = (Array.isArray(forwardedFor) ? forwardedFor[0] : forwardedFor)?.split(',')[0]?.trim() ?? '';
  if (first === '' || first.length > MAX_ADDRESS) return null;
  return `${first} via relay ${relay.name}`;
}

/** The known relay whose token is `token`, or null. Every entry is compared, in constant time each. Pure. */
export function knownRelay(token: string, known: readonly KnownRelay[]): KnownRelay | null {
  const hash = Buffer.from(sha256Hex(token), 'hex');
  let found: KnownRelay | null = null;
  for (const relay of known) if (timingSafeEqual(hash, Buffer.from(relay.sha256, 'hex')) && found === null) found = relay;
  return found;
}

/** Check the relay token of every request (an onRequest hook, before the routes' own token checks). */
export function installRelayCheck(app: FastifyInstance, policy: RelayPolicy): void {
  app.addHook('onRequest', async (request) => {
    const header = request.headers[RELAY_TOKEN_HEADER];
    if (header === undefined) {
      if (policy.required && request.routeOptions.url === routes.register) {
        request.log.warn({ ip: request.ip }, 'registration refused: not through a relay');
        throw new VmpilotError(
          'VMP_FORBIDDEN',
          'this server takes registrations only through a relay (relays.required): start the agent with --server pointing at its site\'s vmpilot relay',
        );
      }
      return;
    }
    const relay = typeof header === 'string' ? knownRelay(header.trim(), policy.known) : null;
    if (!relay) {
      request.log.warn({ ip: request.ip, route: request.routeOptions.url }, 'relay token refused');
      throw new VmpilotError('VMP_UNAUTHORIZED', `the relay token (${RELAY_TOKEN_HEADER}) is not one this server knows: add its sha256 to relays.tokens in serve --config`);
    }
    through.set(request, { name: relay.name, site: relay.site });
  });
}
