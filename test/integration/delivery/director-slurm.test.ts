/**
 * The director's `slurm` driver against the driver contract, for real: a
 * single-node Slurm (test/systems/slurm/setup.sh) reached through a real
 * sshd on 127.0.0.1 with a key this test makes (test/systems/sshd/setup.sh),
 * the driver's commands sharing one ssh connection (ControlMaster). Each
 * instance is the generated batch script with its own registration secret,
 * submitted with sbatch; its pilot fetches the agent from the built server,
 * registers, runs a queued payload, halts when idle, and the job is gone.
 *
 * Slurm is machine-wide: run by the lead, never beside another Slurm test.
 */
import { chmodSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { resourcePrefix } from '../../../src/server/director/credential.js';
import { endpointsFrom } from '../../../src/server/director/endpoint-config.js';
import { BatchDriver } from '../../../src/server/director/drivers/batch.js';
import { SshCommands } from '../../../src/server/director/drivers/commands.js';
import type { BatchSettings } from '../../../src/server/director/driver-settings.js';
import { pickAgentFile, readManifest } from '../../../src/server/delivery/manifest.js';
import { agentRef } from '../../../src/server/delivery/shell.js';
import { systemClock } from '../../../src/shared/clock.js';
import { driverContract } from '../../unit/server/director/driver-contract.js';
import { PILOT_TOKEN, admin, freePort, processesWith, tempDir, waitFor } from '../harness.js';
import { snapshotDist, startServerFrom, systemScript } from './batch-harness.js';

driverContract(
  'slurm through ssh',
  async () => {
    const tmp = tempDir('vmpilot-director-slurm-');
    // the job runs as root and its payloads as slot accounts: they must pass through to the job's state dir
    chmodSync(tmp.dir, 0o711);
    const snap = snapshotDist(tmp.dir);
    const slurm = await systemScript('slurm/setup.sh', 300_000);
    const sshd = await systemScript('sshd/setup.sh', 300_000, [String(await freePort())]);
    const server = await startServerFrom(snap.server, path.join(tmp.dir, 'server.db'));
    const agent = agentRef(pickAgentFile(await readManifest(path.dirname(snap.manifest)), 'executable'));
    const raw = {
      driver: 'slurm',
      slurm: {
        ssh: { host: '127.0.0.1', port: Number(sshd.SSHD_PORT), user: 'root', key: sshd.SSH_KEY, options: ['StrictHostKeyChecking=yes', `UserKnownHostsFile=${sshd.SSH_KNOWN_HOSTS}`] },
        env: { SLURM_CONF: slurm.SLURM_CONF },
        workDir: tmp.dir,
        cacheDir: path.join(tmp.dir, 'cache'),
        output: path.join(tmp.dir, 'job-%j.out'),
        drainBeforeSec: 60,
      },
      shapes: { node: { cores: 1, memoryMb: 400, lifetimeSec: 600 } },
    };
    const settings = endpointsFrom({ hpc: raw }, 'test')[0]!.driver as BatchSettings;
    const runners: SshCommands[] = [];
    const make = (endpoint: string) => {
      const commands = new SshCommands(settings.ssh!, settings.env);
      runners.push(commands);
      return new BatchDriver({ settings, prefix: resourcePrefix('test', endpoint), agent, commands, clock: systemClock });
    };
    const driver = make('hpc');
    const check = new SshCommands(settings.ssh!, settings.env);
    runners.push(check);
    const api = admin(server.url);
    return {
      driver,
      prefix: resourcePrefix('test', 'hpc'),
      other: { driver: make('other'), prefix: resourcePrefix('test', 'other') },
      request: (key) => ({
        key,
        cores: 1,
        memoryMb: 400,
        lifetimeSec: 600,
        // phase A: the server knows no instance credentials yet: the job registers with the shared token
        bootstrap: { serverUrl: server.url, credential: PILOT_TOKEN, idleTimeoutSec: 3, graceSec: 5, lifetimeSec: 600 },
      }),
      until: (what, check) => waitFor(what, check, 120_000),
      halt: async (r) => {
        // payloads do not inherit the batch environment: the job's own state dir (named by its job id) shows where it ran
        const id = await api.submit({ command: ['sh', '-c', 'echo "ran in $VMPILOT_PAYLOAD_DIR"'], group: 'hpc' });
        await waitFor('the payload to be done', async () => (await api.job(id)).state === 'done', 120_000);
        const job = await api.job(id);
        expect(job.outputTail).toContain(`ran in ${path.join(tmp.dir, `vmpilot-job-${r.id}`)}/`);
        await waitFor('its pilot to halt', async () => (await api.pilots()).find((p) => p.id === job.pilotId && p.state === 'halted' && p.shutdownCode === 300), 120_000);
      },
      nothingLeft: async (r) => {
        // Slurm keeps a finished job in squeue -t all for a few minutes: it may be listed, but not as holding anything
        const out = await check.run(['squeue', '-h', '-t', 'all', '-j', r.id, '-o', '%T']);
        expect(['', 'COMPLETED', 'CANCELLED', 'FAILED', 'TIMEOUT']).toContain(out.stdout.trim());
      },
      close: async () => {
        const dirs = await Promise.all(runners.map(async (c) => /ControlPath=(\S+)\/%C/.exec((await c.sshArgs()).join(' '))![1]!));
        await Promise.all(runners.map((c) => c.close()));
        // the shared connections' master processes are gone
        for (const dir of dirs) expect(processesWith(`${dir}/`)).toEqual([]);
        await server.stop();
        await systemScript('sshd/teardown.sh');
        await systemScript('slurm/teardown.sh');
        tmp.cleanup();
      },
    };
  },
  300_000,
);
