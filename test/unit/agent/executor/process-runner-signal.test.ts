import { describe, expect, it } from 'vitest';
import { outsideGroup } from '../../../../src/agent/executor/process-runner.js';
import type { ProcInfo } from '../../../../src/agent/executor/process-tree.js';

const proc = (pid: number, pgid: number): ProcInfo => ({ pid, ppid: 1, pgid, state: 'S', rssKb: 0, cpuTicks: 0, childTicks: 0, startTicks: 0 });

describe('which members of a payload tree get a signal of their own', () => {
  // the leader (100) and its child (101) are in the leader's group; 102 left it with setsid
  const members = [proc(100, 100), proc(101, 100), proc(102, 102)];

  it('only those that left the group, once the group was signalled: no member gets the signal twice (a shell would run its trap again)', () => {
    expect(outsideGroup(members, 100, true)).toEqual([102]);
  });

  it('every member when the group signal reached no one', () => {
    expect(outsideGroup(members, 100, false)).toEqual([100, 101, 102]);
  });
});
