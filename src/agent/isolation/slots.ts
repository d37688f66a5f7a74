/**
 * Slot accounts: when the agent runs as root, every payload runs as an
 * account of its own for as long as it runs, `vmpilot-slot0`,
 * `vmpilot-slot1`, …, one per payload running at once. Payloads so cannot
 * read each other's files or signal each other, and at a payload's end every
 * process of its account can be killed, wherever it went.
 *
 * Accounts are made with `useradd` when missing (system accounts, their own
 * group, no home, no shell) and kept for the next payloads. They are shared
 * by the agents of a node through lease files (`/run/vmpilot/slots/NAME`,
 * holding the agent's pid and start time): a slot is taken when its lease is
 * held by a live agent or when a process still runs as its account.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { VmpilotError } from '../../shared/errors.js';
import { findUser } from '../executor/payload-user.js';
import { pidsOfUid, readStat } from '../executor/proc.js';
import type { CommandRunner } from '../ports.js';
import type { AccountIds } from './plan.js';

/** Slot account names: this prefix and the slot number. */
export const SLOT_PREFIX = 'vmpilot-slot';
/** More slots than payloads can run at once on any node (one core each). */
const MAX_SLOTS = 4096;
/** Where `useradd` is looked for (the agent's PATH may lack sbin). */
const USERADD = ['/usr/sbin/useradd', '/sbin/useradd', 'useradd'];

/** Where slot accounts live and how they are made. */
export interface SlotOptions {
  run: CommandRunner;
  passwdFile?: string;
  leaseDir?: string;
  procRoot?: string;
}

const readOr = (file: string): string => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};

/** The accounts of one agent's slots, leased from the node's pool. */
export class SlotAccounts {
  private readonly passwd: string;
  private readonly leaseDir: string;
  private readonly procRoot: string;
  private readonly mine = new Set<string>();
  private queue: Promise<unknown> = Promise.resolve();
  private readonly me: string;

  constructor(private readonly o: SlotOptions) {
    this.passwd = o.passwdFile ?? '/etc/passwd';
    this.leaseDir = o.leaseDir ?? '/run/vmpilot/slots';
    this.procRoot = o.procRoot ?? '/proc';
    this.me = `${process.pid} ${readStat(this.procRoot, process.pid)?.startTicks ?? 0}`;
  }

  /** Why slot accounts cannot be had here, or null when they can (root, useradd or accounts present, a lease dir). */
  async problem(): Promise<string | null> {
    try {
      mkdirSync(this.leaseDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      return `cannot create ${this.leaseDir}: ${(err as Error).message}`;
    }
    if (findUser(readOr(this.passwd), `${SLOT_PREFIX}0`)) return null;
    for (const useradd of USERADD) {
      const r = await this.o.run([useradd, '--help'], 5000);
      if (r.exitCode === 0) return null;
    }
    return 'no useradd to create vmpilot-slotN accounts, and none exists';
  }

  /** Lease the first free slot (its account made when missing). Throws VMP_SPAWN when none can be had. */
  acquire(): Promise<AccountIds> {
    const next = this.queue.then(() => this.take());
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Give slot `account` back (its processes are gone). */
  release(account: AccountIds): void {
    if (!this.mine.delete(account.name)) return;
    rmSync(path.join(this.leaseDir, account.name), { force: true });
  }

  /**
   * Take over the slot whose account is `uid` (a payload found running after
   * an agent restart); its account, or null when `uid` is no slot account.
   */
  claim(uid: number): AccountIds | null {
    const account = this.accountOfUid(uid);
    if (!account) return null;
    mkdirSync(this.leaseDir, { recursive: true, mode: 0o700 });
    writeFileSync(path.join(this.leaseDir, account.name), this.me, { mode: 0o600 });
    this.mine.add(account.name);
    return account;
  }

  private accountOfUid(uid: number): AccountIds | null {
    for (const line of readOr(this.passwd).split('\n')) {
      const [name, , u, g] = line.split(':');
      if (name?.startsWith(SLOT_PREFIX) && Number(u) === uid) return { name, uid, gid: Number(g) };
    }
    return null;
  }

  private leaseHeld(name: string): boolean {
    const [pid, start] = readOr(path.join(this.leaseDir, name)).trim().split(' ').map(Number);
    if (!pid) return false;
    const stat = readStat(this.procRoot, pid);
    return stat !== null && stat.startTicks === start;
  }

  /** Create the lease of `name` (replacing a stale one); false when a live agent holds it. */
  private lease(name: string): boolean {
    const file = path.join(this.leaseDir, name);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        writeFileSync(file, this.me, { flag: 'wx', mode: 0o600 });
        return true;
      } catch {
        if (this.leaseHeld(name)) return false;
        rmSync(file, { force: true }); // its agent is gone
      }
    }
    return false;
  }

  private async take(): Promise<AccountIds> {
    mkdirSync(this.leaseDir, { recursive: true, mode: 0o700 });
    for (let n = 0; n < MAX_SLOTS; n++) {
      const name = `${SLOT_PREFIX}${n}`;
      if (this.mine.has(name) || !this.lease(name)) continue;
      let account: AccountIds | null;
      try {
        account = await this.ensureAccount(name);
      } catch (err) {
        rmSync(path.join(this.leaseDir, name), { force: true });
        throw err;
      }
      // a payload of an agent that died may still run as it: its restarted agent takes it back
      if (pidsOfUid(this.procRoot, account.uid).length > 0) {
        rmSync(path.join(this.leaseDir, name), { force: true });
        continue;
      }
      this.mine.add(name);
      return account;
    }
    throw new VmpilotError('VMP_SPAWN', `cannot start: all ${MAX_SLOTS} slot accounts are in use`);
  }

  private async ensureAccount(name: string): Promise<AccountIds> {
    const found = findUser(readOr(this.passwd), name);
    if (found && found.name === name) return found;
    let why = '';
    for (const useradd of USERADD) {
      const r = await this.o.run(
        [useradd, '--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', '--comment', 'vmpilot payload slot', name],
        30_000,
      );
      // 9: it exists already (another agent made it meanwhile)
      if (r.exitCode === 0 || r.exitCode === 9) break;
      why = r.error ?? `exit ${r.exitCode}`;
    }
    const made = findUser(readOr(this.passwd), name);
    if (!made || made.name !== name) throw new VmpilotError('VMP_SPAWN', `cannot start: cannot create the payload account ${name}: ${why || 'useradd did not add it'}`);
    return made;
  }
}
