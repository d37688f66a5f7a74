import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { computeDeadline } from '../../../../src/agent/mjf/deadline.js';
import { jobFeatures, machineFeatures, NO_LIMITS, writeFeatures } from '../../../../src/agent/mjf/provide.js';

describe('computeDeadline', () => {
  const none = { machine: {}, job: {}, batchEnd: null, lifetimeEnd: null };
  it('is null when nothing limits the agent', () => {
    expect(computeDeadline(none)).toEqual({ at: null, source: null, candidates: [] });
  });
  it('is the earliest of jobstart+wall, shutdowntime_job, shutdowntime, the batch end and the lifetime', () => {
    const all = {
      machine: { shutdowntime: 5000 },
      job: { jobstart_secs: 1000, wall_limit_secs: 3000, shutdowntime_job: 4500 },
      batchEnd: 4_200_000,
      lifetimeEnd: 4_100_000,
    };
    expect(computeDeadline(all)).toMatchObject({ at: 4_000_000, source: 'mjf:jobstart_secs+wall_limit_secs' });
    expect(computeDeadline(all).candidates).toHaveLength(5);
    expect(computeDeadline({ ...all, job: { shutdowntime_job: 3900 } })).toMatchObject({ at: 3_900_000, source: 'mjf:shutdowntime_job' });
    expect(computeDeadline({ ...all, machine: { shutdowntime: 100 } })).toMatchObject({ at: 100_000, source: 'mjf:shutdowntime' });
    expect(computeDeadline({ ...none, batchEnd: 7 })).toMatchObject({ at: 7, source: 'batch' });
    expect(computeDeadline({ ...none, lifetimeEnd: 9 })).toMatchObject({ at: 9, source: 'config:lifetimeSec' });
  });
  it('needs both jobstart_secs and wall_limit_secs for that limit', () => {
    expect(computeDeadline({ ...none, job: { wall_limit_secs: 10 } }).at).toBeNull();
  });
});

describe('provided features', () => {
  const limits = { ...NO_LIMITS, hs06: 100, scratchBytes: 8000 };
  const base = { payloadId: 7, cores: 2, totalCores: 8, now: 1_000_000_000, wallSec: 3600, memoryMb: 2048, deadline: 1_000_000_000 + 7200_000, graceSec: 60, pilot: limits };
  it('gives each payload its allocation, limits and the SIGTERM time (deadline minus grace)', () => {
    expect(jobFeatures(base)).toEqual({
      allocated_cpu: 2,
      jobstart_secs: 1_000_000,
      grace_secs_job: 60,
      job_id: '7',
      wall_limit_secs: 3600,
      cpu_limit_secs: 7200,
      shutdowntime_job: 1_000_000 + 7200 - 60,
      max_rss_bytes: 2048 * 1024 * 1024,
      scratch_limit_bytes: 2000,
      hs06_job: 25,
    });
  });
  it('caps the wall limit at the time left, and leaves out what is unknown', () => {
    const f = jobFeatures({ ...base, wallSec: null, deadline: base.now + 600_000, memoryMb: null, pilot: NO_LIMITS });
    expect(f.wall_limit_secs).toBe(540);
    expect(f).not.toHaveProperty('max_rss_bytes');
    expect(f).not.toHaveProperty('hs06_job');
    const open = jobFeatures({ ...base, wallSec: null, deadline: null });
    expect(open).not.toHaveProperty('wall_limit_secs');
    expect(open).not.toHaveProperty('shutdowntime_job');
  });
  it('writes one file per key, one value per line', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'vmp-prov-'));
    try {
      await writeFeatures(path.join(dir, 'mf'), machineFeatures({ totalCores: 4, deadline: 2_000_000_000_000, graceSec: 30, hs06: null }));
      expect((await readdir(path.join(dir, 'mf'))).sort()).toEqual(['grace_secs', 'shutdowntime', 'total_cpu']);
      expect(await readFile(path.join(dir, 'mf', 'shutdowntime'), 'utf8')).toBe('2000000000\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
