/**
 * `npm run test:vm`: the director's `qemu` driver in `serve`, for real. The
 * built server (a private copy of dist/) started with `serve --config`
 * holding one `driver: qemu` endpoint on the test image (built once by
 * test/systems/vm/build-image.sh, cached after). Nothing is started by hand:
 * a queued payload makes the director boot one VM, whose user-data carries
 * its instance's one-time credential (no shared token); its pilot registers
 * tied to the instance, the payload runs in the guest, the pilot halts when
 * idle, the VM powers itself off, and the director deletes it: no QEMU (or
 * forwarder) process is left and its directory is gone.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DirectorStatusReply, InstanceView, PilotView } from '../../src/protocol/index.js';
import { PILOT_TOKEN, admin, processesWith, tempDir, waitFor } from '../integration/harness.js';
import { snapshotDist, startServerFrom, systemScript } from '../integration/delivery/batch-harness.js';

const LONG = 600_000;

describe('the director in serve on QEMU', () => {
  it('a queued payload makes the director boot a VM; the payload runs in it, its pilot halts, the VM powers off and is deleted with nothing left', async () => {
    const tmp = tempDir('vmpilot-director-serve-vm-');
    const snap = snapshotDist(tmp.dir);
    const image = (await systemScript('vm/build-image.sh', 900_000)).VM_IMAGE_DIR!;
    const workDir = path.join(tmp.dir, 'vms');
    const endpoint = {
      driver: 'qemu',
      qemu: { image: path.join(image, 'disk.qcow2'), kernel: path.join(image, 'vmlinuz'), initrd: path.join(image, 'initrd.img'), workDir },
      shapes: { vm: { cores: 2, memoryMb: 1024, lifetimeSec: 1800 } },
      limits: { instances: 1 },
      timeouts: { idleSec: 10, payloadGraceSec: 5 },
    };
    // JSON is YAML: the config file as an operator could write it
    const configFile = path.join(tmp.dir, 'server.yaml');
    writeFileSync(configFile, JSON.stringify({ endpoints: { vms: endpoint } }, null, 2));
    const server = await startServerFrom(snap.server, path.join(tmp.dir, 'server.db'), '127.0.0.1:0', ['--config', configFile]);
    const api = admin(server.url);
    const get = async <T>(route: string) => {
      const r = await api.call<T>('GET', route);
      if (r.status !== 200) throw new Error(`GET ${route} → ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    };
    const serialLog = (key: string) => {
      try {
        return readFileSync(path.join(workDir, key, 'serial.log'), 'utf8').slice(-4000);
      } catch {
        return '(no serial log)';
      }
    };
    let passed = false;
    try {
      const first = await waitFor('the first cycle', async () => (await get<DirectorStatusReply>('/v1/director')).lastCycle ?? undefined, 60_000);
      expect(first.decision.demand.payloads).toBe(0);
      expect(await get<InstanceView[]>('/v1/instances')).toEqual([]);

      const id = await api.submit({ command: ['sh', '-c', 'echo "payload on $(uname -n)"; test ! -e /usr/bin/node'], group: 'vm' });
      // the user-data the VM booted with, read while its directory is there
      let userData: string | undefined;
      const made = await waitFor('the director to boot a VM', async () => {
        const i = (await get<InstanceView[]>('/v1/instances'))[0];
        if (!i) return undefined;
        const file = path.join(workDir, i.key, 'user-data');
        if (existsSync(file)) userData = readFileSync(file, 'utf8');
        return userData !== undefined && i;
      }, 120_000);
      expect(made).toMatchObject({ endpoint: 'vms', shape: 'vm', manual: false, forGroup: 'vm' });
      expect(userData).not.toContain(PILOT_TOKEN);
      expect(userData).toMatch(/vmpi_[A-Za-z0-9_-]{20,}/);

      try {
        await waitFor('the payload to be done in the VM', async () => (await api.job(id)).state === 'done', LONG);
      } catch (err) {
        throw new Error(`${(err as Error).message}; the VM's console ends with:\n${serialLog(made.key)}`);
      }
      const job = await api.job(id);
      // it ran in the guest: named by the VM's hostname (its key), where there is no node
      expect(job.outputTail).toContain(`payload on ${made.key.slice(0, 63)}`);

      let deleted: InstanceView;
      try {
        deleted = await waitFor('the VM to power off and the director to delete it', async () => {
          const i = (await get<InstanceView[]>('/v1/instances')).find((x) => x.id === made.id);
          return i?.state === 'deleted' && i;
        }, LONG);
      } catch (err) {
        throw new Error(`${(err as Error).message}; the VM's console ends with:\n${serialLog(made.key)}`);
      }
      expect(deleted.pilotId).toBe(job.pilotId);
      const pilot = await get<PilotView>(`/v1/pilots/${job.pilotId}`);
      const why = JSON.stringify({ pilot: await get(`/v1/pilots/${job.pilotId}/history`), instance: await get(`/v1/instances/${made.id}`), reports: await get(`/v1/pilots/${job.pilotId}/detail`) });
      expect(pilot, why).toMatchObject({ instanceId: made.id, state: 'halted', shutdownCode: 300 });
      // it halted by itself and powered off: not deleted while running
      const detail = await get<{ history: { state: string }[] }>(`/v1/instances/${made.id}`);
      expect(detail.history.map((h) => h.state)).toEqual(expect.arrayContaining(['registered', 'deleted']));
      // one VM only, and nothing of it left
      expect((await get<InstanceView[]>('/v1/instances')).map((i) => i.id)).toEqual([made.id]);
      expect(processesWith(workDir)).toEqual([]);
      expect(readdirSync(workDir)).not.toContain(made.key);
      passed = true;
    } finally {
      await server.stop();
      // QEMU is daemonized and outlives the server: a failed test must not leave its VM running
      const left = processesWith(workDir);
      for (const pid of left) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
      tmp.cleanup();
      if (passed) expect(left).toEqual([]);
    }
  }, 1_200_000);
});
