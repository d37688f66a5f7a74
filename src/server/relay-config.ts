/**
 * The `relays` key of `serve --config`: which relays (`vmpilot relay` on a
 * login node, docs/hpc.md) the server knows, by the sha256 of each relay's
 * token, with the relay's name and its site; and whether registrations must
 * come through one of them.
 *
 * ```yaml
 * relays:
 *   required: true      # a pilot may register only through a known relay (default false)
 *   tokens:
 *     - { name: login01, site: CC-IN2P3, sha256: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8 }
 * ```
 *
 * Pure: validated once, frozen; an error names the key, the value and what
 * was expected (VMP_CONFIG).
 */
import { VmpilotError } from '../shared/errors.js';

/** One relay the server knows. */
export interface KnownRelay {
  readonly name: string;
  readonly site: string;
  /** sha256 of its token, 64 lower-case hex digits. */
  readonly sha256: string;
}

/** What the server does with relays. */
export interface RelayPolicy {
  /** Registrations must come through a known relay. */
  readonly required: boolean;
  readonly known: readonly KnownRelay[];
}

/** No relay known, none required: every pilot comes directly (the default). */
export const NO_RELAYS: RelayPolicy = Object.freeze({ required: false, known: Object.freeze([]) });

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const EXAMPLE = 'relays: { tokens: [{ name: login01, site: CC-IN2P3, sha256: <sha256 of the token> }] }';

/** Validate the `relays` value of a server configuration; `where` names the file in errors. */
export function relaysFrom(value: unknown, where: string): RelayPolicy {
  const bad = (message: string) => new VmpilotError('VMP_CONFIG', `${where}: ${message}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(`relays must be a mapping, e.g. ${EXAMPLE}`);
  const raw = value as Record<string, unknown>;
  for (const key of Object.keys(raw)) if (key !== 'required' && key !== 'tokens') throw bad(`relays.${key} is not a relay setting (known: required, tokens)`);
  if (raw.required !== undefined && typeof raw.required !== 'boolean') throw bad(`relays.required is ${JSON.stringify(raw.required)}; expected true or false`);
  const tokens = raw.tokens ?? [];
  if (!Array.isArray(tokens)) throw bad(`relays.tokens must be a list, e.g. ${EXAMPLE}`);
  const known: KnownRelay[] = [];
  tokens.forEach((entry: unknown, i) => {
    const at = `relays.tokens[${i}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw bad(`${at} must be { name, site, sha256 }`);
    const e = entry as Record<string, unknown>;
    for (const key of Object.keys(e)) if (!['name', 'site', 'sha256'].includes(key)) throw bad(`${at}.${key} is not a relay field (known: name, site, sha256)`);
    for (const key of ['name', 'site'] as const) {
      if (typeof e[key] !== 'string' || !NAME.test(e[key] as string)) throw bad(`${at}.${key} is ${JSON.stringify(e[key])}; expected 1 to 100 letters, digits, _ . - (starting with a letter or digit)`);
    }
    if (typeof e.sha256 !== 'string' || !SHA256.test(e.sha256)) {
      throw bad(`${at}.sha256 is ${JSON.stringify(e.sha256)}; expected the sha256 of the relay's token, 64 lower-case hex digits (vmpilot-server relay-token prints it)`);
    }
    const relay = { name: e.name as string, site: e.site as string, sha256: e.sha256 };
    if (known.some((k) => k.name === relay.name)) throw bad(`${at}.name "${relay.name}" is given twice; each relay needs a name of its own`);
    if (known.some((k) => k.sha256 === relay.sha256)) throw bad(`${at}.sha256 is the same as relay "${known.find((k) => k.sha256 === relay.sha256)!.name}"'s; give each relay a token of its own`);
    known.push(Object.freeze(relay));
  });
  const required = raw.required === true;
  if (required && known.length === 0) throw bad('relays.required is true but relays.tokens lists no relay: no pilot could register');
  return Object.freeze({ required, known: Object.freeze(known) });
}
