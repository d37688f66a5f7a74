import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fakeAssignment } from '../../../../src/agent/control/fake-control-plane.js';
import { CANNOT_START_EXIT, collectResult, payloadEnv, startPayload } from '../../../../src/agent/executor/payload-runner.js';
import { childProcessRunner, signalProcessGroup } from '../../../../src/agent/executor/process-runner.js';
import { combineTails, tailText } from '../../../../src/agent/executor/output-tail.js';
import { alive } from './alive.js';

const fixtures = path.resolve(__dirname, '../../../fixtures/agent');
const base = { PATH: process.env.PATH ?? '/usr/bin:/bin', VMPILOT_TOKEN: 'secret' };
let dir: string;
const pids: number[] = [];

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'vmp-exec-'));
});
afterEach(async () => {
  for (const pid of pids.splice(0)) signalProcessGroup(pid, 'SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

describe('payloadEnv', () => {
  it('sets the payload variables, lets the assignment add its own, keeps ids from the agent', () => {
    const a = fakeAssignment(5, { env: { EXTRA: 'x', VMPILOT_CORES: '99', OMP_NUM_THREADS: '1' } });
    const env = payloadEnv({ PATH: '/bin' }, a, 3, '/s/payloads/5');
    expect(env).toMatchObject({ PATH: '/bin', EXTRA: 'x', VMPILOT_PAYLOAD_ID: '5', VMPILOT_CORES: '3', OMP_NUM_THREADS: '1', TMPDIR: '/s/payloads/5/tmp' });
  });
});

describe('tails', () => {
  it('keeps the last lines within the byte bound', () => {
    const text = Array.from({ length: 100 }, (_, i) => `line ${i + 1}`).join('\n') + '\n';
    const t = tailText(text, 50, 8192);
    expect(t.split('\n')).toHaveLength(50);
    expect(t.endsWith('line 100')).toBe(true);
    expect(tailText('x'.repeat(10_000), 50, 100)).toHaveLength(100);
    expect(combineTails('out\n', 'err\n')).toBe('out\n--- stderr ---\nerr');
    expect(combineTails('', '')).toBe('');
  });
});

describe('startPayload with real processes', () => {
  it('runs a payload in its directory with its env and collects exit code and output', async () => {
    const a = fakeAssignment(11, { command: [path.join(fixtures, 'exit-with.sh'), '3'], env: { EXTRA: 'yes' } });
    const o = await startPayload(childProcessRunner, dir, base, a, 2);
    expect(o.started).toBe(true);
    if (!o.started) return;
    pids.push(o.process.pid);
    const exit = await o.process.exited;
    expect(exit).toMatchObject({ exitCode: 3, signal: null });
    const r = await collectResult(o.spec, exit);
    const pdir = path.join(dir, 'payloads', '11');
    expect(r.outputTail).toContain(`id=11 cores=2 omp=2 tmpdir=${pdir}/tmp extra=yes token=secret`);
    expect(r.outputTail).toContain('--- stderr ---\nto stderr');
    expect(existsSync(path.join(pdir, 'tmp'))).toBe(true);
    expect(await readFile(path.join(pdir, 'stdout'), 'utf8')).toContain('id=11');
  });

  it('keeps only the last 50 lines of a long output', async () => {
    const a = fakeAssignment(12, { command: [path.join(fixtures, 'many-lines.sh'), '500'] });
    const o = await startPayload(childProcessRunner, dir, base, a, 1);
    if (!o.started) throw new Error('not started');
    const r = await collectResult(o.spec, await o.process.exited);
    expect(r.outputTail.split('\n')).toHaveLength(50);
    expect(r.outputTail.endsWith('line 500')).toBe(true);
  });

  it('turns a command that cannot start into a failed result, not a throw', async () => {
    const a = fakeAssignment(13, { command: ['/no/such/command-vmpilot'] });
    const o = await startPayload(childProcessRunner, dir, base, a, 1);
    expect(o.started).toBe(false);
    if (o.started) return;
    expect(o.result.exitCode).toBe(CANNOT_START_EXIT);
    expect(o.result.message).toMatch(/^cannot start: .*ENOENT/);
  });

  it('reports the signal that ended a payload', async () => {
    const a = fakeAssignment(14, { command: ['sleep', '30'] });
    const o = await startPayload(childProcessRunner, dir, base, a, 1);
    if (!o.started) throw new Error('not started');
    pids.push(o.process.pid);
    expect(o.process.signalGroup('SIGTERM')).toBe(true);
    expect(await o.process.exited).toMatchObject({ exitCode: null, signal: 'SIGTERM' });
  });

  it('kills the whole process group, children included', async () => {
    const a = fakeAssignment(15, { command: [path.join(fixtures, 'stubborn-with-child.sh'), 'ignore-term'] });
    const o = await startPayload(childProcessRunner, dir, base, a, 1);
    if (!o.started) throw new Error('not started');
    pids.push(o.process.pid);
    const pdir = path.join(dir, 'payloads', '15');
    await vi.waitFor(() => expect(existsSync(path.join(pdir, 'ready'))).toBe(true), { timeout: 10_000 });
    const child = Number((await readFile(path.join(pdir, 'child.pid'), 'utf8')).trim());
    expect(alive(child)).toBe(true);
    o.process.signalGroup('SIGTERM'); // ignored by leader and child
    expect(alive(o.process.pid)).toBe(true);
    o.process.signalGroup('SIGKILL');
    expect(await o.process.exited).toMatchObject({ exitCode: null, signal: 'SIGKILL' });
    await vi.waitFor(() => expect(alive(child)).toBe(false), { timeout: 10_000 });
  });
});
