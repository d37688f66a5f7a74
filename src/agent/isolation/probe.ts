/**
 * Find out what isolation this node allows (the facts planIsolation
 * decides from): whether the agent is root, whether a per-payload cgroup
 * can be made, whether slot accounts can be made, and whether bwrap or
 * unshare can really start a sandbox here — each sandbox is tried once, on
 * a scratch state directory, the way a payload would be started.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { IsolationChoice } from '../config/schema.js';
import { createPayloadCgroup } from '../executor/memory-cgroup.js';
import { findUser, resolvePayloadUser } from '../executor/payload-user.js';
import type { CommandRunner } from '../ports.js';
import { planIsolation, type IsolationFacts, type IsolationPlan } from './plan.js';
import { AGENT_FILES, sandboxCommand, type SandboxSpec } from './sandbox.js';
import { SlotAccounts } from './slots.js';

/** What the probe needs. */
export interface IsolationProbeOptions {
  choice: IsolationChoice;
  payloadUser: string | null;
  run: CommandRunner;
  uid?: number;
  gid?: number;
  cgroupRoot?: string;
  passwdFile?: string;
  slots?: SlotAccounts;
}

/** The facts and the plan made from them, plus whether unshare maps the agent's uid. */
export interface IsolationProbe {
  facts: IsolationFacts;
  plan: IsolationPlan;
  mapUser: boolean;
}

/** The last line a failed command printed, or its error. */
function why(r: { exitCode: number | null; stdout: string; error?: string }): string {
  const text = (r.error ?? '').split('\n').map((l) => l.trim()).filter(Boolean);
  return text.at(-1)?.replace(/^exit \d+: /, '') ?? `exit ${r.exitCode}`;
}

/** Try `tool`'s sandbox once on a scratch state directory; true, or why it does not work. */
async function trySandbox(tool: 'bwrap' | 'unshare', run: CommandRunner, uid: number, gid: number, mapUser: boolean): Promise<true | string> {
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'vmpilot-sandbox-probe-'));
  try {
    const stateDir = path.join(scratch, 'state');
    const payloadDir = path.join(stateDir, 'payloads', '0');
    const sharedDir = path.join(stateDir, 'machinefeatures');
    await mkdir(payloadDir, { recursive: true });
    await mkdir(sharedDir, { recursive: true });
    await writeFile(path.join(stateDir, 'state.json'), 'secret');
    await writeFile(path.join(payloadDir, 'stdout'), '');
    const spec: SandboxSpec = { stateDir, payloadDir, sharedDirs: [sharedDir], protect: AGENT_FILES, hide: [], uid, gid, mapUser };
    // inside, the state file must be gone and the payload directory writable
    const check = `test ! -e ${stateDir}/state.json && : > ${payloadDir}/probe && test -d ${sharedDir}`;
    const r = await run(sandboxCommand(tool, spec, ['/bin/sh', '-c', check]), 10_000);
    if (r.exitCode === 0) return true;
    return r.error?.includes('ENOENT') ? `${tool} is not installed` : `${tool} cannot make a sandbox here: ${why(r)}`;
  } finally {
    await rm(scratch, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Whether a per-payload containment cgroup can be made here: its version, or why not. */
function tryCgroup(root: string | undefined): 1 | 2 | string {
  const cg = createPayloadCgroup(`vmpilot-probe-${process.pid}`, { limitBytes: null, contain: true }, root);
  if (!cg) return 'no writable cgroup hierarchy (v2, or v1 pids)';
  cg.remove();
  return cg.version;
}

/** Probe the node and plan the isolation. Throws VMP_CONFIG for a choice that cannot be had. */
export async function probeIsolation(o: IsolationProbeOptions): Promise<IsolationProbe> {
  const uid = o.uid ?? process.getuid?.() ?? -1;
  const gid = o.gid ?? process.getgid?.() ?? -1;
  const root = uid === 0;
  const passwd = (() => {
    try {
      return readFileSync(o.passwdFile ?? '/etc/passwd', 'utf8');
    } catch {
      return '';
    }
  })();
  const help = root || o.choice === 'none' ? null : await o.run(['unshare', '--help'], 5000);
  const mapUser = help?.stdout.includes('--map-user') ?? false;
  const skip = 'not tried';
  const facts: IsolationFacts = {
    choice: o.choice,
    root,
    payloadUser: root ? resolvePayloadUser(o.payloadUser, uid, o.passwdFile) : null,
    slotAccounts: root && o.choice !== 'none' ? ((await (o.slots ?? new SlotAccounts({ run: o.run })).problem()) ?? true) : skip,
    nobody: findUser(passwd, 'nobody') ?? null,
    bwrap: !root && (o.choice === 'auto' || o.choice === 'bwrap') ? await trySandbox('bwrap', o.run, uid, gid, mapUser) : skip,
    unshare: skip,
    cgroup: root && o.choice !== 'none' ? tryCgroup(o.cgroupRoot) : skip,
  };
  if (!root && facts.bwrap !== true && (o.choice === 'auto' || o.choice === 'unshare')) facts.unshare = await trySandbox('unshare', o.run, uid, gid, mapUser);
  return { facts, plan: planIsolation(facts), mapUser };
}
