/**
 * The real ProcessRunner: node's child_process.spawn with `detached: true`,
 * so every payload leads its own process group, plus one sampler for all
 * payloads that follows each whole process tree through /proc
 * (process-watch.ts; and its cgroups when the agent can create them),
 * enforces the memory limit on the tree, caps the output files, and kills
 * every member of the tree — detached ones included.
 *
 * Containment (what a hostile payload cannot leave): with `contain` the
 * tree is in a cgroup of its own before its first instruction runs (the
 * leader waits at a gate until the agent has put it there), and the whole
 * cgroup is killed when the leader exits; with `sweepUid` every process of
 * the payload's dedicated account is killed once its output is written;
 * in a sandbox (`sandbox`) the PID namespace ends with its first process.
 * The process tree (group, parents, environment marker) is the fallback.
 *
 * Output goes through an output pump (output-pump.ts: a process of its own,
 * so a full disk truncates the logs and never fails the payload's writes,
 * the cap holds as it writes, and an agent SIGKILL does not SIGPIPE its payloads).
 *
 *   start ──spawn──▶ (gate: into its cgroup) ──▶ running ──leader exits──▶ kill what is left (tree, cgroup)
 *     │                 │  every sampleMs: tree RSS > limit ─▶ overMemory, SIGKILL tree      ──▶ pump done ──▶ sweep its uid
 *     └─ error ─▶ VMP_SPAWN (never started)   signalGroup(sig) ─▶ every member of the tree    ──▶ exited {exit, overMemory, cpuSec, peakRssMb, outputTruncated}
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, statSync } from 'node:fs';
import { systemClock, type Clock } from '../../shared/clock.js';
import { VmpilotError } from '../../shared/errors.js';
import type { PayloadProcess, ProcessExit, ProcessRunner, ProcessSpec } from '../ports.js';
import { createPayloadCgroup } from './memory-cgroup.js';
import { capOutputFile } from './output-cap.js';
import { startOutputPump, truncationNote } from './output-pump.js';
import { pidNamespace, pidsOfUid, signalPids } from './proc.js';
import { applySandbox } from '../isolation/sandbox.js';
import { ProcessWatch, TREE_MARKER, WatchedTree } from './process-watch.js';
import type { ProcInfo } from './process-tree.js';

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

/**
 * The members of a tree to signal one by one after its process group was
 * signalled (`groupReached`: the group signal reached someone): only those
 * that left the leader's group (setsid, setpgid). A member still in it has
 * the signal from the group already, and a second one arriving while it
 * handles the first makes it handle it twice (a shell runs its TERM trap
 * again). Every member when the group signal reached no one. Pure.
 */
export function outsideGroup(members: Iterable<ProcInfo>, leader: number, groupReached: boolean): number[] {
  return [...members].filter((p) => !groupReached || p.pgid !== leader).map((p) => p.pid);
}

/**
 * The gate a contained payload's leader waits at: it reads one line from
 * stdin (the agent writes it once the leader is in its cgroup), then runs
 * the payload with stdin from /dev/null. EOF before the line (the agent
 * died) ends it without running anything.
 */
export const GATE_SCRIPT = 'read -r _ || exit 125; exec "$@" </dev/null';

/** Where the runner looks and how often it samples. */
export interface ProcessRunnerOptions {
  clock?: Clock;
  procRoot?: string;
  /** Root of the cgroup file system; null never creates a cgroup. */
  cgroupRoot?: string | null;
  procSelfCgroup?: string;
  /** How often the payloads' trees are sampled (memory limit, CPU, RSS, output caps); default 1000 ms. */
  sampleMs?: number;
  /** How long to wait for the tree to be gone after the leader exits. */
  reapMs?: number;
}

let started = 0;
/**
 * A name no other tree on this node has: this agent's pid, a count, and a
 * random part (no node:crypto: an idle agent does not load it).
 */
function uniqueName(): string {
  return `${process.pid}-${++started}-${Math.random().toString(36).slice(2, 10)}`;
}

