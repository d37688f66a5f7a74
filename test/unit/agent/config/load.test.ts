import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../../../src/agent/config/load.js';
import { isVmpilotError } from '../../../../src/shared/errors.js';

const file = (text: string) => () => text;

describe('loadConfig', () => {
  it('applies defaults', () => {
    const c = loadConfig({ flags: {}, env: { PATH: '/bin', VMPILOT_TOKEN: '' }, cwd: '/w' });
    expect(c).toMatchObject({ server: null, token: null, cores: null, idleTimeoutSec: 300, halt: { kind: 'exit' }, graceSec: 30, stateDir: '/w/.vmpilot-state', lifetimeSec: null });
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
    const c = loadConfig({ flags: {}, env: { PATH: '/x', HOME: '/h', VMPILOT_TOKEN: 'secret', AWS_SECRET_ACCESS_KEY: 'k' } });
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
    expect(() => loadConfig({ flags: { token: 't' }, env: {} }, { require: ['server', 'token'] })).toThrow(/--server is required/);
  });
});
