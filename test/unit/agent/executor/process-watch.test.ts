/**
 * The process watch on a fake /proc: who is a member of a payload's tree
 * (group, children, grandchildren born between samples, a double fork found
 * by its marker, a member re-parented to init), what a reused pid is, and
 * what the tree used (CPU of ended members, peak RSS).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { classifyNew, parseStat, type ProcInfo } from '../../../../src/agent/executor/process-tree.js';
import { ProcessWatch, TREE_MARKER, WatchedTree } from '../../../../src/agent/executor/process-watch.js';

let proc: string;
beforeEach(() => {
  proc = mkdtempSync(path.join(os.tmpdir(), 'vmp-proc-'));
});
afterEach(() => rmSync(proc, { recursive: true, force: true }));

interface Fake {
  pid: number;
  ppid: number;
  pgid?: number;
  start?: number;
  rssPages?: number;
  ticks?: number;
  childTicks?: number;
  env?: Record<string, string>;
  state?: string;
}

/** Write /proc/<pid>/stat (and environ) as Linux does. */
function put(p: Fake): void {
  const dir = path.join(proc, String(p.pid));
  mkdirSync(dir, { recursive: true });
  const f = new Array<string | number>(50).fill(0);
  // fields 3.. : f[i - 3] is field i (man 5 proc)
  f[0] = p.state ?? 'S';
  f[4 - 3] = p.ppid;
  f[5 - 3] = p.pgid ?? p.pid;
  f[14 - 3] = p.ticks ?? 0;
  f[16 - 3] = p.childTicks ?? 0;
  f[22 - 3] = p.start ?? 1000;
  f[24 - 3] = p.rssPages ?? 0;
  writeFileSync(path.join(dir, 'stat'), `${p.pid} (some (odd) name) ${f.join(' ')}\n`);
  writeFileSync(path.join(dir, 'environ'), Object.entries(p.env ?? { PATH: '/bin' }).map(([k, v]) => `${k}=${v}\0`).join(''));
}
const gone = (pid: number) => rmSync(path.join(proc, String(pid)), { recursive: true, force: true });

/** A watch with one started tree led by pid 100 (marker "m1"). */
function watchOne(): { watch: ProcessWatch; tree: WatchedTree } {
  const watch = new ProcessWatch(proc);
  const tree = new WatchedTree('m1', null);
  watch.add(tree);
  put({ pid: 100, ppid: 1, env: { [TREE_MARKER]: 'm1' } });
  watch.started(tree, 100);
  return { watch, tree };
}
const members = (tree: WatchedTree) => [...tree.members.keys()].sort((a, b) => a - b);

describe('parseStat', () => {
  it('reads the fields after a command name holding spaces and parentheses', () => {
    const f = new Array(50).fill(0);
    f[0] = 'R';
    f[1] = 7; // ppid
    f[2] = 9; // pgid
    f[11] = 30; // utime
    f[12] = 12; // stime
    f[13] = 5; // cutime
    f[19] = 4242; // starttime
    f[21] = 256; // rss pages
    expect(parseStat(`42 (a b) c)) ${f.join(' ')}\n`)).toEqual({ pid: 42, ppid: 7, pgid: 9, state: 'R', rssKb: 1024, cpuTicks: 42, childTicks: 5, startTicks: 4242 });
    expect(parseStat('garbage')).toBeNull();
    expect(parseStat('42 (x) S 1 2')).toBeNull();
  });
});

describe('classifyNew', () => {
  const info = (pid: number, ppid: number, pgid = pid): ProcInfo => ({ pid, ppid, pgid, state: 'S', rssKb: 0, cpuTicks: 0, childTicks: 0, startTicks: 0 });

  it('places children of new children, whatever the order they are listed in, and reads markers only for the rest', () => {
    const asked: number[] = [];
    const got = classifyNew(
      [info(12, 11), info(11, 10), info(20, 1), info(30, 1)],
      (pid) => (pid === 10 ? 'A' : undefined),
      new Map(),
      (pid) => (asked.push(pid), pid === 20 ? 'B' : null),
    );
    expect(Object.fromEntries(got)).toEqual({ 11: 'A', 12: 'A', 20: 'B', 30: null });
    expect(asked.sort()).toEqual([20, 30]);
  });

  it('a process in a leader’s group belongs to it; a child of a foreign process stays foreign', () => {
    const got = classifyNew([info(5, 1, 100), info(6, 50)], (pid) => (pid === 50 ? null : undefined), new Map([[100, 'T']]), () => null);
    expect(Object.fromEntries(got)).toEqual({ 5: 'T', 6: null });
  });
});

