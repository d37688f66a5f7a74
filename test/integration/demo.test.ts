/**
 * The README's main command, `npm run demo`, as a new user runs it (here as
 * root, as on the CI machine: its agents then run payloads as slot
 * accounts): it exits 0 and says every payload finished. `--no-build`: the
 * suite built dist/ once; a rebuild would rewrite it under running tests.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './harness.js';

describe('npm run demo', () => {
  it('runs the workload on the machines the director starts to the end: every payload finished, every instance discarded, nothing lost, exit 0', async () => {
    const r = await new Promise<{ code: number | null; out: string }>((resolve) =>
      execFile(process.execPath, [path.join(ROOT, 'scripts/demo.mjs'), '--no-build'], { cwd: ROOT, timeout: 240_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, out: stdout + stderr }),
      ),
    );
    expect(r.code, r.out.slice(-3000)).toBe(0);
    expect(r.out).toMatch(/All 11 payloads finished on [12] instance\(s\) the director started and discarded; nothing lost, nothing left running\./);
    expect(r.out).toMatch(/instance 1 registered: pilot \d+ registered/);
    expect(r.out).toMatch(/instance-hours: [\d.]+ bought, [\d.]+ used/);
    expect(r.out).toMatch(/failed: payload \d+ \(broken-job\), exit 2: missing input file/);
  }, 300_000);
});
