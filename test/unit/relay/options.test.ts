import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { relayOptions } from '../../../src/relay/options.js';
import { stillHeld, STALE_MS } from '../../../src/relay/spool-lock.js';
import { tempDir } from '../server/helpers.js';

describe('vmpilot relay options', () => {
  it('reads the flags, the token from its file, and the defaults', () => {
    const tmp = tempDir();
    const file = path.join(tmp.dir, 'relay.token');
    writeFileSync(file, 'relay-token-0123456789abcdef\n');
    const o = relayOptions({ server: 'https://pilots.example.org', listen: '0.0.0.0:8081', relayTokenFile: file }, { HOME: '/home/pilot' });
    expect(o).toMatchObject({ listen: { host: '0.0.0.0', port: 8081 }, spool: null, relayToken: 'relay-token-0123456789abcdef', cacheDir: '/home/pilot/.cache/vmpilot-relay', callSockets: 16, pollSockets: 1024, pollMs: 200, pollMaxMs: 1000, outputs: null, tls: null, cacheMaxBytes: 4096 * 1024 * 1024 });
    expect(relayOptions({ server: 'http://s:1', spool: '/shared/vmpilot' }, { VMPILOT_RELAY_TOKEN: 'from-env-0123456789', XDG_CACHE_HOME: '/scratch/c' })).toMatchObject({ spool: '/shared/vmpilot', relayToken: 'from-env-0123456789', cacheDir: '/scratch/c/vmpilot-relay' });
    tmp.remove();
  });

  it('names the flag, the value and what was expected', () => {
    const o = (flags: Record<string, unknown>) => () => relayOptions({ server: 'http://s:1', listen: '127.0.0.1:0', ...flags }, {});
    expect(o({ server: undefined })).toThrow(/--server URL is required/);
    expect(o({ server: 'ftp://s' })).toThrow(/--server "ftp:\/\/s": expected an http:\/\/ or https:\/\/ URL/);
    expect(o({ listen: 'everywhere' })).toThrow(/--listen "everywhere": expected HOST:PORT/);
    expect(() => relayOptions({ server: 'http://s:1' }, {})).toThrow(/give --listen HOST:PORT .*, --spool DIR .*, or both/);
    expect(o({ relayToken: 'secret' })).toThrow(/--relay-token: a token on the command line is visible to every process/);
    expect(o({ relayTokenFile: '/nonexistent/relay.token' })).toThrow(/relay token file \/nonexistent\/relay\.token cannot be read/);
    expect(o({ connections: '0' })).toThrow(/--connections "0": expected a whole number from 1 to 1024/);
    expect(o({ pollMs: '5' })).toThrow(/--poll-ms "5": expected a whole number from 10 to 60000/);
    expect(o({ pollMs: '500', pollMaxMs: '100' })).toThrow(/--poll-max-ms 100 is less than --poll-ms 500/);
    expect(o({ outputs: 'se.example.org' })).toThrow(/--outputs "se\.example\.org"/);
    expect(o({ artifactsFrom: ['file:///etc/'] })).toThrow(/--artifacts-from "file:\/\/\/etc\/"/);
    expect(o({ tlsCert: '/etc/vmpilot/relay.pem' })).toThrow(/--tls-key is missing: --tls-cert and --tls-key go together/);
    expect(o({ tlsKey: '/etc/vmpilot/relay.key' })).toThrow(/--tls-cert is missing/);
    expect(o({ tlsCert: '/nonexistent/relay.pem', tlsKey: '/nonexistent/relay.key' })).toThrow(/--tls-cert \/nonexistent\/relay\.pem cannot be read/);
    expect(() => relayOptions({ server: 'http://s:1', spool: '/shared', tlsCert: '/a', tlsKey: '/b' }, {})).toThrow(/--tls-cert is for the --listen side/);
    expect(o({ cacheMaxMb: '0' })).toThrow(/--cache-max-mb "0": expected a whole number from 1 to/);
  });

  it('one relay per spool: a lock is held while its relay lives, and taken over once it is gone', () => {
    const now = 1_000_000;
    const alive = (pid: number) => pid === 4242;
    expect(stillHeld({ host: 'login01', pid: 4242, at: 0 }, 'login01', now, alive)).toBe(true);
    expect(stillHeld({ host: 'login01', pid: 4243, at: now }, 'login01', now, alive)).toBe(false); // killed: its pid is gone
    expect(stillHeld({ host: 'login02', pid: 1, at: now - STALE_MS + 1000 }, 'login01', now, alive)).toBe(true); // another login node, still refreshing
    expect(stillHeld({ host: 'login02', pid: 1, at: now - STALE_MS - 1 }, 'login01', now, alive)).toBe(false);
  });
});
