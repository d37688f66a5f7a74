/**
 * Debian's chromium for the dashboard's browser test: installed with apt-get
 * when missing (idempotent; `apt-get update` first). When it cannot be
 * installed the test fails with the reason; it never skips.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const CHROMIUM = '/usr/bin/chromium';

/** Make sure /usr/bin/chromium exists; throws with apt's output when it cannot be installed. */
export function ensureChromium(): string {
  if (existsSync(CHROMIUM)) return CHROMIUM;
  const run = (args: string[]) => {
    try {
      execFileSync('apt-get', args, { stdio: 'pipe', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 15 * 60_000 });
    } catch (err) {
      const e = err as { stderr?: Buffer; message: string };
      throw new Error(`cannot install Debian's chromium (apt-get ${args.join(' ')}): ${e.stderr?.toString().trim() || e.message}`);
    }
  };
  run(['-o', 'DPkg::Lock::Timeout=900', 'update']);
  run(['-o', 'DPkg::Lock::Timeout=900', 'install', '-y', '--no-install-recommends', 'chromium']);
  if (!existsSync(CHROMIUM)) throw new Error(`apt-get installed chromium but ${CHROMIUM} does not exist`);
  return CHROMIUM;
}
