import { execFileSync } from 'node:child_process';

/** Build dist/ once before any test file runs, so integration tests run what users run. */
export default function setup(): void {
  execFileSync(process.execPath, ['scripts/build.mjs', '--quiet'], { stdio: 'inherit' });
}
