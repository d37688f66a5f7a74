import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createProcessRunner } from '../../../../src/agent/executor/process-runner.js';
import { findWrapper, killLeftovers, planReattach, readTraces } from '../../../../src/agent/state/reattach.js';
import { wrappedRunner } from '../../../../src/agent/payload/wrapped-runner.js';
import { systemClock } from '../../../../src/shared/clock.js';

let dir: string;
const pids: number[] = [];
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'vmp-reattach-'));
});
afterEach(async () => {
  for (const pid of pids.splice(0)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await rm(dir, { recursive: true, force: true });
});

/** Poll until `check` holds (10 s at most). */
async function waitFor(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500 && !(await check()); i++) await new Promise((r) => setTimeout(r, 20));
}

/** True while `pid` runs (not gone, not a zombie). */
const running = async (pid: number) => !/\) [ZX] /.test(await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => ') X '));

describe('what a restarted agent makes of a payload left in state.running', () => {
  it('decides: adopt a live wrapper, report an exit status, give back one no wrapper ran for, report lost one gone without a status', () => {
    expect(planReattach({ pid: 41, alive: true, exitStatus: null })).toEqual({ kind: 'adopt', pid: 41 });
    expect(planReattach({ pid: 41, alive: false, exitStatus: 3 })).toMatchObject({ kind: 'ended', exitCode: 3, signal: null });
    expect(planReattach({ pid: 41, alive: false, exitStatus: 137 })).toMatchObject({ kind: 'ended', exitCode: null, signal: 'SIGKILL' });
    expect(planReattach({ pid: null, alive: false, exitStatus: null })).toEqual({ kind: 'not-started', message: 'not started: the agent restarted before starting it' });
    expect(planReattach({ pid: 41, alive: false, exitStatus: null })).toEqual({ kind: 'lost', message: 'lost: the payload ended while the agent was down and left no exit status' });
  });

  it('a wrapper spawned just before the agent died, that has not written its pid file yet, is found and adopted, not taken for never started', async () => {
    // a slow `mv` holds the wrapper before its pid file exists, as a loaded machine may
    const bin = path.join(dir, 'bin');
    await mkdir(bin);
    await writeFile(path.join(bin, 'mv'), '#!/bin/sh\ncase "$*" in *pid.tmp*) sleep 30 ;; esac\nexec /bin/mv "$@"\n');
    await chmod(path.join(bin, 'mv'), 0o755);
    const payloadDir = path.join(dir, '12');
    await mkdir(payloadDir);
    const runner = wrappedRunner(createProcessRunner({ sampleMs: 100, cgroupRoot: null }));
    const p = await runner.start({
      command: ['sleep', '30'],
      cwd: payloadDir,
      env: { PATH: `${bin}:/usr/bin:/bin`, VMPILOT_PAYLOAD_DIR: payloadDir, VMPILOT_PAYLOAD_ID: '12' },
      stdoutPath: path.join(dir, 'out'),
      stderrPath: path.join(dir, 'err'),
    });
    pids.push(p.pid);
    expect(await findWrapper('12', payloadDir)).toBe(p.pid);
    const traces = await readTraces('12', payloadDir, 0);
    expect(traces).toEqual({ pid: p.pid, alive: true, exitStatus: null });
    expect(planReattach(traces)).toEqual({ kind: 'adopt', pid: p.pid });
    // another payload's directory, or another id, is not this one
    expect(await findWrapper('12', path.join(dir, 'other'))).toBeNull();
    expect(await findWrapper('1', payloadDir)).toBeNull();
    p.signalGroup('SIGKILL');
    await p.exited;
  });

  it('with no pid file, no pid in the state and no wrapper running: never started', async () => {
    const payloadDir = path.join(dir, '13');
    await mkdir(payloadDir);
    expect(planReattach(await readTraces('13', payloadDir, 0))).toMatchObject({ kind: 'not-started' });
  });

  it('kills what is left of a lost payload (its directory in the environment) and waits until it has ended; another payload is left alone', async () => {
    const mine = path.join(dir, '14');
    const other = path.join(dir, '15');
    const start = async (d: string) => {
      const forked = path.join(dir, `${path.basename(d)}.forked`);
      const c = spawn('sh', ['-c', `sleep 30 & echo $! > ${forked}; wait`], { env: { ...process.env, VMPILOT_PAYLOAD_DIR: d }, detached: true, stdio: 'ignore' });
      c.unref();
      pids.push(c.pid!);
      await waitFor(async () => (await readFile(forked, 'utf8').catch(() => '')).endsWith('\n'));
      return c.pid!;
    };
    const left = await start(mine);
    const kept = await start(other);
    // the shell and its sleep
    expect(await killLeftovers(mine, systemClock)).toBe(2);
    expect(await running(left)).toBe(false);
    expect(await running(kept)).toBe(true);
  });
});
