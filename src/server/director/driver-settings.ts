/**
 * The settings of each driver, as written under `endpoints.NAME.<driver>`:
 * `process` (agents as local child processes), `slurm`, `pbs`, `sge` (batch
 * jobs, on this host or through ssh to a login node), `qemu` (a VM per
 * instance on this host), and the clouds `ec2`, `openstack`, `opennebula`
 * (cloud-settings.ts). Validated like the rest of the configuration.
 */
import {
  ABSOLUTE_PATH,
  ABSOLUTE_PATH_TEXT,
  type At,
  PLAIN_NAME,
  PLAIN_NAME_TEXT,
  badConfig,
  int,
  mapping,
  optStr,
  str,
  strList,
  under,
} from './config-check.js';
import { type CloudSettings, ec2From, opennebulaFrom, openstackFrom } from './cloud-settings.js';

/** The drivers there are. */
export const DRIVER_KINDS = ['process', 'slurm', 'pbs', 'sge', 'qemu', 'ec2', 'openstack', 'opennebula'] as const;
export type DriverKind = (typeof DRIVER_KINDS)[number];
/** The batch systems among them. */
export type BatchKind = 'slurm' | 'pbs' | 'sge';

/** `process`: each instance is `node vmpilot.cjs run` in a directory of its own under workDir. */
export interface ProcessSettings {
  kind: 'process';
  workDir: string;
  /** The agent bundle (null: dist/vmpilot.cjs beside the server bundle). */
  agent: string | null;
  /** The node binary (null: the server's own). */
  node: string | null;
  /** More `vmpilot run` flags (e.g. --payload-user nobody). */
  extraArgs: readonly string[];
}

/** How to reach a login node: the system OpenSSH client, one shared connection. */
export interface SshSettings {
  host: string;
  user: string | null;
  port: number;
  /** Private key file (null: ssh's own choice). */
  key: string | null;
  /** More `-o Key=Value` options (e.g. UserKnownHostsFile=/etc/vmpilot/known_hosts). */
  options: readonly string[];
  /** How long the shared connection outlives its last use. */
  controlPersistSec: number;
  /**
   * Reverse mode: a tunnel (`ssh -R`) the driver keeps open beside its
   * commands, so that a relay on a login node that cannot open connections
   * to the server reaches it through `listen` there. Null: no tunnel.
   */
  reverse: ReverseTunnelSettings | null;
}

/** A host and port. */
export interface HostPort {
  host: string;
  port: number;
}

/** `ssh.reverse`: where the tunnel listens on the login node, and where it leads on the server's host. */
export interface ReverseTunnelSettings {
  /** On the login node (default host 127.0.0.1: only local processes, the relay, can use it). */
  listen: HostPort;
  /** The server's own listening address, as the server's host reaches it. */
  to: HostPort;
}

/** `slurm`, `pbs`, `sge`: the batch script of `vmpilot-server batch-script`, submitted with sbatch or qsub. */
export interface BatchSettings {
  kind: BatchKind;
  /** Through ssh to a login node; null: commands on this host. */
  ssh: SshSettings | null;
  /** Partition (Slurm) or queue. */
  queue: string | null;
  account: string | null;
  /** Grid Engine parallel environment. */
  sgePe: string;
  /** Where the job's state directories go on the nodes (default $TMPDIR). */
  workDir: string | null;
  /** Agent cache on the nodes. */
  cacheDir: string | null;
  /** Job stdout/stderr file on the cluster (the system's default when null). */
  output: string | null;
  /** Which agent file the job fetches. */
  agent: 'executable' | 'bundle';
  /** Drain this long before the wall time ends. */
  drainBeforeSec: number;
  /** Environment for the batch commands (e.g. SLURM_CONF), set with env(1) before each. */
  env: Readonly<Record<string, string>>;
  /** More arguments to sbatch or qsub. */
  submitArgs: readonly string[];
}

/** `qemu`: a VM per instance from a copy-on-write overlay of `image`. */
export interface QemuSettings {
  kind: 'qemu';
  /** The base image (qcow2), never written to. */
  image: string;
  /** Boot this kernel and initrd directly (an image without a boot loader); null: the image boots itself. */
  kernel: string | null;
  initrd: string | null;
  append: string;
  workDir: string;
  /** auto: KVM when a kernel really boots under it, else TCG. */
  accel: 'auto' | 'kvm' | 'tcg';
  /** The qemu-system binary. */
  binary: string;
}

