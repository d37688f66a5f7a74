import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../../../src/agent/config/load.js';
import { isVmpilotError } from '../../../../src/shared/errors.js';

const file = (text: string) => () => text;

describe('loadConfig', () => {
  it('applies defaults', () => {
    const c = loadConfig({ flags: {}, env: { PATH: '/bin', VMPILOT_PILOT_TOKEN: '' }, cwd: '/w' });
    expect(c).toMatchObject({ server: null, token: null, tokenFile: null, isolation: 'auto', cores: null, idleTimeoutSec: 300, halt: { kind: 'exit' }, graceSec: 30, stateDir: '/w/.vmpilot-state', lifetimeSec: null });
    expect(Object.isFrozen(c)).toBe(true);
    expect(c.payloadBaseEnv).toEqual({ PATH: '/bin' });
  });

  it('takes flags over env over file over defaults', () => {
    const read = file('server: http://file:1\ntoken: f\ncores: 2\nidleTimeoutSec: 10\ngraceSec: 5\nhalt: poweroff\n');
    const env = { VMPILOT_SERVER: 'http://env:1', VMPILOT_CORES: '3', VMPILOT_CONFIG: 'c.yaml' };
    const c = loadConfig({ flags: { cores: '4' }, env, cwd: '/w', readFile: read, parseYaml });
    expect(c).toMatchObject({ server: 'http://env:1', token: 'f', cores: 4, idleTimeoutSec: 10, graceSec: 5, halt: { kind: 'poweroff' } });
  });

  it('reads halt commands and memory', () => {
    const c = loadConfig({ flags: { halt: 'echo bye', memoryMb: '2048', idleTimeout: '0' }, env: {} });
    expect(c.halt).toEqual({ kind: 'command', command: 'echo bye' });
    expect(c.memoryMb).toBe(2048);
    expect(c.idleTimeoutSec).toBe(0);
  });

  it('does not pass secrets to payloads', () => {
    const c = loadConfig({ flags: {}, env: { PATH: '/x', HOME: '/h', VMPILOT_PILOT_TOKEN: 'secret', AWS_SECRET_ACCESS_KEY: 'k' } });
    expect(c.payloadBaseEnv).toEqual({ PATH: '/x', HOME: '/h' });
  });

  const bad: [string, Parameters<typeof loadConfig>[0], string, RegExp][] = [
    ['flag', { flags: { cores: 'four' }, env: {} }, 'VMP_USAGE', /--cores "four": expected an integer from 1 to 4096/],
    ['env', { flags: {}, env: { VMPILOT_GRACE_SEC: '-1' } }, 'VMP_CONFIG', /VMPILOT_GRACE_SEC "-1": expected an integer from 0 to 3600/],
    ['file value', { flags: { config: 'c.yaml' }, env: {}, parseYaml, readFile: file('cores: 0\n') }, 'VMP_CONFIG', /cores in config file c.yaml 0: expected an integer/],
    ['file key', { flags: { config: 'c.yaml' }, env: {}, parseYaml, readFile: file('core: 1\n') }, 'VMP_CONFIG', /unknown key "core"/],
    ['file yaml', { flags: { config: 'c.yaml' }, env: {}, parseYaml, readFile: file('a: [\n') }, 'VMP_CONFIG', /not valid YAML/],
    ['missing file', { flags: { config: 'c.yaml' }, env: {}, parseYaml, readFile: () => { throw new Error('ENOENT'); } }, 'VMP_CONFIG', /cannot be read/],
    ['url', { flags: { server: 'localhost:8080' }, env: {} }, 'VMP_USAGE', /--server "localhost:8080": expected an http:\/\/ or https:\/\/ URL/],
    ['level', { flags: { logLevel: 'loud' }, env: {} }, 'VMP_USAGE', /expected one of fatal/],
  ];
  it.each(bad)('names key, value and expectation for a bad %s', (_, sources, code, message) => {
    try {
      loadConfig(sources);
      expect.unreachable();
    } catch (err) {
      expect(isVmpilotError(err)).toBe(true);
      expect((err as { code: string }).code).toBe(code);
      expect((err as Error).message).toMatch(message);
    }
  });

  it('requires server and token for run', () => {
    expect(() => loadConfig({ flags: {}, env: { VMPILOT_PILOT_TOKEN: 't' } }, { require: ['server', 'token'] })).toThrow(/--server is required/);
    expect(() => loadConfig({ flags: { server: 'http://s' }, env: {} }, { require: ['server', 'token'] })).toThrow(
      /the registration token is required: give --token-file FILE, VMPILOT_PILOT_TOKEN, VMPILOT_PILOT_TOKEN_FILE/,
    );
  });
});

