/**
 * Attack: read the registration token from a command line, which every
 * process on the node can (`ps`, /proc/PID/cmdline). The agent takes it from
 * a file (--token-file) or VMPILOT_PILOT_TOKEN, refuses it on its command
 * line, and does not take the admin token of the server commands
 * (VMPILOT_TOKEN) for it; the generated scripts give it to curl and wget
 * without putting it on theirs.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { FETCH_FUNCTIONS } from '../../src/server/delivery/shell.js';
import { ADMIN_TOKEN, AGENT, PILOT_TOKEN, ROOT, admin, killAll, runCommand, startAgent, startServer, tempDir, waitFor } from '../integration/harness.js';
import { audit, logged } from '../faults/audit.js';

describe('the registration token never appears on a command line', () => {
  const tmp = tempDir('vmpilot-sec-tokens-');
  afterEach(() => killAll());
  afterAll(() => tmp.cleanup());

  it('the agent reads it from --token-file or VMPILOT_PILOT_TOKEN, beside an exported admin token, and its command line holds neither', async () => {
    const server = await startServer(path.join(tmp.dir, 'server.db'), ['--heartbeat-interval', '1']);
    const api = admin(server.url);
    const log = path.join(tmp.dir, 'runs.log');
    const ids = [await api.submit({ command: logged(log, 1) }), await api.submit({ command: logged(log, 1) })];
    const tokenFile = path.join(tmp.dir, 'token');
    writeFileSync(tokenFile, `${PILOT_TOKEN}\n`, { mode: 0o600 });
    // an operator with the admin token exported for the server commands starts two agents
    const env = { VMPILOT_TOKEN: ADMIN_TOKEN };
    const fromFile = startAgent(server.url, { stateDir: path.join(tmp.dir, 'a'), cores: 1, idleTimeoutSec: 2, env: { ...env, VMPILOT_PILOT_TOKEN: '' }, extra: ['--token-file', tokenFile] });
    const fromEnv = startAgent(server.url, { stateDir: path.join(tmp.dir, 'b'), cores: 1, idleTimeoutSec: 2, env });
    await waitFor('both agents registered', async () => (await api.pilots()).length === 2);
    for (const agent of [fromFile, fromEnv]) {
      const cmdline = readFileSync(`/proc/${agent.child.pid}/cmdline`, 'utf8');
      expect(cmdline).not.toContain(PILOT_TOKEN);
      expect(cmdline).not.toContain(ADMIN_TOKEN);
    }
    for (const agent of [fromFile, fromEnv]) expect((await agent.exited).code, agent.stderr().slice(-2000)).toBe(0);
    expect(audit(ids, await api.jobs(), log).violations).toEqual([]);
    await server.stop();
  });

  it('--token on the command line is refused with a message that says where the token goes, and does not repeat it', async () => {
    const r = await runCommand([AGENT, 'run', '--server', 'http://127.0.0.1:1', '--token', 'secret-on-the-command-line']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--token: a token on the command line is visible to every process on this node .*--token-file FILE.*VMPILOT_PILOT_TOKEN/);
    expect(r.stderr).not.toContain('secret-on-the-command-line');
    // and VMPILOT_TOKEN (the admin token of the server commands) is not the registration token
    const admin = await runCommand([AGENT, 'run', '--server', 'http://127.0.0.1:1'], { VMPILOT_TOKEN: PILOT_TOKEN, VMPILOT_PILOT_TOKEN: '' });
    expect(admin.code).toBe(2);
    expect(admin.stderr).toMatch(/the registration token is required: give --token-file FILE, VMPILOT_PILOT_TOKEN/);
  });

  it.each(['curl', 'wget', 'python3'])('the generated download (%s) sends it in a header the command line does not show', async (tool) => {
    const server = await startServer(path.join(tmp.dir, `fetch-${tool}.db`));
    // a PATH where the download tool is a shim that writes down its arguments, then runs the real one
    const bin = path.join(tmp.dir, `bin-${tool}`);
    mkdirSync(bin);
    const argv = path.join(tmp.dir, `${tool}.argv`);
    writeFileSync(path.join(bin, tool), `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done >> ${argv}\nexec /usr/bin/${tool} "$@"\n`);
    chmodSync(path.join(bin, tool), 0o755);
    for (const t of ['sh', 'mktemp', 'rm', 'cat']) symlinkSync(execFileSync('sh', ['-c', `command -v ${t}`], { encoding: 'utf8' }).trim(), path.join(bin, t));
    const out = path.join(tmp.dir, `vmpilot-${tool}.cjs`);
    const script = `${FETCH_FUNCTIONS}\nvmpilot_download "$VMPILOT_SERVER/v1/agent/vmpilot.cjs" ${out}`;
    execFileSync(path.join(bin, 'sh'), ['-c', script], { env: { PATH: bin, VMPILOT_SERVER: server.url, VMPILOT_PILOT_TOKEN: PILOT_TOKEN, VMPILOT_TOKEN: PILOT_TOKEN }, stdio: 'pipe' });
    expect(readFileSync(out).equals(readFileSync(path.join(ROOT, 'dist/vmpilot.cjs'))), 'the download worked: the token was sent').toBe(true);
    const args = readFileSync(argv, 'utf8');
    expect(args).toContain(`${server.url}/v1/agent/vmpilot.cjs`);
    expect(args).not.toContain(PILOT_TOKEN);
    expect(args).not.toMatch(/authorization/i);
    await server.stop();
  });
});