export type DriverSettings = ProcessSettings | BatchSettings | QemuSettings | CloudSettings;

const ARG = /^[^\n\r\0]{1,1000}$/;
const HOST = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$|^\[[0-9A-Fa-f:.]+\]$|^[0-9A-Fa-f:]+$/;
const SSH_OPTION = /^[A-Za-z]+=[^\s'"\\]{1,500}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,99}$/;
const ENV_VALUE = /^[^\n\r\0'"\\$`]{0,1000}$/;

/** The settings of a `kind` driver at `at`. */
export function driverSettingsFrom(kind: DriverKind, value: unknown, at: At): DriverSettings {
  if (kind === 'process') return processFrom(value, at);
  if (kind === 'qemu') return qemuFrom(value, at);
  if (kind === 'ec2') return ec2From(value, at);
  if (kind === 'openstack') return openstackFrom(value, at);
  if (kind === 'opennebula') return opennebulaFrom(value, at);
  return batchFrom(kind, value, at);
}

function processFrom(value: unknown, at: At): ProcessSettings {
  const p = mapping(value, at, ['workDir', 'agent', 'node', 'extraArgs'], false);
  return Object.freeze({
    kind: 'process',
    workDir: str(p.workDir, under(at, 'workDir'), ABSOLUTE_PATH, ABSOLUTE_PATH_TEXT),
    agent: optStr(p.agent, under(at, 'agent'), ABSOLUTE_PATH, ABSOLUTE_PATH_TEXT),
    node: optStr(p.node, under(at, 'node'), ABSOLUTE_PATH, ABSOLUTE_PATH_TEXT),
    extraArgs: Object.freeze(strList(p.extraArgs, under(at, 'extraArgs'), ARG, 'one-line arguments')),
  });
}

function sshFrom(value: unknown, at: At): SshSettings {
  const s = mapping(value, at, ['host', 'user', 'port', 'key', 'options', 'controlPersistSec', 'reverse'], false);
  return Object.freeze({
    host: str(s.host, under(at, 'host'), HOST, 'a host name or address'),
    user: optStr(s.user, under(at, 'user'), /^[a-z_][a-z0-9_.-]{0,31}$/, 'a user name'),
    port: int(s.port, under(at, 'port'), 1, 65535, 22),
    key: optStr(s.key, under(at, 'key'), ABSOLUTE_PATH, ABSOLUTE_PATH_TEXT),
    options: Object.freeze(strList(s.options, under(at, 'options'), SSH_OPTION, 'ssh options as Key=Value (no spaces or quotes)')),
    controlPersistSec: int(s.controlPersistSec, under(at, 'controlPersistSec'), 1, 86400, 600),
    reverse: s.reverse === undefined || s.reverse === null ? null : reverseFrom(s.reverse, under(at, 'reverse')),
  });
}

const HOST_PORT = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9][A-Za-z0-9.-]{0,252})):([0-9]{1,5})$/;

/** `HOST:PORT` (an IPv6 address in brackets) at `at`. */
function hostPort(value: unknown, at: At, fallbackHost: string | null): HostPort {
  const text = typeof value === 'number' && fallbackHost !== null ? `${fallbackHost}:${value}` : value;
  const m = typeof text === 'string' ? HOST_PORT.exec(text) : null;
  const port = m ? Number(m[3]) : 0;
  if (!m || port < 1 || port > 65535) {
    throw badConfig(at, `must be HOST:PORT (a port from 1 to 65535${fallbackHost === null ? '' : `, or a port alone for ${fallbackHost}`}), e.g. 127.0.0.1:8443`);
  }
  return Object.freeze({ host: m[1] ?? m[2]!, port });
}

