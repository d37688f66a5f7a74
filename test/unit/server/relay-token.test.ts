import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../../src/server/api/auth.js';
import { relayTokenCommand } from '../../../src/server/relay-token.js';
import { serverConfigFrom } from '../../../src/server/config.js';
import { parse } from 'yaml';
import { tempDir } from './helpers.js';

describe('vmpilot-server relay-token', () => {
  it('makes a token file 0600 once, and prints the relays.tokens entry the server accepts', async () => {
    const tmp = tempDir();
    const out = path.join(tmp.dir, 'relay.token');
    const lines: string[] = [];
    await relayTokenCommand({ name: 'login01', site: 'CC-IN2P3', out }, (l) => void lines.push(l));
    const token = readFileSync(out, 'utf8').trim();
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(lines[0]).toMatch(/relay token written to .*relay\.token \(mode 0600\)/);
    const entry = lines[2]!.trim();
    expect(entry).toBe(`- { name: login01, site: CC-IN2P3, sha256: ${sha256Hex(token)} }`);
    // the printed line is YAML the server's configuration takes as it is
    const config = serverConfigFrom(parse(`relays:\n  tokens:\n    ${entry}\n`));
    expect(config.relays.known).toEqual([{ name: 'login01', site: 'CC-IN2P3', sha256: sha256Hex(token) }]);
    // a second run reads the token, it does not replace it
    const again: string[] = [];
    await relayTokenCommand({ name: 'login01', site: 'CC-IN2P3', out }, (l) => void again.push(l));
    expect(readFileSync(out, 'utf8').trim()).toBe(token);
    expect(again[2]).toBe(lines[2]);
    tmp.remove();
  });

  it('refuses bad input with what to do, and writes nothing', async () => {
    const tmp = tempDir();
    const out = path.join(tmp.dir, 'relay.token');
    await expect(relayTokenCommand({ name: 'login 01', site: 'S', out })).rejects.toMatchObject({ code: 'VMP_USAGE', message: expect.stringMatching(/--name "login 01": expected 1 to 100 letters/) });
    await expect(relayTokenCommand({ name: 'login01', out })).rejects.toMatchObject({ code: 'VMP_USAGE', message: expect.stringMatching(/--site is required/) });
    await expect(relayTokenCommand({ name: 'login01', site: 'S' })).rejects.toMatchObject({ code: 'VMP_USAGE', message: expect.stringMatching(/--out FILE is required/) });
    writeFileSync(out, 'two words\n');
    await expect(relayTokenCommand({ name: 'login01', site: 'S', out })).rejects.toMatchObject({ code: 'VMP_CONFIG', message: expect.stringMatching(/holds no relay token/) });
    expect(readFileSync(out, 'utf8')).toBe('two words\n');
    tmp.remove();
  });
});
