/**
 * The real ProcessRunner: node's child_process.spawn with `detached: true`,
 * so every payload leads its own process group, plus a sampler that follows
 * the whole process tree through /proc (and a memory cgroup when the agent
 * can create one), enforces the memory limit on the tree, caps the output
 * files, and kills every member of the tree — detached ones included.
 *
 * Output goes through an output pump (output-pump.ts: a process of its own,
 * so a full disk truncates the logs and never fails the payload's writes,
 * and an agent SIGKILL does not SIGPIPE its payloads).
 *
 *   start ──spawn──▶ running ──leader exits──▶ kill what is left ──▶ pump done ──▶ exited {exit, overMemory, cpuSec, peakRssMb, outputTruncated}
 *     │                 │  every sampleMs: tree RSS > limit ─▶ overMemory, SIGKILL tree
 *     └─ error ─▶ VMP_SPAWN (never started)   signalGroup(sig) ─▶ every member of the tree
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { systemClock, type Clock } from '../../shared/clock.js';
import { VmpilotError } from '../../shared/errors.js';
import type { PayloadProcess, ProcessExit, ProcessRunner, ProcessSpec } from '../ports.js';
import { createMemoryCgroup, type MemoryCgroup } from './memory-cgroup.js';
import { capOutputFile } from './output-cap.js';
import { startOutputPump, truncationNote } from './output-pump.js';
import { CLOCK_TICKS, environHas, readProcTable, signalPids, treeMembers, type ProcInfo } from './process-tree.js';

const MIB = 1024 * 1024;

/** Send `signal` to process group `pgid`; false when no process of it is left. */
export function signalProcessGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Where the runner looks and how often it samples. */
export interface ProcessRunnerOptions {
  clock?: Clock;
  procRoot?: string;
  /** Root of the cgroup file system; null never creates a memory cgroup. */
  cgroupRoot?: string | null;
  procSelfCgroup?: string;
  /** How often each payload's tree is sampled (memory limit, CPU, RSS); default 1000 ms. */
  sampleMs?: number;
  /** How long to wait for the tree to be gone after the leader exits. */
  reapMs?: number;
}

/** The environment variable that marks every process of one payload's tree. */
export const TREE_MARKER = 'VMPILOT_TREE';

/** One payload's tree: who is in it, what it used. */
class Tree {
  readonly known = new Set<number>();
  private readonly checked = new Set<number>();
  /** Last seen CPU ticks of each live member (own + waited-for children) and its parent. */
  private readonly ticks = new Map<number, { ticks: number; ppid: number }>();
  /** Ticks of members that ended where no member's accounting will show them. */
  private lostTicks = 0;
  peakKb = 0;
  overMemory = false;

  constructor(
    readonly leader: number,
    private readonly marker: string,
    private readonly procRoot: string,
    readonly cgroup: MemoryCgroup | null,
    /** The process table, shared by every payload's sampler (see `procTables`). */
    private readonly tables: ProcTables,
  ) {}

  /** Read /proc: refresh the members and return them with the tree's RSS (KiB). */
  sample(fresh = false): { members: Set<number>; rssKb: number } {
    const table = this.tables(fresh);
    const extra: number[] = this.cgroup ? this.cgroup.pids() : [];
    for (const pid of table.keys()) {
      if (this.checked.has(pid) || this.known.has(pid)) continue;
      this.checked.add(pid);
      if (environHas(this.procRoot, pid, this.marker)) extra.push(pid);
    }
    // a pid gone from the table may be reused by an unrelated process: forget it
    for (const pid of this.known) if (!table.has(pid)) this.known.delete(pid);
    const members = treeMembers(table, this.leader, this.known, extra);
    // An ended member's time shows in its parent's child ticks when the parent is a member
    // that waited for it; otherwise (re-parented, or the leader itself) it is kept here.
    for (const [pid, t] of this.ticks) {
      if (members.has(pid)) continue;
      this.ticks.delete(pid);
      if (pid === this.leader || !members.has(t.ppid)) this.lostTicks += t.ticks;
    }
    let rssKb = 0;
    for (const pid of members) {
      this.known.add(pid);
      const p = table.get(pid)!;
      rssKb += p.rssKb;
      this.ticks.set(pid, { ticks: p.cpuTicks + p.childTicks, ppid: p.ppid });
    }
    this.peakKb = Math.max(this.peakKb, rssKb);
    return { members, rssKb };
  }

  signal(sig: NodeJS.Signals): boolean {
    const { members } = this.sample(true);
    const group = signalProcessGroup(this.leader, sig);
    return signalPids(members, sig) > 0 || group;
  }

  get cpuSec(): number {
    let t = this.lostTicks;
    for (const v of this.ticks.values()) t += v.ticks;
    return Math.round((t / CLOCK_TICKS) * 100) / 100;
  }

  get peakRssMb(): number {
    const cg = this.cgroup?.peakBytes() ?? null;
    return Math.round(Math.max(this.peakKb / 1024, cg === null ? 0 : cg / MIB));
  }
}

/** The process table now; `fresh` forces a new read, otherwise one read may serve several samplers. */
type ProcTables = (fresh?: boolean) => Map<number, ProcInfo>;

/**
 * One read of /proc serves every payload's sampler within half a sample
 * period: with 16 payloads the agent reads the process table about twice a
 * second, not 16 times (each read opens every process's stat file).
 */
