/**
 * `vmpilot-server user-data`: #cloud-config for a standard image with no
 * usable Node.js. cloud-init writes the agent's config and credential (mode
 * 0600), a fetch script and a systemd unit; the unit's ExecStartPre fetches
 * the agent executable from the server and checks its sha256 (every start,
 * so a tampered cache never runs); the agent runs, and when it halts it
 * powers the VM off (or runs the halt action given). systemd restarts the
 * agent when it crashes, not after a halt: a halt writes shutdown_message,
 * which the unit's ConditionPathExists refuses, and the halt exit statuses
 * 14..17 are in RestartPreventExitStatus. With a CA (`--ca-file`), it is
 * written to /etc/vmpilot/ca.pem and is the only CA the fetch and the agent
 * (`caFile`) trust.
 *
 * A pure function of checked options; cloud-init/vmpilot.yaml holds its
 * output with placeholder values.
 */
import { stringify } from 'yaml';
import { VERSION } from '../../protocol/version.js';
import { VmpilotError } from '../../shared/errors.js';
import { type RegistrationSecret, checkCaPem, checkInt, checkRegistration, checkServerUrl } from './options.js';
import { FETCH_FUNCTIONS, agentVars, shq, type AgentRef } from './shell.js';

/** What `user-data` is told. */
export interface UserDataOptions extends RegistrationSecret {
  /** The server URL as the VM reaches it. */
  server: string;
  /** The pilot registration token. */
  token: string | undefined;
  agent: AgentRef;
  /** Cores to offer; null: probed. */
  cores: number | null;
  idleTimeoutSec: number;
  graceSec: number;
  /** The agent halts this long after boot; null for no limit. */
  lifetimeSec: number | null;
  /** exit, poweroff or a shell command. */
  halt: string;
  /** Extra Debian packages cloud-init installs first (e.g. curl when the image has neither curl nor wget). */
  packages: readonly string[];
  /** SSH public keys for the default user (debugging). */
  sshKeys: readonly string[];
  /** Watch the cloud's spot interruption notice (`aws`: EC2 instance metadata), e.g. on a spot instance. */
  spotNotice?: 'aws';
  /** A CA to trust, and only it, for the agent's download and the agent (`--ca-file`): its file (for messages) and PEM text. */
  ca?: { file: string; pem: string } | undefined;
}

/** Defaults of the optional knobs. */
export const USER_DATA_DEFAULTS = { idleTimeoutSec: 300, graceSec: 30, halt: 'poweroff' } as const;

/** Where things go on the VM. */
export const VM_PATHS = {
  config: '/etc/vmpilot/vmpilot.yaml',
  ca: '/etc/vmpilot/ca.pem',
  credential: '/etc/vmpilot/agent.env',
  fetch: '/usr/local/lib/vmpilot/fetch-agent.sh',
  agent: '/usr/local/lib/vmpilot/vmpilot',
  cache: '/var/cache/vmpilot',
  state: '/var/lib/vmpilot',
  unit: '/etc/systemd/system/vmpilot.service',
} as const;

/** The systemd unit (also packaging/vmpilot.service). */
export const SYSTEMD_UNIT = `[Unit]
Description=vmpilot pilot agent
Wants=network-online.target
After=network-online.target cloud-final.service
# A halted agent wrote its shutdown_message: never start it again on this machine.
ConditionPathExists=!${VM_PATHS.state}/shutdown_message

[Service]
Type=simple
# As root: each payload runs as an unprivileged account of its own (vmpilot-slotN), in a
# cgroup it cannot leave; it cannot read /etc/vmpilot, the token or the agent's state.
# Delegate lets the agent make those cgroups below its own.
Delegate=yes
EnvironmentFile=${VM_PATHS.credential}
# Fetch the agent from the server (or the cache) and check its sha256 before every start.
ExecStartPre=${VM_PATHS.fetch}
ExecStart=${VM_PATHS.agent} run --config ${VM_PATHS.config}
# Restart after a crash, not after a halt (exit 0, or 14..17 for shutdown codes 400..700).
Restart=on-failure
RestartSec=10
RestartPreventExitStatus=14 15 16 17
# SIGTERM halts the agent: it stops its payloads within its grace time and reports.
KillMode=mixed
TimeoutStopSec=120
# the agent's log also on the console: a cloud's console log shows why a VM halted
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
`;

