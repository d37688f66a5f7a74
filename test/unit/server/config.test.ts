import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SERVER_CONFIG, loadServerConfig, serverConfigFrom } from '../../../src/server/config.js';
import { tempDir } from './helpers.js';

describe('server config file', () => {
  it('reads groups and shares and the policies, with defaults for the rest', () => {
    const tmp = tempDir();
    const file = path.join(tmp.dir, 'server.yaml');
    writeFileSync(file, 'groups:\n  atlas: { share: 70 }\n  cms: { share: 30 }\nusageHalfLifeSec: 600\nstallAfterSec: 120\n');
    const c = loadServerConfig(file);
    expect([...c.shares]).toEqual([['atlas', 70], ['cms', 30]]);
    expect(c).toMatchObject({ usageHalfLifeSec: 600, stallAfterSec: 120, maxAttempts: 3, credentialTtlSec: 3600, defaultShare: 1 });
    expect(Object.isFrozen(c)).toBe(true);
    tmp.remove();
  });

  it('names the key, the value and what was expected', () => {
    expect(() => serverConfigFrom({ stalAfterSec: 1 }, 'f.yaml')).toThrow(/f\.yaml: unknown key "stalAfterSec"/);
    expect(() => serverConfigFrom({ maxAttempts: 0 })).toThrow(/maxAttempts is 0; expected a number from 1 to 100/);
    expect(() => serverConfigFrom({ groups: { atlas: { share: 'a lot' } } })).toThrow(/groups\.atlas\.share is "a lot"/);
    expect(() => serverConfigFrom({ groups: { 'bad name': { share: 1 } } })).toThrow(/groups\.bad name/);
    expect(() => loadServerConfig('/nonexistent/server.yaml')).toThrow(/cannot read --config \/nonexistent/);
    expect(serverConfigFrom(null)).toBe(DEFAULT_SERVER_CONFIG);
    expect(() => serverConfigFrom({ groups: { atlas: { share: 1, isolated: true } } })).toThrow(/groups\.atlas: unknown key "isolated" \(known: share, requireIsolation\)/);
    expect(() => serverConfigFrom({ groups: { atlas: { share: 1, requireIsolation: 'yes' } } })).toThrow(/groups\.atlas\.requireIsolation is "yes"; expected true or false/);
  });

  it("takes the director's cycle time, 5 s unless told, and names a bad one", () => {
    expect(DEFAULT_SERVER_CONFIG.directorCycleSec).toBe(5);
    expect(serverConfigFrom({ directorCycleSec: 30 }).directorCycleSec).toBe(30);
    expect(() => serverConfigFrom({ directorCycleSec: 0 }, 'f.yaml')).toThrow('f.yaml: directorCycleSec is 0; expected a number from 1 to 86400');
  });

  it('keeps the groups that require isolation', () => {
    const c = serverConfigFrom({ groups: { atlas: { share: 70, requireIsolation: true }, cms: { share: 30, requireIsolation: false }, lhcb: 5 } });
    expect([...c.requireIsolation]).toEqual(['atlas']);
    expect([...c.shares]).toEqual([['atlas', 70], ['cms', 30], ['lhcb', 5]]);
    expect(DEFAULT_SERVER_CONFIG.requireIsolation.size).toBe(0);
  });
});
