import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createProcessRunner } from '../../../../src/agent/executor/process-runner.js';
import { wrappedRunner } from '../../../../src/agent/payload/wrapped-runner.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'vmp-wrapper-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const runner = wrappedRunner(createProcessRunner({ sampleMs: 100, cgroupRoot: null }));

describe('the payload wrapper', () => {
  it('a stop that comes before the payload has started: the payload never starts, and the wrapper ends by that signal', async () => {
    // a slow `mv` on the payload's PATH holds the wrapper between its trap and the payload's start, as a loaded machine does
    const bin = path.join(dir, 'bin');
    await mkdir(bin);
    await writeFile(path.join(bin, 'mv'), '#!/bin/sh\ncase "$*" in *pid.tmp*) sleep 5 ;; esac\nexec /bin/mv "$@"\n');
    await chmod(path.join(bin, 'mv'), 0o755);
    const ran = path.join(dir, 'ran');
    const p = await runner.start({
      command: ['sh', '-c', `echo ran > ${ran}`],
      cwd: dir,
      env: { PATH: `${bin}:/usr/bin:/bin`, VMPILOT_PAYLOAD_DIR: dir, VMPILOT_PAYLOAD_ID: '9' },
      stdoutPath: path.join(dir, 'stdout'),
      stderrPath: path.join(dir, 'stderr'),
    });
    // the wrapper has written its pid and waits on `mv`: the payload is not started yet
    for (let i = 0; i < 500 && !existsSync(path.join(dir, 'pid.tmp')); i++) await new Promise((r) => setTimeout(r, 10));
    expect(existsSync(path.join(dir, 'pid.tmp'))).toBe(true);
    expect(p.signalGroup('SIGTERM')).toBe(true);
    const exit = await p.exited;
    expect(exit).toMatchObject({ exitCode: null, signal: 'SIGTERM' });
    expect(existsSync(ran)).toBe(false);
    // and an agent restarted now reads that it ended by SIGTERM
    expect(readFileSync(path.join(dir, 'exit_status'), 'utf8')).toBe('143\n');
  });
});
