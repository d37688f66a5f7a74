/**
 * The `qemu` driver: a real VM per instance on this host. Its directory
 * under workDir (named by the key) holds a copy-on-write overlay of the
 * configured base image (never written to), a NoCloud seed made from the
 * generated user-data with the instance's own credential (cloud-localds, or
 * genisoimage), the console log and QEMU's pid (copied from its pid file, which QEMU
 * removes when it exits). The VM's only network
 * is QEMU user networking with restrict=on and one forward: 10.0.2.100:8080
 * in the guest → the server's port on 127.0.0.1 on the host, through a small
 * forwarder per connection (so the agent's concurrent requests do not queue
 * on one chardev). KVM where a kernel really boots under it, else TCG (the
 * check of test/systems/vm/accel.sh, made once). QEMU runs daemonized: it
 * outlives a server restart, and the VM powers itself off when its pilot
 * halts (`-no-reboot`), which ends QEMU. `delete` stops QEMU if it still
 * runs, kills what it left (forwarders), and removes the directory.
 */
import { access, constants, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Clock } from '../../../shared/clock.js';
import { VmpilotError, describeError } from '../../../shared/errors.js';
import type { AgentRef } from '../../delivery/shell.js';
import { userData } from '../../delivery/user-data.js';
import type { QemuSettings } from '../driver-settings.js';
import type { CreateRequest, Driver, DriverResource } from '../ports.js';
import { type CommandRunner, LocalCommands, commandError } from './commands.js';
import { claim, describeDir, instanceDir, killStragglers, listKeys, readPid, removeDir, stopProcess } from './local-instances.js';

/** What the qemu driver is made of. */
export interface QemuDriverOptions {
  settings: QemuSettings;
  /** The prefix of this endpoint's keys (credential.ts resourcePrefix). */
  prefix: string;
  /** The agent executable the VM fetches (from the server's manifest). */
  agent: AgentRef;
  /** The node binary that runs the per-connection forwarder (the server's own). */
  node: string;
  clock: Clock;
  commands?: CommandRunner;
  /** How long QEMU has to quit on SIGTERM before it is killed (default 10 s). */
  stopGraceMs?: number;
}

/** Where the guest reaches the server. */
export const GUEST_SERVER = { address: '10.0.2.100', port: 8080 } as const;
/** Where QEMU writes its pid (-pidfile); QEMU removes it when it exits. */
const QEMU_PID_FILE = 'qemu.pid';
/** Our copy of that pid, kept after QEMU exits: without it an ended VM would look not yet started. */
const PID_FILE = 'pid';

/** The forwarder QEMU runs for each guest connection: stdin/stdout ⇄ 127.0.0.1:PORT. */
const FORWARDER = `const port = Number(process.argv[2]);
const s = require('net').connect(port, '127.0.0.1');
process.stdin.pipe(s);
s.pipe(process.stdout);
s.on('close', () => process.exit(0));
s.on('error', () => process.exit(1));
process.stdin.on('end', () => s.end());
`;

/** VMs on this host as a driver. */
export class QemuDriver implements Driver {
  readonly kind = 'qemu';
  private readonly commands: CommandRunner;
  private accel: Promise<'kvm' | 'tcg'> | null = null;

  constructor(private readonly o: QemuDriverOptions) {
    this.commands = o.commands ?? new LocalCommands();
  }

  async create(request: CreateRequest): Promise<DriverResource> {
    if (!request.key.startsWith(this.o.prefix)) throw new VmpilotError('VMP_INTERNAL', `key ${request.key} is not this endpoint's (${this.o.prefix}…)`);
    const d = instanceDir(this.o.settings.workDir, request.key);
    if (!(await claim(d, this.o.clock.now()))) {
      const existing = await this.describe(request.key);
      const stillborn = existing?.state === 'pending' && this.o.clock.now() - (existing.createdAt ?? 0) > 60_000;
      if (existing && !stillborn) return existing;
    }
    try {
      await this.start(request, d.dir);
    } catch (err) {
      await this.delete(request.key).catch(() => undefined);
      throw err instanceof VmpilotError ? err : new VmpilotError('VMP_DRIVER', `cannot start the VM: ${describeError(err)}`, { cause: err });
    }
    return (await this.describe(request.key)) ?? { id: request.key, key: request.key, state: 'pending', createdAt: this.o.clock.now(), detail: 'starting' };
  }

