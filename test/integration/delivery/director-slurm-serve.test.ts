/**
 * The director in `serve`, on real Slurm through a real sshd: the built
 * server (a private copy of dist/) started with `serve --config` holding one
 * `driver: slurm` endpoint whose commands go through the sshd on 127.0.0.1
 * (a key made by test/systems/sshd/setup.sh), and a single-node Slurm
 * (test/systems/slurm/setup.sh). Nothing is started by hand: queued work
 * makes the director submit pilot jobs; each job's pilot registers with its
 * instance's one-time credential (the job's script holds no shared token),
 * runs payloads, halts when idle, and the director deletes the instance; no
 * job is left pending or running.
 *
 * Slurm is machine-wide: run by the lead, never beside another Slurm test.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DirectorStatusReply, InstanceView, PilotView } from '../../../src/protocol/index.js';
import { endpointsFrom } from '../../../src/server/director/endpoint-config.js';
import { SshCommands } from '../../../src/server/director/drivers/commands.js';
import type { BatchSettings } from '../../../src/server/director/driver-settings.js';
import { PILOT_TOKEN, admin, freePort, tempDir, waitFor } from '../harness.js';
import { queueWork, recordLines, snapshotDist, startServerFrom, systemScript } from './batch-harness.js';

const LONG = 180_000;

describe('the director in serve on Slurm through ssh', () => {
  it('queued payloads make the director submit pilot jobs; their pilots register with their instances\' credentials, run the work, halt, and the jobs are deleted', async () => {
    const tmp = tempDir('vmpilot-director-slurm-serve-');
    // the job runs as root and its payloads as slot accounts: they must pass through to the job's state dir
    chmodSync(tmp.dir, 0o711);
    const snap = snapshotDist(tmp.dir);
    const slurm = await systemScript('slurm/setup.sh', 300_000);
    const sshd = await systemScript('sshd/setup.sh', 300_000, [String(await freePort())]);
    const port = await freePort();
    const endpoint = {
      driver: 'slurm',
      slurm: {
        ssh: { host: '127.0.0.1', port: Number(sshd.SSHD_PORT), user: 'root', key: sshd.SSH_KEY, options: ['StrictHostKeyChecking=yes', `UserKnownHostsFile=${sshd.SSH_KNOWN_HOSTS}`] },
        env: { SLURM_CONF: slurm.SLURM_CONF },
        workDir: tmp.dir,
        cacheDir: path.join(tmp.dir, 'cache'),
        output: path.join(tmp.dir, 'job-%j.out'),
        drainBeforeSec: 60,
      },
      // the job reaches the server on this host's loopback
      serverUrl: `http://127.0.0.1:${port}`,
      shapes: { node: { cores: 1, memoryMb: 400, lifetimeSec: 600 } },
      limits: { instances: 2, startsPerCycle: 2 },
      timeouts: { idleSec: 3, payloadGraceSec: 5 },
    };
    // JSON is YAML: the config file as an operator could write it
    const configFile = path.join(tmp.dir, 'server.yaml');
    writeFileSync(configFile, JSON.stringify({ endpoints: { hpc: endpoint } }, null, 2));
    const server = await startServerFrom(snap.server, path.join(tmp.dir, 'server.db'), `127.0.0.1:${port}`, ['--config', configFile]);
    const settings = endpointsFrom({ hpc: endpoint }, 'test')[0]!.driver as BatchSettings;
    const check = new SshCommands(settings.ssh!, settings.env);
    const api = admin(server.url);
    const get = async <T>(route: string) => {
      const r = await api.call<T>('GET', route);
      if (r.status !== 200) throw new Error(`GET ${route} → ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    };
    try {
      // the director's first cycle found nothing to do: no instance is there before the work
      const first = await waitFor('the first cycle', async () => (await get<DirectorStatusReply>('/v1/director')).lastCycle ?? undefined, LONG);
      expect(first.decision.demand.payloads).toBe(0);
      expect(await get<InstanceView[]>('/v1/instances')).toEqual([]);

      const log = path.join(tmp.dir, 'work', 'record.log');
      mkdirSync(path.dirname(log));
      const ids = await queueWork(server.url, log, 3);

      // each job's script, read from Slurm while it still knows the job (what the job ran)
      const scripts = new Map<string, string>();
      await waitFor('the payloads to be done', async () => {
        for (const i of await get<InstanceView[]>('/v1/instances')) {
          if (i.driverId === null || scripts.has(i.driverId)) continue;
          const r = await check.run(['scontrol', 'write', 'batch_script', i.driverId, '-']);
          if (r.exitCode === 0 && r.stdout.startsWith('#!')) scripts.set(i.driverId, r.stdout);
        }
        const jobs = await Promise.all(ids.map((id) => api.job(id)));
        return jobs.every((j) => j.state === 'done') && jobs;
      }, LONG);
      const deleted = await waitFor('every instance to be deleted', async () => {
        const all = await get<InstanceView[]>('/v1/instances');
        return all.length > 0 && all.every((i) => i.state === 'deleted') && all;
      }, LONG);

      // the director started them for the queued group, by itself, at most the endpoint's limit
      expect(deleted.length).toBeLessThanOrEqual(2);
      for (const i of deleted) expect(i).toMatchObject({ endpoint: 'hpc', shape: 'node', manual: false, forGroup: 'batch' });
      const jobs = await Promise.all(ids.map((id) => api.job(id)));
      const pilotIds = new Set(deleted.map((i) => i.pilotId));
      for (const j of jobs) expect(pilotIds).toContain(j.pilotId);
      // each payload ran inside one of the director's jobs: its directory is under that job's state dir
      const lines = recordLines(log);
      expect(lines).toHaveLength(3);
      const jobDirs = deleted.map((i) => `${path.join(tmp.dir, `vmpilot-job-${i.driverId}`)}/`);
      for (const line of lines) expect(jobDirs.some((d) => line.split(' ')[4]!.startsWith(d)), line).toBe(true);

      for (const i of deleted) {
        // registered with its own credential: the pilot is tied to the instance, and halted when idle
        expect(i.pilotId).not.toBeNull();
        const pilot = await get<PilotView>(`/v1/pilots/${i.pilotId}`);
        expect(pilot).toMatchObject({ instanceId: i.id, state: 'halted', shutdownCode: 300 });
        // the job's script carried the instance's one-time credential, never the shared token
        const script = scripts.get(i.driverId!);
        expect(script, `the batch script of job ${i.driverId}`).toBeDefined();
        expect(script).not.toContain(PILOT_TOKEN);
        expect(script).toMatch(/^export VMPILOT_PILOT_TOKEN='vmpi_[A-Za-z0-9_-]{20,}'$/m);
      }
      // no job of theirs is pending or running (Slurm may still list them finished for a few minutes)
      const squeue = await check.run(['squeue', '-h', '-t', 'all', '-o', '%i|%T']);
      expect(squeue.exitCode).toBe(0);
      const states = new Map(squeue.stdout.trim().split('\n').filter(Boolean).map((l) => l.split('|') as [string, string]));
      for (const i of deleted) expect(['COMPLETED', 'CANCELLED', 'FAILED', 'TIMEOUT', undefined]).toContain(states.get(i.driverId!));
    } finally {
      // a failed test must not leave its jobs in the shared Slurm: cancel what the director had submitted
      const keys = new Set((await get<InstanceView[]>('/v1/instances').catch(() => [])).map((i) => i.key));
      await server.stop();
      const left = await check.run(['squeue', '-h', '-o', '%i|%j']);
      const mine = left.stdout.split('\n').filter((l) => keys.has(l.split('|')[1] ?? '')).map((l) => l.split('|')[0]!);
      if (mine.length > 0) await check.run(['scancel', ...mine]);
      await check.close();
      await systemScript('sshd/teardown.sh');
      await systemScript('slurm/teardown.sh');
      tmp.cleanup();
    }
  }, 600_000);
});
