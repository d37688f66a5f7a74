/**
 * Payload limits with real fixture processes: memory of the whole tree
 * (RSS sampling, and a memory cgroup when the agent may create one), wall
 * time with a payload that ignores SIGTERM, a child that double-forks out
 * of the payload's group, capped output, and an unprivileged payload user.
 */
import { existsSync, readdirSync } from 'node:fs';
import { chmod, copyFile, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fakeAssignment } from '../../../../src/agent/control/fake-control-plane.js';
import { startPayload, type PayloadContext, type PayloadResult } from '../../../../src/agent/executor/payload-runner.js';
import { findUser, resolvePayloadUser } from '../../../../src/agent/executor/payload-user.js';
import { createProcessRunner } from '../../../../src/agent/executor/process-runner.js';
import { PayloadSupervisor } from '../../../../src/agent/payload/supervisor.js';
import type { Assignment } from '../../../../src/protocol/index.js';
import { systemClock } from '../../../../src/shared/clock.js';
import { silentLogger } from '../../../../src/shared/log.js';
import { alive } from './alive.js';

const fixtures = path.resolve(__dirname, '../../../fixtures/agent');
const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
const isRoot = process.getuid?.() === 0;
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'vmp-limits-'));
  await chmod(dir, 0o755);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Run assignments through a real supervisor; resolves each one's result. */
function supervise(o: { graceSec?: number; cgroupRoot?: string | null; context?: (a: Assignment, cores: number) => PayloadContext | null } = {}) {
  const ended = new Map<number, PayloadResult & { timedOut?: boolean }>();
  const runner = createProcessRunner({ sampleMs: 100, reapMs: 3000, cgroupRoot: o.cgroupRoot === undefined ? null : o.cgroupRoot });
  const sup = new PayloadSupervisor(runner, systemClock, silentLogger(), dir, () => env, () => o.graceSec ?? 1, {
    started: async () => undefined,
    ended: async (a, r) => void ended.set(a.id, r),
  }, o.context);
  const result = async (id: number) => {
    await vi.waitFor(() => expect(ended.has(id)).toBe(true), { timeout: 20_000, interval: 20 });
    return ended.get(id)!;
  };
  return { sup, result };
}

const payloadFile = (id: number, name: string) => path.join(dir, 'payloads', String(id), name);

describe('memory limit on the whole tree', () => {
  it('RSS sampling: two children each under the limit, together over it: the tree is killed, overMemory, peak RSS reported', async () => {
    const { sup, result } = supervise({ cgroupRoot: null });
    sup.accept(fakeAssignment(1, { command: [path.join(fixtures, 'memory-tree.sh'), '80'], memoryMb: 200, wallSec: null }), 1);
    const r = await result(1);
    expect(r.overMemory).toBe(true);
    expect(r.peakRssMb).toBeGreaterThan(200);
    expect(r.exitCode === null ? r.signal : 'exited').toBe('SIGKILL');
  });

  it('a v1 memory cgroup when the agent may create one: the kernel holds the limit; the cgroup is removed afterwards', async () => {
    expect(isRoot && existsSync('/sys/fs/cgroup/memory'), 'this test needs root and a v1 memory hierarchy at /sys/fs/cgroup/memory').toBe(true);
    const before = cgroupDirs();
    const { sup, result } = supervise({ cgroupRoot: '/sys/fs/cgroup' });
    sup.accept(fakeAssignment(2, { command: [path.join(fixtures, 'memory-tree.sh'), '80'], memoryMb: 200, wallSec: null }), 1);
    const r = await result(2);
    expect(r.overMemory).toBe(true);
    expect(cgroupDirs()).toEqual(before);
  });

  it('a payload under its limit is left alone and reports its usage', async () => {
    const { sup, result } = supervise({ cgroupRoot: null });
    sup.accept(fakeAssignment(3, { command: [path.join(fixtures, 'busy.sh'), '2'], memoryMb: 500, wallSec: null }), 2);
    const r = await result(3);
    expect(r).toMatchObject({ exitCode: 0, signal: null });
    expect(r.overMemory).toBeUndefined();
    expect(r.cpuSec).toBeGreaterThan(0.5);
    expect(r.peakRssMb).toBeGreaterThanOrEqual(0);
  });
});

function cgroupDirs(): string[] {
  const found: string[] = [];
  const walk = (d: string, depth: number) => {
    if (depth > 3) return;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      if (e.name.startsWith('vmpilot-')) found.push(path.join(d, e.name));
      else walk(path.join(d, e.name), depth + 1);
    }
  };
  walk('/sys/fs/cgroup/memory', 0);
  return found.sort();
}