function reverseFrom(value: unknown, at: At): ReverseTunnelSettings {
  const r = mapping(value, at, ['listen', 'to'], false);
  if (r.listen === undefined) throw badConfig(under(at, 'listen'), 'is missing: the port (or HOST:PORT) the tunnel opens on the login node, where the relay finds the server');
  if (r.to === undefined) throw badConfig(under(at, 'to'), "is missing: the server's own listening address (HOST:PORT), where the tunnel leads");
  return Object.freeze({ listen: hostPort(r.listen, under(at, 'listen'), '127.0.0.1'), to: hostPort(r.to, under(at, 'to'), null) });
}

function batchFrom(kind: BatchKind, value: unknown, at: At): BatchSettings {
  const b = mapping(value, at, ['ssh', 'queue', 'account', 'sgePe', 'workDir', 'cacheDir', 'output', 'agent', 'drainBeforeSec', 'env', 'submitArgs']);
  const envAt = under(at, 'env');
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(mapping(b.env, envAt, null))) {
    if (!ENV_NAME.test(k)) throw badConfig(under(envAt, k), 'is not an environment variable name');
    env[k] = str(v, under(envAt, k), ENV_VALUE, 'a one-line value without quotes, backslashes, $ or `');
  }
  if (kind !== 'sge' && b.sgePe !== undefined) throw badConfig(under(at, 'sgePe'), `is for the sge driver only, not ${kind}`);
  return Object.freeze({
    kind,
    ssh: b.ssh === undefined || b.ssh === null ? null : sshFrom(b.ssh, under(at, 'ssh')),
    queue: optStr(b.queue, under(at, 'queue'), PLAIN_NAME, PLAIN_NAME_TEXT),
    account: optStr(b.account, under(at, 'account'), PLAIN_NAME, PLAIN_NAME_TEXT),
    sgePe: str(b.sgePe, under(at, 'sgePe'), PLAIN_NAME, PLAIN_NAME_TEXT, 'smp'),
    workDir: optStr(b.workDir, under(at, 'workDir'), ABSOLUTE_PATH, ABSOLUTE_PATH_TEXT),
    cacheDir: optStr(b.cacheDir, under(at, 'cacheDir'), ABSOLUTE_PATH, ABSOLUTE_PATH_TEXT),
    output: optStr(b.output, under(at, 'output'), ABSOLUTE_PATH, ABSOLUTE_PATH_TEXT),
    agent: str(b.agent, under(at, 'agent'), /^(executable|bundle)$/, 'executable or bundle', 'executable') as 'executable' | 'bundle',
    drainBeforeSec: int(b.drainBeforeSec, under(at, 'drainBeforeSec'), 0, 86400, 300),
    env: Object.freeze(env),
    submitArgs: Object.freeze(strList(b.submitArgs, under(at, 'submitArgs'), /^-[^\n\r\0'"\\$`]{0,500}$/, 'options starting with - (no quotes, $ or `)')),
  });
}

function qemuFrom(value: unknown, at: At): QemuSettings {
  const q = mapping(value, at, ['image', 'kernel', 'initrd', 'append', 'workDir', 'accel', 'binary'], false);
  const kernel = optStr(q.kernel, under(at, 'kernel'), ABSOLUTE_PATH, ABSOLUTE_PATH_TEXT);
  const initrd = optStr(q.initrd, under(at, 'initrd'), ABSOLUTE_PATH, ABSOLUTE_PATH_TEXT);
  if ((kernel === null) !== (initrd === null)) throw badConfig(under(at, kernel === null ? 'kernel' : 'initrd'), 'is missing: kernel and initrd go together');
  return Object.freeze({
    kind: 'qemu',
    image: str(q.image, under(at, 'image'), ABSOLUTE_PATH, ABSOLUTE_PATH_TEXT),
    kernel,
    initrd,
    append: str(q.append, under(at, 'append'), /^[^\n\r\0]{1,1000}$/, 'a one-line kernel command line', 'root=/dev/vda rw console=ttyS0'),
    workDir: str(q.workDir, under(at, 'workDir'), ABSOLUTE_PATH, ABSOLUTE_PATH_TEXT),
    accel: str(q.accel, under(at, 'accel'), /^(auto|kvm|tcg)$/, 'auto, kvm or tcg', 'auto') as QemuSettings['accel'],
    binary: str(q.binary, under(at, 'binary'), /^[A-Za-z0-9._/+-]{1,500}$/, 'a program name or path', 'qemu-system-x86_64'),
  });
}
