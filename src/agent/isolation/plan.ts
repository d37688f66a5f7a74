/**
 * How payloads are kept from the agent and from each other: a pure choice
 * from what the node allows (probe.ts finds that out).
 *
 *   agent is root ──▶ --payload-user given ──▶ payload-user (every payload as that account)
 *                 └─▶ accounts can be made ──▶ slot-users (one vmpilot-slotN account per slot)
 *                 └─▶ else                 ──▶ payload-user as nobody, when it exists
 *   not root ──▶ bwrap works ──▶ bwrap (user + PID namespace; state dir and agent /proc hidden)
 *            └─▶ unshare works ──▶ unshare (the same with util-linux)
 *            └─▶ none (said at start, in the registration and in `pilots`)
 *
 * Containment (what a payload's processes cannot leave): a cgroup per
 * payload where the agent can create one and the payload cannot write to
 * it (root, payloads unprivileged); the PID namespace (its processes die
 * with it); every process of a dedicated slot account; else the process
 * tree as /proc shows it (process group, parents, environment marker),
 * which a hostile payload can leave.
 */
import type { IsolationMode } from '../../protocol/index.js';
import { VmpilotError } from '../../shared/errors.js';
import type { IsolationChoice } from '../config/schema.js';

/** How payloads are isolated (reported in the registration, `pilots` and `vmpilot probe`). */
export type { IsolationMode } from '../../protocol/index.js';

/** What holds a payload's processes. */
export type Containment = 'cgroup-v2' | 'cgroup-v1' | 'pid-namespace' | 'uid' | 'process-tree';

/** A user payloads may run as (from /etc/passwd). */
export interface AccountIds {
  name: string;
  uid: number;
  gid: number;
}

/** What the node allows, as probe.ts found it. A string is why a facility cannot be used. */
export interface IsolationFacts {
  choice: IsolationChoice;
  root: boolean;
  /** The configured `--payload-user`, resolved (root only). */
  payloadUser: AccountIds | null;
  /** Slot accounts can be made or exist (root only): true, or why not. */
  slotAccounts: true | string;
  /** `nobody`, when it exists: the account of last resort for a root agent. */
  nobody: AccountIds | null;
  bwrap: true | string;
  unshare: true | string;
  /** A per-payload cgroup can be made: its version, or why not. */
  cgroup: 1 | 2 | string;
}

/** The chosen isolation. */
export interface IsolationPlan {
  mode: IsolationMode;
  containment: Containment;
  /** The one account every payload runs as (payload-user). */
  account: AccountIds | null;
  /** Why a stronger mode was not used, for the log and `vmpilot probe`. */
  notes: string[];
}

/** Choose the isolation. Pure; throws VMP_CONFIG when the choice asked for cannot be had. */
export function planIsolation(f: IsolationFacts): IsolationPlan {
  const notes: string[] = [];
  if (f.choice === 'none') return { mode: 'none', containment: 'process-tree', account: null, notes: ['--isolation none: payloads run as the agent user, with nothing in between'] };
  if (f.root) {
    if (f.choice !== 'auto') {
      throw new VmpilotError('VMP_CONFIG', `isolation "${f.choice}": the agent runs as root, where payloads run as unprivileged accounts; expected auto (or none), ${f.choice} is for agents that are not root`);
    }
    const cgroup = typeof f.cgroup === 'number' ? (`cgroup-v${f.cgroup}` as const) : null;
    if (cgroup === null) notes.push(`no cgroup per payload: ${f.cgroup}`);
    if (f.payloadUser) return { mode: 'payload-user', containment: cgroup ?? 'process-tree', account: f.payloadUser, notes };
    if (f.slotAccounts === true) return { mode: 'slot-users', containment: cgroup ?? 'uid', account: null, notes };
    notes.push(`no slot accounts: ${f.slotAccounts}`);
    if (f.nobody) return { mode: 'payload-user', containment: cgroup ?? 'process-tree', account: f.nobody, notes };
    notes.push('no user nobody either');
    return { mode: 'none', containment: 'process-tree', account: null, notes };
  }
  if (f.payloadUser) notes.push('--payload-user is ignored: the agent is not root');
  const want = f.choice === 'auto' ? (['bwrap', 'unshare'] as const) : ([f.choice] as const);
  for (const tool of want) {
    const ok = f[tool];
    if (ok === true) return { mode: tool, containment: 'pid-namespace', account: null, notes };
    if (f.choice !== 'auto') throw new VmpilotError('VMP_CONFIG', `isolation "${tool}" cannot be used here: ${ok}; expected auto or none, or a node where ${tool} can make a user namespace`);
    notes.push(`${tool}: ${ok}`);
  }
  return { mode: 'none', containment: 'process-tree', account: null, notes };
}