describe('the registration token', () => {
  const files = (map: Record<string, string>) => (f: string) => {
    if (f in map) return map[f]!;
    throw new Error(`ENOENT: no such file ${f}`);
  };

  it('never from the command line: --token is refused, saying where a token goes instead', () => {
    try {
      loadConfig({ flags: { token: 'secret' }, env: {} });
      expect.unreachable();
    } catch (err) {
      expect((err as { code: string }).code).toBe('VMP_USAGE');
      expect((err as Error).message).toMatch(/--token: a token on the command line is visible to every process on this node .*--token-file FILE.*VMPILOT_PILOT_TOKEN/);
      expect((err as Error).message).not.toContain('secret');
    }
  });

  it('from VMPILOT_PILOT_TOKEN, not from VMPILOT_TOKEN (the admin token of the server commands)', () => {
    expect(loadConfig({ flags: {}, env: { VMPILOT_PILOT_TOKEN: 'pilot-t', VMPILOT_TOKEN: 'admin-t' } }).token).toBe('pilot-t');
    expect(loadConfig({ flags: {}, env: { VMPILOT_TOKEN: 'admin-t' } }).token).toBeNull();
  });

  it('from --token-file (or VMPILOT_PILOT_TOKEN_FILE, or tokenFile in the config file), read once, its path kept', () => {
    const readFile = files({ '/etc/vmpilot/token': 'from-file\n', '/w/rel': 'relative\n', '/w/c.yaml': 'tokenFile: /etc/vmpilot/token\n' });
    expect(loadConfig({ flags: { tokenFile: '/etc/vmpilot/token' }, env: {}, readFile })).toMatchObject({ token: 'from-file', tokenFile: '/etc/vmpilot/token' });
    expect(loadConfig({ flags: {}, env: { VMPILOT_PILOT_TOKEN_FILE: 'rel' }, cwd: '/w', readFile })).toMatchObject({ token: 'relative', tokenFile: '/w/rel' });
    expect(loadConfig({ flags: { config: 'c.yaml' }, env: {}, cwd: '/w', readFile, parseYaml })).toMatchObject({ token: 'from-file', configFile: '/w/c.yaml' });
    // the stronger source wins: a flag over the environment, the environment over the file
    expect(loadConfig({ flags: { tokenFile: '/etc/vmpilot/token' }, env: { VMPILOT_PILOT_TOKEN: 'env' }, readFile }).token).toBe('from-file');
    expect(loadConfig({ flags: { config: 'c.yaml' }, env: { VMPILOT_PILOT_TOKEN: 'env' }, cwd: '/w', readFile, parseYaml })).toMatchObject({ token: 'env', tokenFile: null });
  });

  it.each([
    ['missing', { tokenFile: '/nope' }, {}, /token file \/nope cannot be read: ENOENT.*expected a file holding the registration token/],
    ['empty', { tokenFile: '/empty' }, {}, /token file \/empty: expected the registration token alone on one line, found nothing/],
    ['two lines', { tokenFile: '/two' }, {}, /token file \/two: expected the registration token alone on one line, found spaces or several lines/],
    ['both in the environment', {}, { VMPILOT_PILOT_TOKEN: 'a', VMPILOT_PILOT_TOKEN_FILE: '/two' }, /both a token and a token file were given \(VMPILOT_PILOT_TOKEN and VMPILOT_PILOT_TOKEN_FILE\); give one/],
  ])('a token file that is %s: a clear error naming it', (_what, flags, env, message) => {
    const readFile = files({ '/empty': '\n', '/two': 'a\nb\n' });
    expect(() => loadConfig({ flags, env, readFile })).toThrow(message);
  });

  it('takes --isolation auto, bwrap, unshare or none', () => {
    expect(loadConfig({ flags: { isolation: 'unshare' }, env: {} }).isolation).toBe('unshare');
    expect(() => loadConfig({ flags: {}, env: { VMPILOT_ISOLATION: 'chroot' } })).toThrow(/VMPILOT_ISOLATION "chroot": expected one of auto, bwrap, unshare, none/);
  });
});
