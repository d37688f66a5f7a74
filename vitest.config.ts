import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests run the built agent and server: build once first.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default', './test/summary-reporter.ts'],
    // Three files at a time on this project's 2-core machines: the suite is
    // mostly waiting (real agents' idle timeouts, heartbeats, outages held
    // until the agent shows it), about 30 % of two cores with two files at a
    // time, and no test depends on how fast it is scheduled. The longest file
    // (about 30 s) bounds the run from below.
    maxWorkers: 3,
  },
});
