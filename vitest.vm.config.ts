import { defineConfig } from 'vitest/config';

/** `npm run test:vm`: the QEMU VM test (test/vm/*.vm.ts), not part of `npm test`. */
export default defineConfig({
  test: {
    include: ['test/vm/**/*.vm.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 900_000,
    hookTimeout: 900_000,
    maxWorkers: 1,
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