/** A running payload the sampler looks after. */
interface Running {
  tree: WatchedTree;
  limitKb: number | null;
  spec: ProcessSpec;
  overMemory: boolean;
  /** The output cap in progress: caps of one payload's files never overlap. */
  capping: Promise<void>;
  /** The pump caps the files itself as it writes; the sampler only checks. */
  pumped: boolean;
}

/**
 * Kill every process of `uid` until none is left (or `tries` rounds): a
 * dedicated payload account's leftovers, however they detached.
 */
export async function sweepUid(procRoot: string, uid: number, clock: Clock, tries = 40): Promise<number> {
  let killed = 0;
  for (let i = 0; i < tries; i++) {
    const left = pidsOfUid(procRoot, uid);
    if (left.length === 0) break;
    killed += signalPids(left, 'SIGKILL');
    await clock.sleep(25);
  }
  return killed;
}

/** Cap `r`'s output files once the cap in progress (if any) is done. */
function capAfter(r: Running): Promise<void> {
  r.capping = r.capping.then(() => capOutputs(r.spec)).catch(() => undefined);
  return r.capping;
}

/** True when `file` is larger than `max` bytes (one stat; a missing file is not). */
function over(file: string, max: number): boolean {
  try {
    return (statSync(file, { throwIfNoEntry: false })?.size ?? 0) > max;
  } catch {
    return false;
  }
}

async function capOutputs(spec: ProcessSpec): Promise<void> {
  const max = spec.maxOutputBytes;
  if (!max) return;
  for (const file of [spec.stdoutPath, spec.stderrPath]) if (over(file, max)) await capOutputFile(file, max);
}