  private async start(request: CreateRequest, dir: string): Promise<void> {
    const s = this.o.settings;
    const b = request.bootstrap;
    const port = serverPort(b.serverUrl);
    const guestUrl = `${new URL(b.serverUrl).protocol}//${GUEST_SERVER.address}:${GUEST_SERVER.port}`;
    const file = (name: string) => path.join(dir, name);
    await writeFile(
      file('user-data'),
      userData({
        server: guestUrl,
        token: undefined,
        instanceCredential: b.credential,
        agent: this.o.agent,
        cores: request.cores,
        idleTimeoutSec: b.idleTimeoutSec,
        graceSec: b.graceSec,
        lifetimeSec: Math.max(60, b.lifetimeSec),
        halt: 'poweroff',
        packages: [],
        sshKeys: [],
      }),
      { mode: 0o600 },
    );
    await writeFile(file('meta-data'), `instance-id: ${request.key}\nlocal-hostname: ${request.key.slice(0, 63)}\n`);
    await writeFile(file('fwd.cjs'), FORWARDER);
    await this.seed(dir);
    await this.must(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', s.image, file('overlay.qcow2')]);
    const accel = await this.accelerator();
    await this.must([
      s.binary,
      ...(accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg', '-cpu', 'max']),
      '-name', request.key,
      '-m', String(request.memoryMb),
      '-smp', String(request.cores),
      '-nodefaults', '-display', 'none', '-no-reboot',
      ...(s.kernel && s.initrd ? ['-kernel', s.kernel, '-initrd', s.initrd, '-append', s.append] : []),
      '-drive', `file=${file('overlay.qcow2')},if=virtio,format=qcow2`,
      '-drive', `file=${file('seed.iso')},if=virtio,format=raw,readonly=on`,
      '-nic', `user,model=virtio-net-pci,restrict=on,guestfwd=tcp:${GUEST_SERVER.address}:${GUEST_SERVER.port}-cmd:${this.o.node} ${file('fwd.cjs')} ${port}`,
      '-serial', `file:${file('serial.log')}`,
      '-pidfile', file(QEMU_PID_FILE),
      '-daemonize',
    ]);
    // -daemonize returns once the daemon has written its pid file; a guest quick to power off may have removed it already
    const pid = await readPid(file(QEMU_PID_FILE));
    if (pid === null) throw new VmpilotError('VMP_DRIVER', `QEMU started but wrote no pid to ${file(QEMU_PID_FILE)}; see ${file('serial.log')}`);
    await writeFile(file(PID_FILE), `${pid}\n`);
  }

  /** The NoCloud seed: cloud-localds where it is installed, else genisoimage. */
  private async seed(dir: string): Promise<void> {
    const f = (n: string) => path.join(dir, n);
    try {
      await this.must(['cloud-localds', f('seed.iso'), f('user-data'), f('meta-data')]);
    } catch (err) {
      try {
        await this.must(['genisoimage', '-quiet', '-output', f('seed.iso'), '-volid', 'cidata', '-joliet', '-rock', f('user-data'), f('meta-data')]);
      } catch {
        throw new VmpilotError('VMP_DRIVER', `cannot make the NoCloud seed (install cloud-image-utils or genisoimage): ${describeError(err)}`, { cause: err });
      }
    }
  }

  /** KVM when /dev/kvm is usable and (with a kernel to try) a kernel really boots under it; else TCG. Once. */
  private accelerator(): Promise<'kvm' | 'tcg'> {
    const s = this.o.settings;
    if (s.accel !== 'auto') return Promise.resolve(s.accel);
    this.accel ??= (async () => {
      try {
        await access('/dev/kvm', constants.R_OK | constants.W_OK);
      } catch {
        return 'tcg';
      }
      if (!s.kernel || !s.initrd) return 'kvm';
      // the kernel alone, init exits at once: it panics, and -no-reboot ends QEMU; a nested PVM /dev/kvm dies earlier
      const log = path.join(s.workDir, `.accel-${process.pid}.log`);
      const r = await this.commands.run(
        [s.binary, '-accel', 'kvm', '-cpu', 'host', '-m', '256', '-nodefaults', '-display', 'none', '-no-reboot', '-kernel', s.kernel, '-initrd', s.initrd, '-append', 'console=ttyS0 panic=-1 rdinit=/bin/false', '-serial', `file:${log}`],
        { timeoutMs: 60_000 },
      ).catch(() => null);
      const console = await readFile(log, 'utf8').catch(() => '');
      await rm(log, { force: true });
      return r !== null && console.includes('Kernel panic') && !/KVM internal error/i.test(console + r.stderr) ? 'kvm' : 'tcg';
    })();
    return this.accel;
  }

  private async must(argv: string[]): Promise<void> {
    const r = await this.commands.run(argv, { timeoutMs: 120_000 });
    if (r.exitCode !== 0) throw commandError(this.commands.where, argv, r);
  }

  async list(): Promise<DriverResource[]> {
    const out: DriverResource[] = [];
    for (const key of await listKeys(this.o.settings.workDir, this.o.prefix)) {
      const r = await this.describe(key);
      if (r) out.push(r);
    }
    return out;
  }

  async describe(id: string): Promise<DriverResource | null> {
    if (!id.startsWith(this.o.prefix)) return null;
    const d = instanceDir(this.o.settings.workDir, id);
    return describeDir(d, PID_FILE, `${d.dir}/`, async (dir) => {
      const console = await readFile(path.join(dir, 'serial.log'), 'utf8').catch(() => '');
      return /reboot: Power down|Power-Off/.test(console) ? 'powered off' : 'QEMU ended';
    });
  }

  async delete(id: string): Promise<void> {
    if (!id.startsWith(this.o.prefix)) return;
    const d = instanceDir(this.o.settings.workDir, id);
    const pid = await readPid(path.join(d.dir, PID_FILE));
    if (pid !== null) await stopProcess(pid, `${d.dir}/`, false, this.o.stopGraceMs ?? 10_000, this.o.clock);
    await killStragglers(`${d.dir}/`, this.o.clock);
    await removeDir(d);
  }

  async close(): Promise<void> {
    await this.commands.close();
  }
}

/** The port of the server's URL (QEMU forwards the guest to it on 127.0.0.1). */
export function serverPort(url: string): number {
  const u = new URL(url);
  const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
  if (!(port > 0 && port < 65536)) throw new VmpilotError('VMP_DRIVER', `no port in the server URL ${url}`);
  return port;
}
