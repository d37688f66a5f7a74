/**
 * The plain summary line ("tests: N passed, N failed[, N skipped]") of real
 * vitest runs, one per case file of test/fixtures/summary: whenever vitest
 * exits with a failure, the line says failed, whatever the tests say.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'vitest';
import { ROOT } from './integration/harness.js';

const CASES = path.join(ROOT, 'test/fixtures/summary');
const VITEST = path.join(ROOT, 'node_modules/vitest/vitest.mjs');

/** Run vitest on one case file; its exit status and the summary lines it printed. */
function runCase(file: string): Promise<{ code: number | null; lines: string[]; output: string }> {
  const child = spawn(process.execPath, [VITEST, 'run', '--root', CASES, '--config', path.join(CASES, 'vitest.config.ts'), file], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CI: '1', NO_COLOR: '1' },
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  return new Promise((resolve) => {
    child.on('exit', (code) => resolve({ code, lines: output.split('\n').filter((l) => l.startsWith('tests: ')), output }));
  });
}

describe('the plain summary line of a vitest run', () => {
  // each case is its own vitest process: run them side by side
  it.concurrent.for([
    ['every test passed', 0, 'passes.case.ts', 'tests: 1 passed, 0 failed, 1 skipped'],
    ['a beforeAll hook threw (its test skipped)', 1, 'before-all-throws.case.ts', 'tests: 0 passed, 1 failed, 1 skipped'],
    ["a describe's afterAll threw (its test passed)", 1, 'after-all-throws.case.ts', 'tests: 1 passed, 1 failed'],
    ['the file did not load', 1, 'does-not-load.case.ts', 'tests: 0 passed, 1 failed'],
    ['an error escaped a passing test', 1, 'uncaught.case.ts', 'tests: 2 passed, 1 failed'],
  ] as const)('%s: vitest exits %i, and the line says so', { timeout: 60_000 }, async ([, status, file, line], { expect }) => {
    const run = await runCase(file);
    expect(run.code, run.output).toBe(status);
    expect(run.lines, run.output).toEqual([line]);
  });
});
