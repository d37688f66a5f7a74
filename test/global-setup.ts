import { execFileSync } from 'node:child_process';

/**
 * Before any test file runs: install the Debian packages the tests need
 * (test/systems/packages.sh; on a new machine this takes a minute or two, and
 * it counts against no test's timeout), then build dist/ once, so that
 * integration tests run what users run.
 */
export default function setup(): void {
  execFileSync('test/systems/packages.sh', [], { stdio: 'inherit' });
  execFileSync(process.execPath, ['scripts/build.mjs', '--quiet'], { stdio: 'inherit' });
}
