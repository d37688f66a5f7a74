/**
 * Attack: a payload reads its pilot's credential, the registration token and
 * the agent's state, reads and kills its neighbour, and forges a report
 * ("done, exit 0") for the neighbour with the credential it found
 * (test/fixtures/security/hostile.sh); its PATH puts its own sh, bwrap,
 * unshare, mount and mkdir first, which would steal the state if the agent
 * ran them outside the payload's sandbox. It must get nothing, and the records
 * of the honest payloads must be right — with the agent as root (every VM
 * from our user-data) and as a user that is not root (a batch job), in each
 * sandbox it can use.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, PILOT_TOKEN, admin, killAll, startServer, tempDir, waitFor } from '../integration/harness.js';
import { audit, logged } from '../faults/audit.js';
import { MODES, places, startModeAgent } from './lib.js';

describe.each(MODES)('attack: a payload goes after its pilot and its neighbour ($name)', (mode) => {
  const tmp = tempDir('vmpilot-sec-isolation-');
  // a first-time install (bwrap) is not part of the test's own time
  beforeAll(() => mode.prepare?.(), 15 * 60_000);
  afterEach(() => killAll());
  afterAll(() => tmp.cleanup());

  it('gets no credential, no token, no state, nothing of its neighbour; the neighbour runs to its own end', async () => {
    const where = places(tmp.dir, mode);
    const { drop, log, home, stateDir, runSh } = where;
    const server = await startServer(path.join(tmp.dir, 'server.db'), ['--heartbeat-interval', '1']);
    const api = admin(server.url);
    const secret = `neighbour-secret-${process.pid}`;
    const neighbour = await api.submit({ command: [where.fixture.neighbour, drop, secret, '8'] });
    const honest = [await api.submit({ command: logged(log, 1, 0, runSh) }), await api.submit({ command: logged(log, 1, 0, runSh) })];
    const agent = startModeAgent(server.url, mode, where, { cores: 4, idleTimeoutSec: 3 });
    await waitFor('the neighbour to run', () => statSync(path.join(drop, `ready-${neighbour}`), { throwIfNoEntry: false }) !== undefined, 30_000);

    // it knows where the secrets are: the agent's token file (non-root), and all of /proc; and it brings
    // its own PATH, whose sh, bwrap, unshare, mount and mkdir steal the state when run outside its sandbox
    const evil = path.join(drop, 'evil');
    mkdirSync(evil);
    for (const tool of ['sh', 'bwrap', 'unshare', 'mount', 'mkdir']) {
      const real = ['sh', 'mkdir'].includes(tool) ? `/bin/${tool}` : `/usr/bin/${tool}`;
      writeFileSync(path.join(evil, tool), `#!/bin/sh\ncat "$(dirname "$(dirname "$VMPILOT_PAYLOAD_DIR")")/state.json" >> ${drop}/loot-path 2>/dev/null\nexec ${real} "$@"\n`, { mode: 0o755 });
    }
    const hostile = await api.submit({
      command: [where.fixture.hostile, drop, String(neighbour), path.join(home, 'token')],
      env: { PATH: `${evil}:/usr/local/bin:/usr/bin:/bin` },
    });
    expect((await agent.exited).code, agent.stderr().slice(-3000)).toBe(0);

    const state = JSON.parse(readFileSync(path.join(stateDir, 'state.json'), 'utf8')) as { credential: string; pilotId: number };
    const loot = readFileSync(path.join(drop, `loot-${hostile}`), 'utf8') + readFileSync(path.join(drop, 'loot-path'), { encoding: 'utf8', flag: 'a+' });
    const jobs = await api.jobs();
    const details = new Map(await Promise.all([hostile, neighbour].map(async (id) => [id, await api.job(id)] as const)));
    const job = (id: number) => details.get(id)!;
    // the hostile payload ran to its end, and took nothing
    expect(job(hostile), JSON.stringify(job(hostile))).toMatchObject({ state: 'done', exitCode: 0 });
    for (const [what, value] of [['credential', state.credential], ['registration token', PILOT_TOKEN], ['admin token', ADMIN_TOKEN], ["the neighbour's secret", secret]] as const) {
      expect(loot, `the hostile payload got the ${what}`).not.toContain(value);
      expect(job(hostile).outputTail ?? '', `the ${what} in the hostile payload's output`).not.toContain(value);
    }
    expect(loot).not.toMatch(/killed neighbour process/);
    expect(loot).not.toMatch(/swapped std(out|err)/);
    expect(loot).not.toMatch(/--- state\.json/);
    // the neighbour was neither killed nor reported done by someone else: its own end, its own output
    expect(job(neighbour), JSON.stringify(job(neighbour))).toMatchObject({ state: 'failed', exitCode: 3, signal: null });
    expect(job(neighbour).outputTail).toContain(`my secret is ${secret}`);
    expect(job(neighbour).outputTail).toContain('neighbour finished');

    // the agent said how it isolates: in its log, its registration, and so in `pilots`
    expect(agent.stderr()).toContain(`"msg":"isolation: ${mode.expected}"`);
    const [pilot] = await api.pilots();
    expect(pilot).toMatchObject({ id: state.pilotId, isolation: mode.expected, shutdownCode: 300 });
    // the state dir is private (0711 where payload accounts must reach their own directories)
    expect(statSync(stateDir).mode & 0o777).toBe(mode.user ? 0o700 : 0o711);
    expect(statSync(path.join(stateDir, 'state.json')).mode & 0o077).toBe(0);
    expect(statSync(path.join(stateDir, 'payloads', String(neighbour))).mode & 0o007, "others may not enter a payload's directory").toBe(0);
    if (!mode.user) {
      // each payload its own account: the neighbour's directory is closed to the hostile payload's
      expect(statSync(path.join(stateDir, 'payloads', String(neighbour))).gid).not.toBe(statSync(path.join(stateDir, 'payloads', String(hostile))).gid);
    }

    const result = audit([neighbour, ...honest, hostile], jobs, log);
    expect(result.violations).toEqual([]);
    expect(result.byState).toEqual({ done: 3, failed: 1 });
    await server.stop();
  });
});