function procTables(procRoot: string, clock: Clock, maxAgeMs: number): ProcTables {
  let cached: { at: number; table: Map<number, ProcInfo> } | null = null;
  return (fresh = false) => {
    const now = clock.now();
    if (fresh || !cached || now - cached.at >= maxAgeMs) cached = { at: now, table: readProcTable(procRoot) };
    return cached.table;
  };
}

/** Build a ProcessRunner on real processes. */
export function createProcessRunner(o: ProcessRunnerOptions = {}): ProcessRunner {
  const clock = o.clock ?? systemClock;
  const procRoot = o.procRoot ?? '/proc';
  const sampleMs = o.sampleMs ?? 1000;
  const tables = procTables(procRoot, clock, sampleMs / 2);
  const reapMs = o.reapMs ?? 5000;
  return {
    async start(spec: ProcessSpec): Promise<PayloadProcess> {
      const [file, ...args] = spec.command;
      if (!file) throw new VmpilotError('VMP_SPAWN', 'cannot start: empty command');
      const marker = `${TREE_MARKER}=${randomUUID()}`;
      const limit = spec.memoryLimitMb ?? null;
      const cgroup =
        limit !== null && o.cgroupRoot !== null ? createMemoryCgroup(`vmpilot-${randomUUID().slice(0, 8)}`, limit * MIB, o.cgroupRoot, o.procSelfCgroup) : null;
      const ids = { ...(spec.uid === undefined ? {} : { uid: spec.uid }), ...(spec.gid === undefined ? {} : { gid: spec.gid }) };
      // no pump (a single executable, or it cannot start): the payload writes to its files itself
      const pump = await startOutputPump(spec.stdoutPath, spec.stderrPath, ids).catch(() => null);
      const out = pump ? null : openSync(spec.stdoutPath, 'a');
      const err = pump ? null : openSync(spec.stderrPath, 'a');
      let child: ChildProcess;
      try {
        child = spawn(file, args, {
          cwd: spec.cwd,
          env: { ...spec.env, [TREE_MARKER]: marker.slice(TREE_MARKER.length + 1) },
          detached: true,
          stdio: ['ignore', pump ? pump.stdout : out!, pump ? pump.stderr : err!],
          ...(spec.uid === undefined ? {} : { uid: spec.uid }),
          ...(spec.gid === undefined ? {} : { gid: spec.gid }),
        });
        const leaderExit = new Promise<ProcessExit>((resolve) => {
          child!.once('exit', (exitCode, signal) => resolve({ exitCode, signal }));
        });
        await new Promise<void>((resolve, reject) => {
          child!.once('spawn', resolve);
          child!.once('error', (e) =>
            reject(new VmpilotError('VMP_SPAWN', `cannot start: ${e.message}`, { cause: e, details: { command: spec.command } })),
          );
        });
        const pid = child.pid!;
        child.unref();
        cgroup?.add(pid);
        const tree = new Tree(pid, marker, procRoot, cgroup, tables);
        const done = new AbortController();
        void leaderExit.then(() => done.abort());
        const watch = async () => {
          while (!done.signal.aborted) {
            const { rssKb } = tree.sample();
            if (spec.maxOutputBytes) await Promise.all([capOutputFile(spec.stdoutPath, spec.maxOutputBytes), capOutputFile(spec.stderrPath, spec.maxOutputBytes)]);
            if (limit !== null && !tree.overMemory && (rssKb > limit * 1024 || cgroup?.oomKilled())) {
              tree.overMemory = true;
              tree.signal('SIGKILL');
            }
            await clock.sleep(sampleMs, done.signal);
          }
        };
        const watching = watch();
        const exited = (async (): Promise<ProcessExit> => {
          const exit = await leaderExit;
          await watching;
          // The payload ended: whatever it left behind goes too.
          for (let waited = 0; ; waited += 50) {
            const left = tree.sample(true).members;
            if (left.size === 0 || waited >= reapMs) break;
            signalPids(left, 'SIGKILL');
            await clock.sleep(50);
          }
          if (cgroup?.oomKilled()) tree.overMemory = true;
          // the tree is gone: the pump writes what is left in the pipes and exits
          const pumpStatus = pump ? await Promise.race([pump.done, clock.sleep(reapMs).then(() => null)]) : null;
          const truncated = truncationNote(pumpStatus);
          if (spec.maxOutputBytes) await Promise.all([capOutputFile(spec.stdoutPath, spec.maxOutputBytes), capOutputFile(spec.stderrPath, spec.maxOutputBytes)]);
          if (cgroup) {
            signalPids(cgroup.pids(), 'SIGKILL');
            for (let i = 0; i < 40 && !cgroup.remove(); i++) await clock.sleep(50);
          }
          return { ...exit, overMemory: tree.overMemory, cpuSec: tree.cpuSec, peakRssMb: tree.peakRssMb, ...(truncated ? { outputTruncated: truncated } : {}) };
        })();
        return { pid, exited, signalGroup: (sig) => tree.signal(sig) };
      } catch (e) {
        cgroup?.remove();
        throw e;
      } finally {
        // the payload holds its own copies: without ours, the pump sees the end when the payload's tree is gone
        pump?.release();
        if (out !== null) closeSync(out);
        if (err !== null) closeSync(err);
      }
    },
  };
}

/** The runner `vmpilot run` uses: the system clock, /proc, /sys/fs/cgroup, one sample a second. */
export const childProcessRunner: ProcessRunner = createProcessRunner();
