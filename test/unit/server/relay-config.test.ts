import { describe, expect, it } from 'vitest';
import { serverConfigFrom } from '../../../src/server/config.js';
import { NO_RELAYS, relaysFrom } from '../../../src/server/relay-config.js';

const HASH = 'a'.repeat(64);
const OTHER = 'b'.repeat(64);

describe('relays in serve --config', () => {
  it('reads the known relays and whether registrations need one', () => {
    const c = serverConfigFrom({ relays: { required: true, tokens: [{ name: 'login01', site: 'CC-IN2P3', sha256: HASH }, { name: 'login02', site: 'CC-IN2P3', sha256: OTHER }] } });
    expect(c.relays).toEqual({ required: true, known: [{ name: 'login01', site: 'CC-IN2P3', sha256: HASH }, { name: 'login02', site: 'CC-IN2P3', sha256: OTHER }] });
    expect(Object.isFrozen(c.relays.known)).toBe(true);
    expect(serverConfigFrom({}).relays).toBe(NO_RELAYS);
    expect(relaysFrom({ tokens: [] }, 'f')).toEqual({ required: false, known: [] });
  });

  it('names the key, the value and what was expected', () => {
    expect(() => relaysFrom([], 'f.yaml')).toThrow(/f\.yaml: relays must be a mapping/);
    expect(() => relaysFrom({ require: true }, 'f')).toThrow(/relays\.require is not a relay setting \(known: required, tokens\)/);
    expect(() => relaysFrom({ required: 'yes', tokens: [] }, 'f')).toThrow(/relays\.required is "yes"; expected true or false/);
    expect(() => relaysFrom({ tokens: { login01: HASH } }, 'f')).toThrow(/relays\.tokens must be a list/);
    expect(() => relaysFrom({ tokens: [{ name: 'login01', site: 'S', sha256: 'secret' }] }, 'f')).toThrow(/relays\.tokens\[0\]\.sha256 is "secret"; expected the sha256 of the relay's token/);
    expect(() => relaysFrom({ tokens: [{ name: 'a b', site: 'S', sha256: HASH }] }, 'f')).toThrow(/relays\.tokens\[0\]\.name is "a b"/);
    expect(() => relaysFrom({ tokens: [{ name: 'a', sha256: HASH }] }, 'f')).toThrow(/relays\.tokens\[0\]\.site is undefined/);
    expect(() => relaysFrom({ tokens: [{ name: 'a', site: 'S', sha256: HASH, token: 'x' }] }, 'f')).toThrow(/relays\.tokens\[0\]\.token is not a relay field/);
    expect(() => relaysFrom({ tokens: [{ name: 'a', site: 'S', sha256: HASH }, { name: 'a', site: 'S', sha256: OTHER }] }, 'f')).toThrow(/relays\.tokens\[1\]\.name "a" is given twice/);
    expect(() => relaysFrom({ tokens: [{ name: 'a', site: 'S', sha256: HASH }, { name: 'b', site: 'S', sha256: HASH }] }, 'f')).toThrow(/the same as relay "a"'s/);
    expect(() => relaysFrom({ required: true }, 'f')).toThrow(/relays\.required is true but relays\.tokens lists no relay/);
    expect(() => serverConfigFrom({ relay: {} }, 'f')).toThrow(/unknown key "relay" \(known: groups, endpoints, limits, relays,/);
  });
});