describe('ProcessWatch', () => {
  it('follows the leader, its group, its descendants, and a double fork found by its marker', () => {
    const { watch, tree } = watchOne();
    put({ pid: 101, ppid: 100, pgid: 100 });
    put({ pid: 102, ppid: 101, pgid: 102 }); // own group, child of a member
    put({ pid: 150, ppid: 1, pgid: 150, env: { X: '1', [TREE_MARKER]: 'm1' } }); // double-forked between samples
    put({ pid: 160, ppid: 1, pgid: 160, env: { [`X${TREE_MARKER}`]: 'm1' } }); // another variable
    put({ pid: 170, ppid: 1, env: { [TREE_MARKER]: 'someone-else' } });
    watch.refresh();
    expect(members(tree)).toEqual([100, 101, 102, 150]);
  });

  it('a member re-parented to init stays a member; an ended one leaves; a reused pid is someone else', () => {
    const { watch, tree } = watchOne();
    put({ pid: 101, ppid: 100, env: {} });
    watch.refresh();
    put({ pid: 101, ppid: 1, env: {} }); // its parent… no: it moved to its own session and init adopted it
    watch.refresh();
    expect(members(tree)).toEqual([100, 101]);
    gone(101);
    watch.refresh();
    expect(members(tree)).toEqual([100]);
    put({ pid: 101, ppid: 1, start: 99999, env: {} }); // same pid, another process
    watch.refresh();
    expect(members(tree)).toEqual([100]);
  });

  it('a process that was there before the payload never joins it; the leader does whatever it looked like', () => {
    const watch = new ProcessWatch(proc);
    put({ pid: 100, ppid: 1, env: {} }); // seen before it is known as a leader (fork before exec)
    put({ pid: 90, ppid: 1, env: {} });
    watch.refresh();
    const tree = new WatchedTree('m1', null);
    watch.add(tree);
    watch.started(tree, 100);
    put({ pid: 91, ppid: 90, env: {} });
    put({ pid: 101, ppid: 100, env: {} });
    watch.refresh();
    expect(members(tree)).toEqual([100, 101]);
  });

  it('a child started before the leader is known is found by its marker', () => {
    const watch = new ProcessWatch(proc);
    const tree = new WatchedTree('m1', null);
    watch.add(tree);
    put({ pid: 100, ppid: 1, env: { [TREE_MARKER]: 'm1' } });
    put({ pid: 101, ppid: 100, env: { [TREE_MARKER]: 'm1' } });
    watch.refresh();
    watch.started(tree, 100);
    expect(members(tree)).toEqual([100, 101]);
  });

  it('after remove, what the tree left behind is nobody’s', () => {
    const { watch, tree } = watchOne();
    put({ pid: 101, ppid: 100 });
    watch.refresh();
    watch.remove(tree);
    const next = new WatchedTree('m2', null);
    watch.add(next);
    put({ pid: 200, ppid: 1, env: { [TREE_MARKER]: 'm2' } });
    watch.started(next, 200);
    put({ pid: 102, ppid: 101 }); // a child of a leftover
    watch.refresh();
    expect(members(next)).toEqual([200]);
  });

  it('counts the CPU of members that ended unseen by a member parent, and keeps the peak RSS', () => {
    const { watch, tree } = watchOne();
    put({ pid: 100, ppid: 1, ticks: 10, rssPages: 256, env: { [TREE_MARKER]: 'm1' } });
    put({ pid: 101, ppid: 100, ticks: 50, rssPages: 1024 });
    put({ pid: 150, ppid: 1, ticks: 30, env: { [TREE_MARKER]: 'm1' } });
    watch.refresh();
    expect(tree.rssKb).toBe(5 * 1024);
    // 101 ended and its parent waited for it: its time shows in the parent's child ticks
    gone(101);
    put({ pid: 100, ppid: 1, ticks: 10, childTicks: 50, rssPages: 256, env: { [TREE_MARKER]: 'm1' } });
    // 150 (re-parented to init) ended: nobody in the tree will account for it
    gone(150);
    watch.refresh();
    expect(tree.cpuSec).toBeCloseTo((10 + 50 + 30) / 100);
    expect(tree.peakRssMb).toBe(5);
    expect(tree.rssKb).toBe(1024);
  });

  it('says what a tree used only once a refresh after its start saw it: a payload that ended sooner was never measured', () => {
    const { watch, tree } = watchOne();
    put({ pid: 100, ppid: 1, ticks: 0, rssPages: 256, env: { [TREE_MARKER]: 'm1' } });
    // watchOne's start took the first figures: the instant of the start, not a measure
    expect(tree.used).toEqual({});
    put({ pid: 100, ppid: 1, ticks: 120, rssPages: 512, env: { [TREE_MARKER]: 'm1' } });
    watch.refresh();
    expect(tree.used).toEqual({ cpuSec: 1.2, peakRssMb: 2 });
  });

  it('a zombie is a member but no longer living', () => {
    const { watch, tree } = watchOne();
    put({ pid: 101, ppid: 100, state: 'Z' });
    watch.refresh();
    expect(members(tree)).toEqual([100, 101]);
    expect(tree.living).toEqual([100]);
  });
});
