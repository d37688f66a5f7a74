/**
 * `npm run test:vm`: the director's `qemu` driver against the driver
 * contract, for real. Each instance is a VM of the test image (built once by
 * test/systems/vm/build-image.sh) from a copy-on-write overlay, with a
 * NoCloud seed of the generated user-data; its only network is the one
 * forward to the test server's loopback port. Here: create by key (once,
 * whatever the retries), list per endpoint, the VM comes up, and after delete
 * no QEMU (or forwarder) process and no file of it is left. The contract's
 * last leg (the pilot halts by itself, the guest powers off, the driver sees
 * it ended and deletes it) is director-serve.vm.ts, which boots its VM through
 * the real server and its director, so that one guest boot shows both. KVM
 * where it really works, else TCG (the driver's own check).
 */
import { readdirSync } from 'node:fs';
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
import { processesWith, tempDir, waitFor } from '../integration/harness.js';
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
        // these VMs are deleted before their pilot needs to register: a credential that is nobody's, never the shared token
        bootstrap: { serverUrl: server.url, credential: 'vmpi_contract-credential-of-no-instance', idleTimeoutSec: 10, graceSec: 5, lifetimeSec: 1800 },
      }),
      until: (what, check) => waitFor(what, check, 600_000),
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