function checkHalt(halt: string): string {
  if (halt.trim() === '' || /[\n\r]/.test(halt) || halt.length > 1000) {
    throw new VmpilotError('VMP_USAGE', `--halt "${halt}": expected exit, poweroff or a one-line shell command`);
  }
  return halt.trim();
}

function checkUserDataOptions(o: UserDataOptions): void {
  checkServerUrl('--server', o.server);
  checkRegistration(o);
  if (o.cores !== null) checkInt('--cores', o.cores, 1, 4096);
  checkInt('--idle-timeout', o.idleTimeoutSec, 0, 30 * 86400);
  checkInt('--grace', o.graceSec, 0, 3600);
  if (o.lifetimeSec !== null) checkInt('--lifetime', o.lifetimeSec, 60, 366 * 86400);
  checkHalt(o.halt);
  for (const p of o.packages) {
    if (!/^[a-z0-9][a-z0-9+.-]{0,99}$/.test(p)) throw new VmpilotError('VMP_USAGE', `--package "${p}": expected a Debian package name such as curl`);
  }
  for (const k of o.sshKeys) {
    if (!/^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp\d+|sk-[a-z0-9@.-]+) [A-Za-z0-9+/=]+( [^\n\r]*)?$/.test(k)) {
      throw new VmpilotError('VMP_USAGE', `--ssh-key "${k.slice(0, 40)}…": expected one OpenSSH public key line (ssh-ed25519 AAAA… comment)`);
    }
  }
  if (o.ca !== undefined) checkCaPem('--ca-file', o.ca.file, o.ca.pem);
  if (o.agent.kind !== 'executable') {
    throw new VmpilotError('VMP_USAGE', '--agent bundle: images have no suitable Node.js; user-data always fetches the executable');
  }
}

/** The #cloud-config text, from checked options. */
export function userData(o: UserDataOptions): string {
  checkUserDataOptions(o);
  const server = checkServerUrl('--server', o.server);
  const config = {
    server,
    halt: checkHalt(o.halt),
    stateDir: VM_PATHS.state,
    idleTimeoutSec: o.idleTimeoutSec,
    graceSec: o.graceSec,
    ...(o.cores === null ? {} : { cores: o.cores }),
    ...(o.lifetimeSec === null ? {} : { lifetimeSec: o.lifetimeSec }),
    ...(o.spotNotice ? { spotNotice: o.spotNotice } : {}),
    ...(o.ca ? { caFile: VM_PATHS.ca } : {}),
  };
  const fetch = `#!/bin/sh
# Fetch the vmpilot agent from the server, check its sha256, link it to ${VM_PATHS.agent}.
set -eu
${agentVars(server, o.agent)}
. ${VM_PATHS.credential}
export VMPILOT_PILOT_TOKEN
${o.ca ? `export VMPILOT_CA_FILE=${VM_PATHS.ca}
` : ''}
${FETCH_FUNCTIONS}

vmpilot_install_agent ${VM_PATHS.cache}
ln -sfn "$VMPILOT_AGENT" ${VM_PATHS.agent}.new
mv -Tf ${VM_PATHS.agent}.new ${VM_PATHS.agent}
`;
  const doc: Record<string, unknown> = {
    ...(o.packages.length > 0 ? { packages: [...o.packages] } : {}),
    ...(o.sshKeys.length > 0 ? { ssh_authorized_keys: [...o.sshKeys] } : {}),
    write_files: [
      { path: VM_PATHS.credential, owner: 'root:root', permissions: '0600', content: `VMPILOT_PILOT_TOKEN=${shq(checkRegistration(o))}\n` },
      { path: VM_PATHS.config, owner: 'root:root', permissions: '0600', content: stringify(config) },
      ...(o.ca ? [{ path: VM_PATHS.ca, owner: 'root:root', permissions: '0644', content: checkCaPem('--ca-file', o.ca.file, o.ca.pem) }] : []),
      { path: VM_PATHS.fetch, owner: 'root:root', permissions: '0700', content: fetch },
      { path: VM_PATHS.unit, owner: 'root:root', permissions: '0644', content: SYSTEMD_UNIT },
    ],
    runcmd: [
      ['systemctl', 'daemon-reload'],
      ['systemctl', 'enable', 'vmpilot.service'],
      ['systemctl', 'start', '--no-block', 'vmpilot.service'],
    ],
  };
  return `#cloud-config\n# vmpilot pilot VM, made by vmpilot-server user-data ${VERSION}.\n${stringify(doc, { lineWidth: 0 })}`;
}
