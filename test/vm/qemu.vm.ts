/**
 * `npm run test:vm`: a real VM. A minimal Debian image with cloud-init and no
 * Node.js (built once by test/systems/vm/build-image.sh and cached outside
 * the repository) boots in QEMU (KVM when it really works here, software
 * emulation otherwise) with a NoCloud seed holding `vmpilot-server
 * user-data`. Its only network is QEMU user networking with restrict=on and
 * one forward, 10.0.2.100:8080 → the test server on 127.0.0.1 (a small
 * forwarder per connection). Inside,
 * cloud-init fetches the agent executable and checks its sha256, systemd
 * starts it, it registers, runs the queued payloads, halts when idle, and
 * powers the VM off: QEMU exits by itself.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PILOT_TOKEN, admin, kill, runCommand, tempDir } from '../integration/harness.js';
import { snapshotDist, startServerFrom, systemScript } from '../integration/delivery/batch-harness.js';

describe('a QEMU VM started with vmpilot-server user-data', () => {
  const tmp = tempDir('vmpilot-vm-test-');
  let image = '';
  let accel = 'tcg';
  let server: { url: string; stop: () => Promise<unknown> };
  let snap: { server: string; manifest: string };

  beforeAll(async () => {
    snap = snapshotDist(tmp.dir);
    image = (await systemScript('vm/build-image.sh', 900_000)).VM_IMAGE_DIR!;
    accel = (await systemScript('vm/accel.sh', 120_000, [image])).ACCEL!;
  }, 900_000);
  afterAll(async () => {
    await server?.stop();
    tmp.cleanup();
  });

  it('boots, fetches and verifies the agent, runs the payloads, halts when idle and powers itself off', async () => {
    server = await startServerFrom(snap.server, path.join(tmp.dir, 'server.db'));
    const port = new URL(server.url).port;
    const api = admin(server.url);
    const ids = [
      await api.submit({ command: ['sh', '-c', 'echo "payload 1 on $(uname -n)"; test ! -e /usr/bin/node'], group: 'vm' }),
      await api.submit({ command: ['sh', '-c', 'echo "payload 2 with $VMPILOT_CORES cores"'], group: 'vm' }),
    ];

    const ud = await runCommand([snap.server, 'user-data', '--server', 'http://10.0.2.100:8080', '--pilot-token', PILOT_TOKEN, '--idle-timeout', '10', '--grace', '5']);
    expect(ud.code, ud.stderr).toBe(0);
    writeFileSync(path.join(tmp.dir, 'user-data'), ud.stdout);
    writeFileSync(path.join(tmp.dir, 'meta-data'), `instance-id: vmpilot-test-${Date.now()}\nlocal-hostname: vmpilot-vm\n`);
    execFileSync('cloud-localds', [path.join(tmp.dir, 'seed.iso'), path.join(tmp.dir, 'user-data'), path.join(tmp.dir, 'meta-data')]);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', path.join(image, 'disk.qcow2'), path.join(tmp.dir, 'overlay.qcow2')]);

    // One forwarder process per guest connection (guestfwd "cmd:"): the "tcp:" form is a single
    // chardev connection, so the agent's concurrent requests (long-poll match, reports) would queue behind each other.
    const fwd = path.join(tmp.dir, 'fwd.cjs');
    writeFileSync(fwd, `const s = require('net').connect(${port}, '127.0.0.1'); process.stdin.pipe(s); s.pipe(process.stdout); s.on('close', () => process.exit(0)); s.on('error', () => process.exit(1));\n`);
    const serial = path.join(tmp.dir, 'serial.log');
    const args = [
      ...(accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg', '-cpu', 'max']),
      '-m', '1024', '-smp', '2', '-nodefaults', '-display', 'none', '-no-reboot',
      '-kernel', path.join(image, 'vmlinuz'), '-initrd', path.join(image, 'initrd.img'),
      '-append', 'root=/dev/vda rw console=ttyS0',
      '-drive', `file=${path.join(tmp.dir, 'overlay.qcow2')},if=virtio,format=qcow2`,
      '-drive', `file=${path.join(tmp.dir, 'seed.iso')},if=virtio,format=raw,readonly=on`,
      '-nic', `user,model=virtio-net-pci,restrict=on,guestfwd=tcp:10.0.2.100:8080-cmd:${process.execPath} ${fwd}`,
      '-serial', `file:${serial}`,
    ];
    const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let qemuErr = '';
    qemu.stderr.on('data', (d: Buffer) => (qemuErr += d.toString()));
    const exited = new Promise<number | null>((resolve) => qemu.on('exit', (code) => resolve(code)));
    const timeout = new Promise<'timeout'>((resolve) => {
      const t = setTimeout(() => resolve('timeout'), 600_000);
      void exited.then(() => clearTimeout(t));
    });
    const result = await Promise.race([exited, timeout]);
    if (result === 'timeout') kill(qemu);
    const console = readFileSync(serial, 'utf8');
    expect(result, `QEMU did not power off by itself (${accel}):\n${qemuErr}\n${console.slice(-4000)}`).toBe(0);

    const pilots = await api.pilots();
    expect(pilots, console.slice(-4000)).toHaveLength(1);
    const agentLog = console.split('\n').filter((l) => l.includes('vmpilot[')).slice(-30).join('\n');
    expect(pilots[0], agentLog).toMatchObject({ hostname: 'vmpilot-vm', state: 'halted', shutdownCode: 300 });
    for (const id of ids) expect((await api.job(id)).state).toBe('done');
    expect((await api.job(ids[0]!)).outputTail).toContain('payload 1 on vmpilot-vm');
    expect(console).toMatch(/Power-Off|reboot: Power down/);
  }, 900_000);
});
