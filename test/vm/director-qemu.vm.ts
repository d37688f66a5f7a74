/**
 * `npm run test:vm`: the director's `qemu` driver against the driver
 * contract, for real. Each instance is a VM of the test image (built once by
 * test/systems/vm/build-image.sh) from a copy-on-write overlay, with a
 * NoCloud seed of the generated user-data; its only network is the one
 * forward to the test server's loopback port. The VM that is left alone
 * fetches and verifies the agent, registers, runs the queued payload, halts
 * when idle and powers itself off; the driver then removes its files, and no
 * QEMU (or forwarder) process is left. KVM where it really works, else TCG
 * (the driver's own check).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { resourcePrefix } from '../../src/server/director/credential.js';
import { endpointsFrom } from '../../src/server/director/endpoint-config.js';
import { QemuDriver } from '../../src/server/director/drivers/qemu.js';
import type { QemuSettings } from '../../src/server/director/driver-settings.js';
import { pickAgentFile, readManifest } from '../../src/server/delivery/manifest.js';
import { agentRef } from '../../src/server/delivery/shell.js';
import { systemClock } from '../../src/shared/clock.js';
import { driverContract } from '../unit/server/director/driver-contract.js';
import { PILOT_TOKEN, admin, processesWith, tempDir, waitFor } from '../integration/harness.js';
import { snapshotDist, startServerFrom, systemScript } from '../integration/delivery/batch-harness.js';

driverContract(
  'qemu',
  async () => {
    const tmp = tempDir('vmpilot-director-qemu-');
    const snap = snapshotDist(tmp.dir);
    const image = (await systemScript('vm/build-image.sh', 900_000)).VM_IMAGE_DIR!;
    const server = await startServerFrom(snap.server, path.join(tmp.dir, 'server.db'));
    const agent = agentRef(pickAgentFile(await readManifest(path.dirname(snap.manifest)), 'executable'));
    const workDir = path.join(tmp.dir, 'vms');
    const settings = endpointsFrom(
      { vms: { driver: 'qemu', qemu: { image: path.join(image, 'disk.qcow2'), kernel: path.join(image, 'vmlinuz'), initrd: path.join(image, 'initrd.img'), workDir }, shapes: { vm: { cores: 2, memoryMb: 1024 } } } },
      'test',
    )[0]!.driver as QemuSettings;
    const make = (endpoint: string) => new QemuDriver({ settings, prefix: resourcePrefix('test', endpoint), agent, node: process.execPath, clock: systemClock });
    const api = admin(server.url);
    const driver = make('vms');
    return {
      driver,
      prefix: resourcePrefix('test', 'vms'),
      other: { driver: make('other'), prefix: resourcePrefix('test', 'other') },
      request: (key) => ({
        key,
        cores: 2,
        memoryMb: 1024,
        lifetimeSec: 1800,
        // phase A: the server knows no instance credentials yet: the VM registers with the shared token
        bootstrap: { serverUrl: server.url, credential: PILOT_TOKEN, idleTimeoutSec: 10, graceSec: 5, lifetimeSec: 1800 },
      }),
      until: (what, check) => waitFor(what, check, 600_000),
      halt: async (r) => {
        const id = await api.submit({ command: ['sh', '-c', 'echo "payload on $(uname -n)"; test ! -e /usr/bin/node'], group: 'vm' });
        await waitFor('the payload to be done in the VM', async () => (await api.job(id)).state === 'done', 600_000);
        const job = await api.job(id);
        expect(job.outputTail).toMatch(/payload on \S+/);
        await waitFor('its pilot to halt', async () => (await api.pilots()).find((p) => p.id === job.pilotId && p.state === 'halted' && p.shutdownCode === 300), 300_000);
        // then the guest powers itself off, which ends QEMU (-no-reboot); on failure, say what the console showed
        try {
          await waitFor('the VM to power off', async () => (await driver.describe(r.id))?.state === 'ended', 300_000);
        } catch (err) {
          let serial = '(no serial log)';
          try {
            serial = readFileSync(path.join(workDir, r.key, 'serial.log'), 'utf8').slice(-4000);
          } catch {
            // removed already
          }
          throw new Error(`${(err as Error).message}; the VM's console ends with:\n${serial}`);
        }
      },
      nothingLeft: async (r) => {
        expect(processesWith(path.join(workDir, r.key))).toEqual([]);
        expect(readdirSync(workDir)).not.toContain(r.key);
      },
      close: async () => {
        await server.stop();
        expect(processesWith(workDir)).toEqual([]);
        tmp.cleanup();
      },
    };
  },
  900_000,
);