describe('wall time and the whole process tree', () => {
  it('a payload that ignores SIGTERM: SIGTERM, grace, SIGKILL of the leader and its child', async () => {
    const { sup, result } = supervise({ graceSec: 1 });
    sup.accept(fakeAssignment(4, { command: [path.join(fixtures, 'stubborn-with-child.sh'), 'ignore-term'], wallSec: 1 }), 1);
    await vi.waitFor(() => expect(existsSync(payloadFile(4, 'child.pid'))).toBe(true), { timeout: 10_000 });
    const child = Number(await readFile(payloadFile(4, 'child.pid'), 'utf8'));
    const r = await result(4);
    expect(r).toMatchObject({ timedOut: true, signal: 'SIGKILL', message: 'wall time of 1 s exceeded' });
    await vi.waitFor(() => expect(alive(child)).toBe(false), { timeout: 5000 });
  });

  it('a child that double-forked into its own session is killed at the wall time too', async () => {
    const { sup, result } = supervise({ graceSec: 1 });
    sup.accept(fakeAssignment(5, { command: [path.join(fixtures, 'double-fork.sh')], wallSec: 1 }), 1);
    await vi.waitFor(() => expect(existsSync(payloadFile(5, 'escaped.pid'))).toBe(true), { timeout: 10_000 });
    const escaped = Number(await readFile(payloadFile(5, 'escaped.pid'), 'utf8'));
    expect(alive(escaped)).toBe(true);
    const r = await result(5);
    expect(r.timedOut).toBe(true);
    await vi.waitFor(() => expect(alive(escaped)).toBe(false), { timeout: 5000 });
  });

  it('what a payload leaves behind when it exits, detached or not, goes with it', async () => {
    const { sup, result } = supervise();
    sup.accept(fakeAssignment(6, { command: [path.join(fixtures, 'double-fork.sh'), 'exit'], wallSec: null }), 1);
    await vi.waitFor(() => expect(existsSync(payloadFile(6, 'escaped.pid'))).toBe(true), { timeout: 10_000 });
    const escaped = Number(await readFile(payloadFile(6, 'escaped.pid'), 'utf8'));
    const r = await result(6);
    expect(r).toMatchObject({ exitCode: 0 });
    await vi.waitFor(() => expect(alive(escaped)).toBe(false), { timeout: 5000 });
  });
});

describe('output files are capped', () => {
  it('keeps the newest output under the cap, says how much was dropped, and the tail ends with the last line', async () => {
    const runner = createProcessRunner({ sampleMs: 20, cgroupRoot: null });
    const ctx: PayloadContext = { jobFeatures: { allocated_cpu: 1 }, machineFeaturesDir: null, user: null, maxOutputBytes: 64 * 1024 };
    const out = await startPayload(runner, dir, env, fakeAssignment(7, { command: [path.join(fixtures, 'loud.sh'), '1024'] }), 1, ctx);
    if (!out.started) throw new Error(out.result.message);
    await out.process.exited;
    const text = await readFile(out.spec.stdoutPath, 'utf8');
    expect((await stat(out.spec.stdoutPath)).size).toBeLessThan(1024 * 1024);
    expect(text).toMatch(/^\[vmpilot: \d+ bytes of earlier output dropped\]/m);
    expect(text.trimEnd().endsWith('the end')).toBe(true);
  });
});

describe('payload user', () => {
  it('finds users by name or uid; refuses unknown users and root; ignored when the agent is not root', () => {
    const passwd = 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n';
    expect(findUser(passwd, 'nobody')).toEqual({ name: 'nobody', uid: 65534, gid: 65534 });
    expect(findUser(passwd, '65534')).toMatchObject({ name: 'nobody' });
    expect(findUser(passwd, 'ghost')).toBeNull();
    expect(resolvePayloadUser('nobody', 1000)).toBeNull();
    expect(resolvePayloadUser(null, 0)).toBeNull();
    expect(() => resolvePayloadUser('no-such-user-here', 0)).toThrow(/payloadUser "no-such-user-here": no such user/);
    expect(() => resolvePayloadUser('root', 0)).toThrow(/is root/);
  });

  it('runs as the configured unprivileged user, with its own $JOBFEATURES, cores and TMPDIR it can write', async () => {
    expect(isRoot, 'this test needs root (to switch to nobody)').toBe(true);
    const user = resolvePayloadUser('nobody', 0)!;
    const context = (a: Assignment, cores: number): PayloadContext => ({ jobFeatures: { allocated_cpu: cores, job_id: String(a.id) }, machineFeaturesDir: null, user, maxOutputBytes: 1 << 20 });
    const { sup, result } = supervise({ context });
    // a copy nobody can reach: the checkout may be closed to other accounts (e.g. under /root)
    const busy = path.join(dir, 'busy.sh');
    await copyFile(path.join(fixtures, 'busy.sh'), busy);
    await chmod(busy, 0o755);
    sup.accept(fakeAssignment(8, { command: [busy, '0'], wallSec: null }), 2);
    const r = await result(8);
    expect(r.exitCode).toBe(0);
    expect(r.outputTail).toContain('nobody');
    expect(r.outputTail).toContain(`jobfeatures=${payloadFile(8, 'jobfeatures')} cores=2 omp=2 tmp=${payloadFile(8, 'tmp')}`);
    expect((await stat(payloadFile(8, 'tmp/written'))).uid).toBe(65534);
  });
});
