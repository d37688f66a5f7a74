/**
 * Reverse mode: a login node that may not open connections to the server,
 * which can reach it by ssh. The login node is a network namespace of the
 * test's own (its only link a veth to the root namespace, where the server
 * listens on 127.0.0.1 only), running a real sshd. The batch driver's
 * command runner, given `ssh.reverse`, keeps an `ssh -R` tunnel that opens
 * 127.0.0.1:T on the login node leading back to the server; the relay there
 * uses `--server http://127.0.0.1:T`, and an agent on that node registers,
 * runs payloads and halts through it. The tunnel, killed mid-way, comes
 * back by itself and the work goes on; closing the runner ends it.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../../src/server/api/auth.js';
import { systemClock } from '../../../src/shared/clock.js';
import type { SshSettings } from '../../../src/server/director/driver-settings.js';
import { SshCommands } from '../../../src/server/director/drivers/commands.js';
import { auditServer, logged } from '../../faults/audit.js';
import { alive } from '../../unit/agent/executor/alive.js';
import { systemScript } from '../delivery/batch-harness.js';
import { AGENT, PILOT_TOKEN, admin, freePort, kill, killAll, startServer, tempDir, waitFor } from '../harness.js';
import { computeNode, connects, netnsMissing, type ComputeNode } from './netns.js';
import { startRelay, type Relay } from './relay-harness.js';

const RELAY_TOKEN = 'relay-token-of-the-reverse-login-node';

describe('relay in reverse mode: the server reaches the login node, never the other way', () => {
  const tmp = tempDir('vmpilot-reverse-');
  const sshdDir = path.join(tmp.dir, 'sshd');
  let login: ComputeNode | undefined;
  let relay: Relay | undefined;
  let commands: SshCommands | undefined;
  let agent: ReturnType<typeof spawn> | undefined;
  afterAll(async () => {
    killAll();
    if (agent) kill(agent);
    if (relay) kill(relay.child);
    await relay?.exited;
    await commands?.close();
    if (process.env.VMPILOT_SSHD_DIR === sshdDir) await systemScript('sshd/teardown.sh', 60_000).catch(() => undefined);
    delete process.env.VMPILOT_SSHD_DIR;
    login?.remove();
    tmp.cleanup();
  });

  it('keeps an ssh -R tunnel the relay reaches the server through, and starts it again when it dies', { timeout: 300_000 }, async () => {
    expect(netnsMissing(), 'network namespaces').toBeNull();
    login = computeNode();
    const config = path.join(tmp.dir, 'server.yaml');
    writeFileSync(config, `relays:\n  required: true\n  tokens:\n    - { name: login02, site: TEST-REVERSE, sha256: ${sha256Hex(RELAY_TOKEN)} }\n`);
    const server = await startServer(path.join(tmp.dir, 'server.db'), ['--config', config, '--heartbeat-interval', '1']);
    const serverPort = Number(new URL(server.url).port);

    // the login node cannot reach the server on any address
    for (const url of [`http://127.0.0.1:${serverPort}/v1/health`, `http://${login.relayAddress}:${serverPort}/v1/health`]) {
      expect((await connects(login, url)).ok, `${url} from the login node`).toBe(false);
    }

    // a real sshd on the login node's own address (the teardown in afterAll finds it by this directory)
    process.env.VMPILOT_SSHD_DIR = sshdDir;
    const sshdPort = await freePort();
    const sshd = await runSetup(sshdPort, login);
    const tunnelPort = await freePort();
    const ssh: SshSettings = {
      host: login.nodeAddress!,
      user: 'root',
      port: sshdPort,
      key: sshd.SSH_KEY!,
      options: ['StrictHostKeyChecking=yes', `UserKnownHostsFile=${sshd.SSH_KNOWN_HOSTS}`],
      controlPersistSec: 60,
      reverse: { listen: { host: '127.0.0.1', port: tunnelPort }, to: { host: '127.0.0.1', port: serverPort } },
    };
    commands = new SshCommands(ssh);
    const tunnel = () => commands!.tunnelState()!;
    expect(tunnel()).toMatchObject({ up: false, starts: 0 });
    // the driver's first command (the director lists every cycle) brings the tunnel up
    const hostname = await commands.run(['cat', '/proc/sys/kernel/hostname']);
    expect(hostname.exitCode).toBe(0);
    const first = await waitFor('the tunnel to come up', () => tunnel().up && tunnel(), 60_000);
    expect(first.starts).toBe(1);
    expect(await connects(login, `http://127.0.0.1:${tunnelPort}/v1/health`)).toMatchObject({ ok: true });

    const tokenFile = path.join(tmp.dir, 'relay.token');
    writeFileSync(tokenFile, `${RELAY_TOKEN}\n`, { mode: 0o600 });
    relay = await startRelay(
      ['--listen', '127.0.0.1:0', '--server', `http://127.0.0.1:${tunnelPort}`, '--relay-token-file', tokenFile, '--cache-dir', path.join(tmp.dir, 'relay-cache')],
      {},
      login.spawn,
    );

    const api = admin(server.url);
    const log = path.join(tmp.dir, 'runs.log');
    writeFileSync(log, '');
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) ids.push(await api.submit({ command: logged(log, 1), cores: { min: 1, max: 1, wholeNode: false }, group: 'hpc' }));

    let agentErr = '';
    agent = login.spawn(process.execPath, [AGENT, 'run', '--server', relay.url!, '--halt', 'exit', '--state-dir', path.join(tmp.dir, 'agent'), '--isolation', 'none', '--cores', '2', '--idle-timeout', '600'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, VMPILOT_PILOT_TOKEN: PILOT_TOKEN },
    });
    agent.stderr?.on('data', (d: Buffer) => (agentErr = (agentErr + d.toString()).slice(-20_000)));
    const agentExit = new Promise<number | null>((resolve) => agent!.on('exit', (code) => resolve(code)));
    const allDone = (n: number) =>
      waitFor(`${n} payloads done through the tunnel`, async () => {
        const jobs = await api.jobs();
        return jobs.length === n && jobs.every((j) => j.state === 'done') && jobs;
      }, 120_000);
    await allDone(3);
    const [pilot] = await api.pilots();
    expect(pilot).toMatchObject({ relay: { name: 'login02', site: 'TEST-REVERSE' } });

    // the tunnel dies (the connection dropped): it is started again, and the work goes on through it
    process.kill(first.pid!, 'SIGKILL');
    await waitFor('the tunnel to come back', () => {
      const s = tunnel();
      return s.starts >= 2 && s.up && s;
    }, 60_000);
    expect(tunnel().lastError).toBeTruthy();
    for (let i = 0; i < 2; i++) ids.push(await api.submit({ command: logged(log, 1), cores: { min: 1, max: 1, wholeNode: false }, group: 'hpc' }));
    await allDone(5);

    await api.instruct(pilot!.id, { type: 'halt', reason: 'end of the reverse test' });
    expect(await agentExit, agentErr.slice(-3000)).toBe(0);
    const [halted] = await api.pilots();
    expect(halted).toMatchObject({ state: 'halted', shutdownCode: 100 });
    const result = await auditServer(api, ids, log);
    expect(result.violations).toEqual([]);
    expect(result.byState).toEqual({ done: 5 });

    // closing the runner (the director stopping) ends the tunnel: no ssh is left behind
    const pid = tunnel().pid!;
    await commands.close();
    expect(alive(pid)).toBe(false);
    expect(tunnel()).toMatchObject({ up: false, pid: null });
    await server.stop();
  });
});

/** The test sshd, started inside the login node's namespace on its own address. */
async function runSetup(port: number, login: ComputeNode): Promise<Record<string, string>> {
  process.env.VMPILOT_SSHD_LISTEN = login.nodeAddress!;
  process.env.VMPILOT_SSHD_NETNS = login.name;
  try {
    return await systemScript('sshd/setup.sh', 300_000, [String(port)]);
  } finally {
    delete process.env.VMPILOT_SSHD_LISTEN;
    delete process.env.VMPILOT_SSHD_NETNS;
  }
}
