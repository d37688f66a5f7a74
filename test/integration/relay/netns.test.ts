/**
 * A compute node that cannot reach the server: a network namespace of the
 * test's own whose only link is a veth to the login node's side (the root
 * namespace), where the relay listens on the veth address and the server on
 * 127.0.0.1 only. The node runs the batch script `vmpilot-server
 * batch-script --server http://RELAY` makes (as a Slurm job would, without
 * Slurm): it downloads the agent through the relay's cache, registers,
 * runs payloads, keeps `$JOBOUTPUTS` through the relay, and halts on an
 * administrator's instruction, all through the relay. From inside, the
 * server itself cannot be reached.
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../../src/server/api/auth.js';
import { auditServer, logged } from '../../faults/audit.js';
import { makeBatchScript } from '../delivery/batch-harness.js';
import { ROOT, admin, kill, killAll, startServer, tempDir, waitFor } from '../harness.js';
import { computeNode, connects, netnsMissing, type ComputeNode } from './netns.js';
import { putSink, startRelay, type Relay } from './relay-harness.js';

const RELAY_TOKEN = 'relay-token-of-the-test-login-node';

describe('relay: a compute node that reaches only the login node', () => {
  const tmp = tempDir('vmpilot-relay-netns-');
  let node: ComputeNode | undefined;
  let relay: Relay | undefined;
  let sink: Awaited<ReturnType<typeof putSink>> | undefined;
  afterAll(async () => {
    killAll();
    if (relay) kill(relay.child);
    await relay?.exited;
    node?.remove();
    await sink?.close();
    tmp.cleanup();
  });

  it('registers, runs payloads, keeps $JOBOUTPUTS and halts through the relay; a direct connection to the server fails', async () => {
    expect(netnsMissing(), 'network namespaces').toBeNull();
    node = computeNode();
    const config = path.join(tmp.dir, 'server.yaml');
    // only through a known relay: a pilot that came directly would be refused
    writeFileSync(config, `relays:\n  required: true\n  tokens:\n    - { name: login01, site: TEST-HPC, sha256: ${sha256Hex(RELAY_TOKEN)} }\n`);
    const server = await startServer(path.join(tmp.dir, 'server.db'), ['--config', config, '--heartbeat-interval', '1']);
    const serverPort = new URL(server.url).port;
    sink = await putSink();
    const tokenFile = path.join(tmp.dir, 'relay.token');
    writeFileSync(tokenFile, `${RELAY_TOKEN}\n`, { mode: 0o600 });
    relay = await startRelay([
      '--listen', `${node.relayAddress}:0`,
      '--server', server.url,
      '--relay-token-file', tokenFile,
      '--cache-dir', path.join(tmp.dir, 'relay-cache'),
      '--outputs', `${sink.url}/jobs/`,
    ]);
    expect(relay.url).toMatch(new RegExp(`^http://${node.relayAddress!.replace(/\./g, '\\.')}:\\d+$`));

    // from inside the node: the relay answers; the server, on any address, does not
    expect(await connects(node, `${relay.url}/v1/health`)).toMatchObject({ ok: true });
    const direct = [`http://127.0.0.1:${serverPort}/v1/health`, `http://${node.relayAddress}:${serverPort}/v1/health`];
    const external = Object.values(networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal && !i.address.startsWith('10.200.'));
    if (external) direct.push(`http://${external.address}:${serverPort}/v1/health`);
    for (const url of direct) {
      const r = await connects(node, url);
      expect(r.ok, `${url} from inside the node: ${r.why}`).toBe(false);
    }

    const api = admin(server.url);
    const log = path.join(tmp.dir, 'runs.log');
    writeFileSync(log, '');
    const ids: number[] = [];
    for (const [sec, cores] of [[1, 1], [2, 2], [1, 1], [1, 1], [2, 1], [1, 2]] as const) {
      ids.push(await api.submit({ command: logged(log, sec), cores: { min: cores, max: cores, wholeNode: false }, group: 'hpc' }));
    }

    const script = path.join(tmp.dir, 'pilot.sh');
    writeFileSync(script, await makeBatchScript('slurm', relay.url!, ['--cores', '2', '--walltime', '3600', '--idle-timeout', '600', '--grace', '2']));
    chmodSync(script, 0o755);
    const job = node.spawn('bash', [script], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: tmp.dir,
        TMPDIR: tmp.dir,
        XDG_CACHE_HOME: path.join(tmp.dir, 'node-cache'),
        // payloads write the run log of the test: no accounts of their own
        VMPILOT_ISOLATION: 'none',
        JOBOUTPUTS: `${relay.url}/outputs/job-1/`,
      },
    });
    let jobErr = '';
    job.stderr?.on('data', (d: Buffer) => (jobErr += d.toString()));
    const jobExit = new Promise<number | null>((resolve) => job.on('exit', (code) => resolve(code)));
    try {
      const done = await waitFor('every payload to run through the relay', async () => {
        const jobs = await api.jobs();
        return jobs.every((j) => j.state === 'done') && jobs;
      }, 120_000);
      expect(done).toHaveLength(ids.length);
      const [pilot] = await api.pilots();
      expect(pilot).toMatchObject({ relay: { name: 'login01', site: 'TEST-HPC' }, state: 'running' });
      await waitFor('the heartbeat file through the relay', () => sink!.files.has('/jobs/job-1/heartbeat'));

      // an administrator's halt reaches the node through the relay's long poll
      await api.instruct(pilot!.id, { type: 'halt', reason: 'end of the test allocation' });
      expect(await jobExit, jobErr.slice(-3000)).toBe(0);
    } finally {
      kill(job);
    }
    const [halted] = await api.pilots();
    expect(halted).toMatchObject({ state: 'halted', shutdownCode: 100, relay: { name: 'login01', site: 'TEST-HPC' } });
    expect(sink.files.get('/jobs/job-1/shutdown_message')).toMatch(/^100 Shutdown as requested: end of the test allocation/);
    const result = await auditServer(api, ids, log);
    expect(result.violations).toEqual([]);
    expect(result.byState).toEqual({ done: ids.length });

    // the agent came from the relay's cache: fetched from the server once, checked against the manifest
    const manifest = JSON.parse(readFileSync(path.join(ROOT, 'dist/agent-manifest.json'), 'utf8')) as { files: { name: string; sha256: string }[] };
    const gz = manifest.files.find((f) => f.name === 'vmpilot-linux-x64.gz')!;
    const fetched = relay.stderr().split('\n').filter((l) => l.includes('"msg":"fetched into the cache"'));
    expect(fetched).toHaveLength(1);
    expect(fetched[0]).toContain(gz.sha256);
    await server.stop();
    // the server saw every pilot call come through the relay: nothing was refused for a missing relay token
    expect(server.stderr()).not.toMatch(/registration refused: not through a relay|relay token refused/);
  });
});
