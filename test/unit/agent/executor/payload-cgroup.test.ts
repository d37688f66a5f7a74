/**
 * Where a payload's cgroups go, on fake cgroup roots (the v2 layout does not
 * exist on these machines): under the agent's own cgroup, containment in v1
 * `pids` or the v2 directory, the memory limit beside it; found again from
 * a process's /proc/<pid>/cgroup after a restart.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { adoptPayloadCgroup, createPayloadCgroup } from '../../../../src/agent/executor/memory-cgroup.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'vmp-cgroot-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('payload cgroups', () => {
  it('v2: one directory under the agent\'s own cgroup, contained, the limit written', () => {
    writeFileSync(path.join(root, 'cgroup.controllers'), 'memory pids\n');
    mkdirSync(path.join(root, 'system.slice/vmpilot.service'), { recursive: true });
    writeFileSync(path.join(root, 'self'), '0::/system.slice/vmpilot.service\n');
    const cg = createPayloadCgroup('vmpilot-1-1-x', { limitBytes: 1 << 20, contain: true }, root, path.join(root, 'self'))!;
    const dir = path.join(root, 'system.slice/vmpilot.service/vmpilot-1-1-x');
    expect(cg).toMatchObject({ version: 2, contained: true, limited: true, dirs: [dir] });
    expect(readFileSync(path.join(dir, 'memory.max'), 'utf8')).toBe(String(1 << 20));
    expect(cg.add(4242)).toBe(true);
    expect(cg.pids()).toEqual([4242]);
    expect(adoptPayloadCgroup('0::/system.slice/vmpilot.service/vmpilot-1-1-x\n', root)?.dirs).toEqual([dir]);
    expect(adoptPayloadCgroup('0::/system.slice/vmpilot.service\n', root)).toBeNull();
  });

  it('v1: containment in pids, the limit in memory; only what was asked for', () => {
    for (const h of ['pids', 'memory']) mkdirSync(path.join(root, h, 'job'), { recursive: true });
    writeFileSync(path.join(root, 'self'), '8:pids:/job\n4:memory:/job\n');
    const both = createPayloadCgroup('vmpilot-a', { limitBytes: 4096, contain: true }, root, path.join(root, 'self'))!;
    expect(both).toMatchObject({ version: 1, contained: true, limited: true, dirs: [path.join(root, 'memory/job/vmpilot-a'), path.join(root, 'pids/job/vmpilot-a')] });
    const contain = createPayloadCgroup('vmpilot-b', { limitBytes: null, contain: true }, root, path.join(root, 'self'))!;
    expect(contain).toMatchObject({ contained: true, limited: false, dirs: [path.join(root, 'pids/job/vmpilot-b')] });
    expect(existsSync(path.join(root, 'memory/job/vmpilot-b'))).toBe(false);
    expect(adoptPayloadCgroup('8:pids:/job/vmpilot-a\n4:memory:/job/vmpilot-a\n', root)).toMatchObject({ contained: true, limited: true });
  });

  it('no hierarchy: none, and the caller falls back', () => {
    expect(createPayloadCgroup('vmpilot-c', { limitBytes: null, contain: true }, path.join(root, 'nothing'), path.join(root, 'self'))).toBeNull();
  });
});
