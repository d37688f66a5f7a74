import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { coresFromQuota, parseCpuMax, parseMemoryLimit, parseProcCgroup, readCgroupLimits } from '../../../../src/agent/resources/cgroup.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'vmp-cg-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function tree(files: Record<string, string>): Promise<void> {
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await writeFile(path.join(root, rel), text);
  }
}

describe('cgroup value parsers', () => {
  it('cpu.max, CFS quota, memory limits', () => {
    expect(parseCpuMax('max 100000\n')).toEqual({ value: null });
    expect(parseCpuMax('400000 100000\n')).toEqual({ value: 4 });
    expect(parseCpuMax('150000 100000')).toEqual({ value: 1 });
    expect(parseCpuMax('lots')).toHaveProperty('problem');
    expect(coresFromQuota(-1, 100000)).toEqual({ value: null });
    expect(coresFromQuota(50000, 100000)).toEqual({ value: 1 });
    expect(parseMemoryLimit('memory.max', 'max\n')).toEqual({ value: null });
    expect(parseMemoryLimit('memory.limit_in_bytes', '9223372036854771712\n')).toEqual({ value: null });
    expect(parseMemoryLimit('memory.max', '4294967296')).toEqual({ value: 4294967296 });
    expect(parseMemoryLimit('memory.max', '4G')).toEqual({ problem: 'memory.max "4G" is not a number of bytes' });
  });
  it('/proc/self/cgroup, v1 and v2 lines', () => {
    const m = parseProcCgroup('4:memory:/job/42\n3:cpu,cpuacct:/job/42\n1:name=systemd:/\n0::/user.slice/x\n');
    expect(m.get('memory')).toBe('/job/42');
    expect(m.get('cpu')).toBe('/job/42');
    expect(m.get('')).toBe('/user.slice/x');
  });
});

describe('readCgroupLimits on fake trees', () => {
  it('v2: an agent in a 4-core, 8 GiB cgroup on a big host sees 4 cores and 8 GiB (smallest along the path)', async () => {
    await tree({
      'cgroup.controllers': 'cpu memory',
      'cpu.max': 'max 100000',
      'slurm/cpu.max': '1600000 100000',
      'slurm/memory.max': 'max',
      'slurm/job_42/cpu.max': '400000 100000',
      'slurm/job_42/memory.max': '8589934592',
      'proc-self-cgroup': '0::/slurm/job_42\n',
    });
    const l = await readCgroupLimits(root, path.join(root, 'proc-self-cgroup'));
    expect(l).toMatchObject({ version: 2, cores: 4, memoryBytes: 8589934592, problems: [] });
    expect(l.paths[0]).toBe(path.join(root, 'slurm/job_42'));
  });
  it('v1: cfs quota and memory.limit_in_bytes under the controller mounts', async () => {
    await tree({
      'cpu,cpuacct/batch/7/cpu.cfs_quota_us': '200000\n',
      'cpu,cpuacct/batch/7/cpu.cfs_period_us': '100000\n',
      'cpu,cpuacct/cpu.cfs_quota_us': '-1\n',
      'cpu,cpuacct/cpu.cfs_period_us': '100000\n',
      'memory/batch/7/memory.limit_in_bytes': '2147483648\n',
      'memory/memory.limit_in_bytes': '9223372036854771712\n',
      'self': '5:memory:/batch/7\n4:cpu,cpuacct:/batch/7\n',
    });
    expect(await readCgroupLimits(root, path.join(root, 'self'))).toMatchObject({ version: 1, cores: 2, memoryBytes: 2147483648, problems: [] });
  });
  it('no limits: nulls; no cgroup file system: version null', async () => {
    await tree({ 'cgroup.controllers': '', 'cpu.max': 'max 100000', 'memory.max': 'max', self: '0::/\n' });
    expect(await readCgroupLimits(root, path.join(root, 'self'))).toMatchObject({ version: 2, cores: null, memoryBytes: null });
    const empty = await mkdtemp(path.join(os.tmpdir(), 'vmp-cg-empty-'));
    expect(await readCgroupLimits(empty, path.join(empty, 'none'))).toMatchObject({ version: null, cores: null, memoryBytes: null });
    await rm(empty, { recursive: true });
  });
  it('bad values are problems naming the file, the rest still counts', async () => {
    await tree({
      'cgroup.controllers': 'cpu memory',
      'a/cpu.max': 'four cores',
      'a/memory.max': '1073741824',
      self: '0::/a\n',
    });
    const l = await readCgroupLimits(root, path.join(root, 'self'));
    expect(l).toMatchObject({ cores: null, memoryBytes: 1073741824 });
    expect(l.problems).toEqual([expect.stringContaining(`${path.join(root, 'a/cpu.max')}: cpu.max "four cores"`)]);
  });
});