/** Build a ProcessRunner on real processes. */
export function createProcessRunner(o: ProcessRunnerOptions = {}): ProcessRunner {
  const clock = o.clock ?? systemClock;
  const sampleMs = o.sampleMs ?? 1000;
  const reapMs = o.reapMs ?? 5000;
  const watch = new ProcessWatch(o.procRoot ?? '/proc');
  const running = new Set<Running>();
  let sampling = false;

  /** One sampler for every payload: refresh the watch, enforce memory limits, cap outputs. */
  const sample = async () => {
    sampling = true;
    try {
      while (running.size > 0) {
        await clock.sleep(sampleMs);
        try {
          watch.refresh();
          for (const r of running) {
            if (r.overMemory || r.limitKb === null) continue;
            if (r.tree.rssKb > r.limitKb || r.tree.cgroup?.oomKilled()) {
              r.overMemory = true;
              signalTree(r.tree, 'SIGKILL');
            }
          }
          for (const r of running) if (!r.pumped) await capAfter(r);
        } catch {
          // a sample that fails (a file system error) is skipped; the next one tries again
        }
      }
    } finally {
      sampling = false;
    }
  };

  const procRoot = o.procRoot ?? '/proc';
  const ownPidNs = pidNamespace(procRoot, 'self');

  /**
   * Signal every member of the tree as of now, and its process group. In a
   * sandbox, a signal that can be caught goes only to the leader (the
   * wrapper) and to the processes inside the sandbox's PID namespace: the
   * sandbox tool itself (bwrap) would end the sandbox at once on SIGTERM,
   * taking the payload's grace period with it.
   */
  const signalTree = (tree: WatchedTree, sig: NodeJS.Signals, sandboxed = false): boolean => {
    watch.refresh();
    if (sandboxed && sig !== 'SIGKILL') {
      const inside = [...tree.members.keys()].filter((pid) => pid === tree.leader || (pidNamespace(procRoot, pid) ?? ownPidNs) !== ownPidNs);
      return signalPids(inside, sig) > 0;
    }
    const group = signalProcessGroup(tree.leader, sig);
    return signalPids(outsideGroup(tree.members.values(), tree.leader, group), sig) > 0 || group;
  };

  return {
    async start(asked: ProcessSpec): Promise<PayloadProcess> {
      if (!asked.command[0]) throw new VmpilotError('VMP_SPAWN', 'cannot start: empty command');
      const spec = applySandbox(asked);
      const sandboxed = spec.sandboxed === true;
      const marker = uniqueName();
      const limit = spec.memoryLimitMb ?? null;
      const contain = spec.contain === true;
      const cgroup =
        (limit !== null || contain) && o.cgroupRoot !== null
          ? createPayloadCgroup(`vmpilot-${uniqueName()}`, { limitBytes: limit === null ? null : limit * MIB, contain }, o.cgroupRoot, o.procSelfCgroup)
          : null;
      // the leader waits at the gate until it is in its cgroup: nothing runs outside it, not even for a moment
      const gated = cgroup !== null;
      const [file, ...args] = [...(gated ? ['/bin/sh', '-c', GATE_SCRIPT, 'vmpilot-gate'] : []), ...spec.command] as [string, ...string[]];
      const tree = new WatchedTree(marker, cgroup);
      const ids = { ...(spec.uid === undefined ? {} : { uid: spec.uid }), ...(spec.gid === undefined ? {} : { gid: spec.gid }) };
      // no pump (a single executable, or it cannot start): the payload writes to its files itself
      const pump = await startOutputPump(spec.stdoutPath, spec.stderrPath, ids, spec.maxOutputBytes ?? null).catch(() => null);
      const out = pump ? null : openSync(spec.stdoutPath, 'a');
      const err = pump ? null : openSync(spec.stderrPath, 'a');
      watch.add(tree);
      let child: ChildProcess;
      try {
        child = spawn(file, args, {
          cwd: spec.cwd,
          env: { ...spec.env, [TREE_MARKER]: marker },
          detached: true,
          stdio: [gated ? 'pipe' : 'ignore', pump ? pump.stdout : out!, pump ? pump.stderr : err!],
          ...ids,
        });
        child.stdin?.on('error', () => undefined);
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
        if (cgroup && !cgroup.add(pid)) {
          child.stdin?.destroy(); // the gate sees EOF: nothing runs
          throw new VmpilotError('VMP_SPAWN', `cannot start: cannot put the payload into its cgroup ${cgroup.dirs.join(', ')}`);
        }
        if (gated) child.stdin!.end('go\n');
        watch.started(tree, pid);
        const r: Running = { tree, limitKb: limit === null ? null : limit * 1024, spec, overMemory: false, capping: Promise.resolve(), pumped: pump?.capped === true };
        running.add(r);
        if (!sampling) void sample();
        const exited = (async (): Promise<ProcessExit> => {
          const exit = await leaderExit;
          running.delete(r);
          // The payload ended: whatever it left behind goes too, its whole cgroup first.
          for (let waited = 0; ; waited += 50) {
            watch.refresh();
            const left = [...new Set([...tree.living, ...(cgroup?.contained ? cgroup.pids() : [])])];
            if (left.length === 0 || waited >= reapMs) break;
            if (cgroup?.contained) cgroup.killAll();
            signalPids(left, 'SIGKILL');
            await clock.sleep(50);
          }
          watch.remove(tree);
          if (cgroup?.oomKilled()) r.overMemory = true;
          // the tree is gone: the pump writes what is left in the pipes and exits
          const pumpStatus = pump ? await Promise.race([pump.done, clock.sleep(reapMs).then(() => null)]) : null;
          const truncated = truncationNote(pumpStatus);
          if (!r.pumped) await capAfter(r);
          // a dedicated account's last processes, wherever they went (the pump included, once it is done)
          if (spec.sweepUid && spec.uid !== undefined && spec.uid !== 0) await sweepUid(procRoot, spec.uid, clock);
          if (cgroup) {
            cgroup.killAll();
            for (let i = 0; i < 40 && !cgroup.remove(); i++) await clock.sleep(50);
          }
          return { ...exit, overMemory: r.overMemory, ...tree.used, ...(truncated ? { outputTruncated: truncated } : {}) };
        })();
        return { pid, exited, signalGroup: (sig) => signalTree(tree, sig, sandboxed) };
      } catch (e) {
        watch.remove(tree);
        cgroup?.remove();
        if (pump) {
          // nothing writes into the payload's directory once start has failed (its caller may remove it)
          pump.release();
          await Promise.race([pump.done, clock.sleep(reapMs)]);
        }
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
