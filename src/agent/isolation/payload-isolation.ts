/**
 * The isolation of a running agent: what each payload runs as and in, from
 * the plan (plan.ts). `enter` gives a payload its account (a slot account,
 * leased until its processes are gone, or the one payload user), its
 * sandbox (bwrap or unshare) or neither, and whether a cgroup holds it.
 * `prepareStateDir` sets the state directory's modes the plan relies on.
 */
import { readFileSync } from 'node:fs';
import { chmod, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Clock } from '../../shared/clock.js';
import { VmpilotError } from '../../shared/errors.js';
import { adoptPayloadCgroup } from '../executor/memory-cgroup.js';
import { readUids } from '../executor/proc.js';
import { sweepUid } from '../executor/process-runner.js';
import type { PayloadContext } from '../executor/payload-runner.js';
import type { IsolationPlan } from './plan.js';
import type { SlotAccounts } from './slots.js';

/** What the isolation of one agent needs. */
export interface IsolationOptions {
  stateDir: string;
  /** Files outside the state dir that hold secrets (token file, config file): empty inside a sandbox. */
  secretFiles: readonly string[];
  /** Directories outside the state dir that hold secrets (the mailbox of mailbox mode): empty inside a sandbox. */
  secretDirs?: readonly string[];
  /** The agent's uid and gid. */
  uid: number;
  gid: number;
  /** unshare can map the agent's uid inside (util-linux 2.38+). */
  mapUser: boolean;
  /** The slot accounts (mode slot-users). */
  slots: SlotAccounts | null;
}

/** The part of a payload's context isolation decides. */
export type PayloadJail = Pick<PayloadContext, 'user' | 'sandbox' | 'contain' | 'release'>;

/** Applies one plan to every payload of an agent. */
export class PayloadIsolation {
  constructor(
    readonly plan: IsolationPlan,
    private readonly o: IsolationOptions,
  ) {}

  /** The machine features directory (readable by payloads, read-only in a sandbox). */
  get machineFeaturesDir(): string {
    return path.join(this.o.stateDir, 'machinefeatures');
  }

  /**
   * Make the state directory and payloads/ private: 0700, or 0711 when
   * payloads run as other accounts and must reach their own directory in
   * payloads/ (which they cannot list; each payload's directory is closed
   * to the others).
   */
  async prepareStateDir(): Promise<void> {
    const mode = this.plan.mode === 'slot-users' || this.plan.mode === 'payload-user' ? 0o711 : 0o700;
    for (const dir of [this.o.stateDir, path.join(this.o.stateDir, 'payloads')]) {
      await mkdir(dir, { recursive: true });
      await chmod(dir, mode);
    }
    if (mode === 0o711) await this.checkReachable();
  }

  /**
   * Payloads running as other accounts must be able to pass through every
   * directory above the state directory to reach their own; a parent closed
   * to others (a 0700 temporary directory, a home directory) would make
   * every payload fail to write its output. Say so at start instead.
   */
  private async checkReachable(): Promise<void> {
    let dir = path.dirname(path.resolve(this.o.stateDir));
    for (;;) {
      const st = await stat(dir);
      if ((st.mode & 0o001) === 0) {
        throw new VmpilotError(
          'VMP_CONFIG',
          `state directory ${this.o.stateDir}: payloads run as other accounts (isolation ${this.plan.mode}) and cannot reach it: ${dir} is mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}, closed to others; use a state directory whose parents others can pass through (e.g. /var/lib/vmpilot), or --isolation none`,
        );
      }
      const up = path.dirname(dir);
      if (up === dir) return;
      dir = up;
    }
  }

  /**
   * A payload found running after an agent restart (its wrapper is `pid`):
   * take back its slot account and find its cgroup, and return what to do
   * once its wrapper is gone: kill what is left in its cgroup and of its
   * account, and give the slot back.
   */
  adopt(pid: number, clock: Clock, procRoot = '/proc', cgroupRoot?: string): () => Promise<void> {
    let text = '';
    try {
      text = readFileSync(`${procRoot}/${pid}/cgroup`, 'utf8');
    } catch {
      // gone already: nothing to find
    }
    const cgroup = this.plan.mode === 'slot-users' || this.plan.mode === 'payload-user' ? adoptPayloadCgroup(text, cgroupRoot) : null;
    const uid = readUids(procRoot, pid)?.[0] ?? null;
    const account = this.plan.mode === 'slot-users' && uid !== null && uid !== 0 ? this.o.slots!.claim(uid) : null;
    return async () => {
      if (cgroup) {
        for (let i = 0; i < 40 && cgroup.pids().length > 0; i++) {
          cgroup.killAll();
          await clock.sleep(25);
        }
        cgroup.remove();
      }
      if (account) {
        await sweepUid(procRoot, account.uid, clock);
        this.o.slots!.release(account);
      }
    };
  }

  /** What payload `id` runs as and in. Throws when its account cannot be had. */
  async enter(): Promise<PayloadJail> {
    const contain = this.plan.containment === 'cgroup-v1' || this.plan.containment === 'cgroup-v2';
    switch (this.plan.mode) {
      case 'slot-users': {
        const slots = this.o.slots!;
        const account = await slots.acquire();
        let released = false;
        const release = () => {
          if (released) return;
          released = true;
          slots.release(account);
        };
        return { user: { uid: account.uid, gid: account.gid, name: account.name, dedicated: true }, contain, release };
      }
      case 'payload-user': {
        const a = this.plan.account!;
        return { user: { uid: a.uid, gid: a.gid, name: a.name }, contain };
      }
      case 'bwrap':
      case 'unshare':
        return {
          user: null,
          sandbox: {
            tool: this.plan.mode,
            mounts: {
              stateDir: this.o.stateDir,
              // what payloads may read of the state dir: the machine features and the bootstrap's software
              sharedDirs: [this.machineFeaturesDir, path.join(this.o.stateDir, 'software')],
              hide: this.o.secretFiles,
              hideDirs: this.o.secretDirs ?? [],
              uid: this.o.uid,
              gid: this.o.gid,
              mapUser: this.o.mapUser,
            },
          },
        };
      default:
        return { user: null };
    }
  }
}
