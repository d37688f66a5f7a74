/**
 * Running the commands of a driver (sbatch, squeue, qemu-img, …), through
 * execa, on this host or on a login node through the system OpenSSH client.
 * Over ssh every call shares one connection (ControlMaster=auto with a
 * ControlPath in a private directory and ControlPersist), so a cycle's
 * squeue and sbatch cost one handshake between them, not one each;
 * `close()` ends that connection (`ssh -O exit`) so no ssh process is left
 * behind. With `ssh.reverse` set, the runner also keeps the endpoint's
 * reverse tunnel (ssh-tunnel.ts) from its first command until `close()`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { VmpilotError } from '../../../shared/errors.js';
import { shq } from '../../delivery/shell.js';
import { type Clock, systemClock } from '../../../shared/clock.js';
import type { Logger } from '../../../shared/log.js';
import type { SshSettings } from '../driver-settings.js';
import { ReverseTunnel, sshLoginArgs, type TunnelState } from './ssh-tunnel.js';

/** What a command did. */
export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs a driver's commands. */
export interface CommandRunner {
  /** Where the commands run, for messages ("this host", "pilot@login.example.org"). */
  readonly where: string;
  /**
   * Run `argv` with `input` on its stdin; resolves with its exit status
   * whatever it is. Rejects (VMP_DRIVER) only when it could not be run, the
   * login node could not be reached, or it ran past `timeoutMs`.
   */
  run(argv: readonly string[], options?: { input?: string; timeoutMs?: number }): Promise<CommandResult>;
  /** End what the runner keeps open (the shared ssh connection). */
  close(): Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 60_000;

/** The one-line reason of a command that failed, for error messages: its stderr's last lines. */
export function commandError(where: string, argv: readonly string[], r: CommandResult): VmpilotError {
  const said = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' | ') || 'no output';
  return new VmpilotError('VMP_DRIVER', `${argv[0]} on ${where} exited with ${r.exitCode}: ${said}`, { details: { exitCode: r.exitCode } });
}

/** Commands on this host, with `env` added to the server's environment. */
export class LocalCommands implements CommandRunner {
  readonly where = 'this host';

  constructor(private readonly env: Readonly<Record<string, string>> = {}) {}

  async run(argv: readonly string[], options: { input?: string; timeoutMs?: number } = {}): Promise<CommandResult> {
    const [file, ...args] = argv;
    if (!file) throw new VmpilotError('VMP_INTERNAL', 'empty command');
    const r = await execa(file, args, {
      reject: false,
      env: { ...this.env },
      timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      ...(options.input === undefined ? { stdin: 'ignore' as const } : { input: options.input }),
      stripFinalNewline: false,
    });
    if (r.timedOut) throw new VmpilotError('VMP_DRIVER', `${file} on this host did not finish within ${(options.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000} s`);
    if (r.failed && r.exitCode === undefined) throw new VmpilotError('VMP_DRIVER', `cannot run ${file} on this host: ${r.shortMessage}`);
    return { exitCode: r.exitCode ?? 1, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
  }

  async close(): Promise<void> {}
}

/** Commands on a login node through ssh, one shared connection; `env` set with env(1) before each. */
export class SshCommands implements CommandRunner {
  readonly where: string;
  private controlDir: Promise<string> | null = null;
  private readonly tunnel: ReverseTunnel | null;

  constructor(
    private readonly ssh: SshSettings,
    private readonly env: Readonly<Record<string, string>> = {},
    /** The ssh client (a test gives a stand-in that runs the remote command here). */
    private readonly binary = 'ssh',
    /** For the reverse tunnel's pauses and its log lines. */
    tunnelDeps: { clock: Clock; log: Logger | null } = { clock: systemClock, log: null },
  ) {
    this.where = `${ssh.user ? `${ssh.user}@` : ''}${ssh.host}`;
    this.tunnel = ssh.reverse ? new ReverseTunnel(ssh, ssh.reverse, tunnelDeps.clock, tunnelDeps.log, binary) : null;
  }

  /** The ssh arguments before the remote command. */
  async sshArgs(): Promise<string[]> {
    this.controlDir ??= mkdtemp(path.join(tmpdir(), 'vmpilot-ssh-'));
    const dir = await this.controlDir;
    const s = this.ssh;
    return [
      '-o', 'BatchMode=yes',
      '-o', 'ControlMaster=auto',
      '-o', `ControlPath=${dir}/%C`,
      '-o', `ControlPersist=${s.controlPersistSec}`,
      '-o', 'ServerAliveInterval=30',
      ...sshLoginArgs(s),
      s.host,
    ];
  }

  async run(argv: readonly string[], options: { input?: string; timeoutMs?: number } = {}): Promise<CommandResult> {
    // reverse mode: the tunnel is kept from the endpoint's first command on (the director lists every cycle)
    this.tunnel?.start();
    const envs = Object.entries(this.env).map(([k, v]) => `${k}=${shq(v)}`);
    const remote = [...(envs.length > 0 ? ['env', ...envs] : []), ...argv.map(shq)].join(' ');
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const r = await execa(this.binary, [...(await this.sshArgs()), '--', remote], {
      reject: false,
      timeout: timeoutMs,
      ...(options.input === undefined ? { stdin: 'ignore' as const } : { input: options.input }),
      stripFinalNewline: false,
    });
    if (r.timedOut) throw new VmpilotError('VMP_DRIVER', `${argv[0]} on ${this.where} did not finish within ${timeoutMs / 1000} s`);
    if (r.failed && r.exitCode === undefined) throw new VmpilotError('VMP_DRIVER', `cannot run ssh: ${r.shortMessage}`);
    const stderr = String(r.stderr ?? '');
    // 255 is ssh's own failure (it could not connect or authenticate), not the remote command's
    if (r.exitCode === 255) throw new VmpilotError('VMP_DRIVER', `ssh to ${this.where} failed: ${stderr.trim().split('\n').slice(-2).join(' | ') || 'exit 255'}`);
    return { exitCode: r.exitCode ?? 1, stdout: String(r.stdout ?? ''), stderr };
  }

  /** The reverse tunnel's state, or null when this endpoint has none. */
  tunnelState(): TunnelState | null {
    return this.tunnel?.state() ?? null;
  }

  async close(): Promise<void> {
    await this.tunnel?.close();
    if (!this.controlDir) return;
    const dir = await this.controlDir;
    this.controlDir = null;
    // ends the shared connection's master process, if one runs
    await execa(this.binary, ['-o', `ControlPath=${dir}/%C`, '-p', String(this.ssh.port), ...(this.ssh.user ? ['-l', this.ssh.user] : []), '-O', 'exit', this.ssh.host], { reject: false, timeout: 10_000, stdin: 'ignore' });
    await rm(dir, { recursive: true, force: true });
  }
}

/** The runner of an endpoint: ssh when it has a login node, else this host. */
export function commandRunner(
  ssh: SshSettings | null,
  env: Readonly<Record<string, string>>,
  tunnelDeps?: { clock: Clock; log: Logger | null },
): CommandRunner {
  return ssh ? new SshCommands(ssh, env, 'ssh', tunnelDeps) : new LocalCommands(env);
}
