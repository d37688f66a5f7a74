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
import { chromium, type BrowserContext, type Page } from 'playwright-core';

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

/**
 * Headless Chromium (installed if need be) in its own profile directory at
 * `viewport`, with the flags this closed network needs, and one page whose
 * script errors and console errors land in `errors` (those `ignore` matches
 * left out).
 */
export async function launchPage(profile: string, viewport: { width: number; height: number }, errors: string[], ignore?: RegExp): Promise<{ context: BrowserContext; page: Page }> {
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: ensureChromium(),
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !(ignore && ignore.test(m.text()))) errors.push(m.text());
  });
  return { context, page };
}
