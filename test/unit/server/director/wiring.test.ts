import { describe, expect, it } from 'vitest';
import { endpointsFrom } from '../../../../src/server/director/endpoint-config.js';
import { MemoryDirectorStore } from '../../../../src/server/director/memory-store.js';
import { DIRECTOR_ID_SETTING, agentBaseEnv, demandPolicyOf, directorIdOf, localServerUrl, makeDirector, newDirectorId } from '../../../../src/server/director/wiring.js';
import type { InstanceStore } from '../../../../src/server/store/store.js';
import { FakeClock } from '../../../../src/shared/clock.js';
import { isVmpilotError } from '../../../../src/shared/errors.js';
import { silentLogger } from '../../../../src/shared/log.js';

/** A settings store in memory. */
function settings(initial: Record<string, string> = {}) {
  const map = new Map(Object.entries(initial));
  return { map, getSetting: async (k: string) => map.get(k) ?? null, setSetting: async (k: string, v: string) => void map.set(k, v) };
}

describe('director id', () => {
  it('is made on the first start and kept', async () => {
    const s = settings();
    const id = await directorIdOf(s);
    expect(id).toMatch(/^[a-z0-9]{4,12}$/);
    expect(s.map.get(DIRECTOR_ID_SETTING)).toBe(id);
    expect(await directorIdOf(s, () => 'other1')).toBe(id);
    expect(new Set(Array.from({ length: 50 }, newDirectorId)).size).toBe(50);
  });

  it('refuses a kept value that is not an id, naming the setting', async () => {
    const err = await directorIdOf(settings({ [DIRECTOR_ID_SETTING]: 'Bad-Id!' })).catch((e: unknown) => e);
    expect(isVmpilotError(err, 'VMP_CONFIG')).toBe(true);
    expect((err as Error).message).toContain('director.id is "Bad-Id!"');
  });
});

describe('what local agents get', () => {
  it('PATH, HOME and LANG only: no secret of the server', () => {
    const env = { PATH: '/usr/bin', HOME: '/root', LANG: 'C.UTF-8', VMPILOT_ADMIN_TOKEN: 'secret', VMPILOT_PILOT_TOKEN: 'secret', AWS_SECRET_ACCESS_KEY: 'x' };
    expect(agentBaseEnv(env)).toEqual({ PATH: '/usr/bin', HOME: '/root', LANG: 'C.UTF-8' });
    expect(agentBaseEnv({})).toEqual({ PATH: '/usr/local/bin:/usr/bin:/bin' });
  });

  it("the server's URL: a wildcard listen is reached at 127.0.0.1", () => {
    expect(localServerUrl('http://0.0.0.0:8080')).toBe('http://127.0.0.1:8080');
    expect(localServerUrl('https://[::]:8443')).toBe('https://127.0.0.1:8443');
    expect(localServerUrl('http://127.0.0.1:41234')).toBe('http://127.0.0.1:41234');
    expect(localServerUrl('https://pilots.example.org:8443')).toBe('https://pilots.example.org:8443');
  });

  it('demand is ordered by the server groups’ shares', () => {
    const shares = new Map([['atlas', 70]]);
    expect(demandPolicyOf({ shares, defaultShare: 2 })).toEqual({ shares, defaultShare: 2, defaultWallSec: 3600 });
  });
});

describe('makeDirector', () => {
  const base = () => {
    const s = settings();
    const store = Object.assign(new MemoryDirectorStore(), { getSetting: s.getSetting, setSetting: s.setSetting }) as unknown as InstanceStore & typeof s;
    return { s, store, clock: new FakeClock(), log: silentLogger(), serverUrl: () => 'http://127.0.0.1:9', baseEnv: { PATH: '/usr/bin' } };
  };

  it('makes none without endpoints', async () => {
    const b = base();
    expect(await makeDirector({ ...b, config: { endpoints: [], shares: new Map(), defaultShare: 1 } })).toBeNull();
    expect(b.s.map.size).toBe(0);
  });

  it('makes one driver per endpoint, under the kept id, not started', async () => {
    const b = base();
    const endpoints = endpointsFrom(
      { laptop: { driver: 'process', process: { workDir: '/tmp/vmpilot-wiring-test' }, shapes: { s: { cores: 1, memoryMb: 500 } } }, spare: { driver: 'process', process: { workDir: '/tmp/vmpilot-wiring-test2' }, shapes: { s: { cores: 1, memoryMb: 500 } } } },
      'test.yaml',
    );
    const d = (await makeDirector({ ...b, config: { endpoints, shares: new Map(), defaultShare: 1 }, agentDir: '/nonexistent' }))!;
    expect(d.directorId).toBe(b.s.map.get(DIRECTOR_ID_SETTING));
    expect(d.endpoints.map((e) => e.name)).toEqual(['laptop', 'spare']);
    expect(d.driverOf('laptop')?.kind).toBe('process');
    expect(d.driverOf('spare')?.kind).toBe('process');
    expect(d.runs).toBe(false);
    await d.close();
  });

  it('says what to build when a batch endpoint needs the agent manifest and there is none', async () => {
    const b = base();
    const endpoints = endpointsFrom({ hpc: { driver: 'slurm', slurm: { workDir: '/tmp/x' }, shapes: { n: { cores: 1, memoryMb: 500 } } } }, 'test.yaml');
    const err = await makeDirector({ ...b, config: { endpoints, shares: new Map(), defaultShare: 1 }, agentDir: '/nonexistent' }).catch((e: unknown) => e);
    expect(isVmpilotError(err, 'VMP_CONFIG')).toBe(true);
    expect((err as Error).message).toContain('no agent manifest in /nonexistent: build the agent');
  });
});
