import type { SerializedError } from 'vitest';
import type { Reporter, TestModule, TestRunEndReason } from 'vitest/node';

/** The counts of the plain summary line. */
export interface SummaryCounts {
  passed: number;
  failed: number;
  skipped: number;
}

/**
 * The counts of one run: tests by state, and as failed besides every
 * failure that is not a test's own: a file that failed to load, a hook
 * (beforeAll, afterAll, in the file or in a describe) that threw, an error
 * no test caught. A run vitest calls failed never shows 0 failed.
 */
export function summaryCounts(
  testModules: ReadonlyArray<TestModule>,
  unhandledErrors: ReadonlyArray<SerializedError> = [],
  reason: TestRunEndReason = 'passed',
): SummaryCounts {
  const counts: SummaryCounts = { passed: 0, failed: 0, skipped: 0 };
  for (const module of testModules) {
    for (const test of module.children.allTests()) {
      const state = test.result().state;
      if (state === 'passed') counts.passed++;
      else if (state === 'failed') counts.failed++;
      else counts.skipped++;
    }
    // the file's own errors (it did not load, or a top-level hook threw) and each describe's hooks
    counts.failed += module.errors().length;
    for (const suite of module.children.allSuites()) counts.failed += suite.errors().length;
  }
  counts.failed += unhandledErrors.length;
  if (reason === 'failed' && counts.failed === 0) counts.failed = 1;
  return counts;
}

/**
 * Ends every run with one plain line, "tests: N passed, N failed[, N skipped]",
 * which CI systems that do not know vitest's own summary can read. Failed
 * counts every failed test, file and hook (see `summaryCounts`), so the line
 * says failed whenever vitest exits with a failure.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>, reason: TestRunEndReason): void {
    const counts = summaryCounts(testModules, unhandledErrors, reason);
    const skipped = counts.skipped > 0 ? `, ${counts.skipped} skipped` : '';
    process.stdout.write(`\ntests: ${counts.passed} passed, ${counts.failed} failed${skipped}\n`);
  }
}
