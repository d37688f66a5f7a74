/**
 * A group whose payloads must not run where a payload could reach its pilot
 * (`groups.G.requireIsolation` in the server config) gets no pilot that says
 * `isolation: none`: the server gives its payloads only to pilots that
 * isolate, and `pilots` shows which is which.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, SERVER, admin, killAll, runCommand, startAgent, startServer, tempDir, waitFor } from '../integration/harness.js';
import { audit, logged } from '../faults/audit.js';
import { MODES, places, startModeAgent } from './lib.js';

describe('a group that requires isolation', () => {
  const tmp = tempDir('vmpilot-sec-policy-');
  afterEach(() => killAll());
  afterAll(() => tmp.cleanup());

  it('gets nothing from a pilot without isolation, and runs on one with it', async () => {
    const where = places(tmp.dir, MODES[0]!);
    const { log, runSh } = where;
    const config = path.join(tmp.dir, 'server.yaml');
    writeFileSync(config, 'groups:\n  secure: { share: 1, requireIsolation: true }\n  open: { share: 1 }\n');
    const server = await startServer(path.join(tmp.dir, 'server.db'), ['--heartbeat-interval', '1', '--config', config]);
    const api = admin(server.url);
    const secure = await api.submit({ command: logged(log, 1, 0, runSh), group: 'secure' });
    const open = await api.submit({ command: logged(log, 1, 0, runSh), group: 'open' });

    // a pilot that isolates nothing (it says so) takes the open payload only
    const bare = startAgent(server.url, { stateDir: path.join(tmp.dir, 'bare'), cores: 2, idleTimeoutSec: 3, isolation: 'none' });
    expect((await bare.exited).code, bare.stderr().slice(-2000)).toBe(0);
    expect(bare.stderr()).toContain('"msg":"isolation: none: payloads can read the agent state and signal the agent"');
    expect(await api.job(open)).toMatchObject({ state: 'done', pilotId: 1 });
    expect(await api.job(secure)).toMatchObject({ state: 'queued', attempts: 0 });

    // one that isolates its payloads (the default as root: one account per payload) runs it
    const isolated = startModeAgent(server.url, MODES[0]!, where, { cores: 2, idleTimeoutSec: 3 });
    await waitFor('the secure payload to be done', async () => (await api.job(secure)).state === 'done');
    expect((await isolated.exited).code, isolated.stderr().slice(-2000)).toBe(0);
    expect(await api.job(secure)).toMatchObject({ state: 'done', pilotId: 2 });

    const pilots = await runCommand([SERVER, 'pilots', '--server', server.url, '--token', ADMIN_TOKEN]);
    expect(pilots.stdout.split('\n')[0]).toMatch(/\bISOLATION\b/);
    expect(pilots.stdout).toMatch(/^1\s.*\bnone\b/m);
    expect(pilots.stdout).toMatch(/^2\s.*\bslot-users\b/m);
    const result = audit([secure, open], await api.jobs(), log);
    expect(result.violations).toEqual([]);
    await server.stop();
  });

  it('a config that says requireIsolation: yes is refused, naming the key', async () => {
    const config = path.join(tmp.dir, 'bad.yaml');
    writeFileSync(config, 'groups:\n  secure: { share: 1, requireIsolation: "yes" }\n');
    const r = await runCommand([SERVER, 'serve', '--listen', '127.0.0.1:0', '--db', path.join(tmp.dir, 'bad.db'), '--config', config]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/groups\.secure\.requireIsolation is "yes"; expected true or false/);
  });
});
