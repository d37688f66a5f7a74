/**
 * Debian's chromium for the dashboard's browser test. test/global-setup.ts
 * installs it with the suite's other packages before any test runs; when a
 * single file runs on a machine without it, it is installed here through the
 * same script and lock (test/systems/packages.sh). When it cannot be
 * installed the test fails with the reason; it never skips.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const CHROMIUM = '/usr/bin/chromium';

const PACKAGES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../systems/packages.sh');

/** Make sure /usr/bin/chromium exists; throws with apt's output when it cannot be installed. */
export function ensureChromium(): string {
  if (existsSync(CHROMIUM)) return CHROMIUM;
  try {
    execFileSync(PACKAGES, ['chromium'], { stdio: 'pipe', timeout: 15 * 60_000 });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`cannot install Debian's chromium: ${e.stderr?.toString().trim() || e.message}`);
  }
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} does not exist (not root, or apt-get did not install it)`);
  return CHROMIUM;
}
