import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, admin, killAll, startAgent, startServer, tempDir, type Server } from '../harness.js';
import { ensureChromium } from './chromium.js';

export const SCREENSHOT = '/tmp/vmpilot-dashboard.png';

describe('the dashboard in headless Chromium', () => {
  const tmp = tempDir();
  const profile = mkdtempSync(path.join(tmpdir(), 'vmpilot-chromium-'));
  let server: Server;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    const executablePath = ensureChromium();
    server = await startServer(path.join(tmp.dir, 'server.db'), ['--heartbeat-interval', '1']);
    context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 1000 },
    });
    page = context.pages()[0] ?? (await context.newPage());
  }, 20 * 60_000);

  afterAll(async () => {
    await context?.close();
    killAll();
    rmSync(profile, { recursive: true, force: true });
    tmp.cleanup();
  });

  it('signs in, shows a pilot appear and run a payload, halts it with the button, and shows it halted', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      // the wrong token's 401s are expected; anything else is not
      if (m.type() === 'error' && !/status of 401/.test(m.text())) errors.push(m.text());
    });
    await page.goto(server.url);
    // a wrong token is refused and the sign-in form says so
    await page.fill('#token', 'not-the-token');
    await page.click('#signin button[type=submit]');
    await expect.poll(() => page.textContent('#signin-error'), { timeout: 15_000 }).toMatch(/refused/);
    await page.fill('#token', ADMIN_TOKEN);
    await page.click('#signin button[type=submit]');
    await page.waitForSelector('#pilots td.empty', { timeout: 15_000 });

    const api = admin(server.url);
    const payloadId = await api.submit({ command: ['/bin/sh', '-c', 'sleep 60'], group: 'atlas', cores: { min: 2, max: 2, wholeNode: false } });
    const agent = startAgent(server.url, { cores: 4, idleTimeoutSec: 120, stateDir: path.join(tmp.dir, 'agent') });

    const pilotState = page.locator('#pilots tr[data-pilot-row] .state').first();
    await expect.poll(() => pilotState.textContent().catch(() => null), { timeout: 30_000 }).toBe('running');
    const payloadState = page.locator(`#payloads tr[data-payload-row="${payloadId}"] .state`);
    await expect.poll(() => payloadState.textContent().catch(() => null), { timeout: 30_000 }).toBe('running');
    const pilotId = Number(await page.locator('#pilots tr[data-pilot-row]').first().getAttribute('data-pilot-row'));
    await expect.poll(() => page.locator(`#pilots tr[data-pilot-row="${pilotId}"] td`).nth(3).textContent(), { timeout: 15_000 }).toBe('2 / 4');
    // the chart has the group's area once the dashboard polled the usage
    await expect.poll(() => page.locator('#chart polygon[data-group="atlas"]').count(), { timeout: 15_000 }).toBe(1);
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    await page.click(`#pilots button[data-action="halt"][data-pilot="${pilotId}"]`);
    await expect.poll(() => page.locator(`#pilots tr[data-pilot-row="${pilotId}"] .state`).textContent(), { timeout: 30_000 }).toBe('halted');
    await expect.poll(() => page.locator(`#pilots tr[data-pilot-row="${pilotId}"] td`).nth(5).textContent(), { timeout: 15_000 }).toMatch(/^100 /);
    // the halt stopped its payload (SIGTERM), which the pilot reported evicted before it halted: queued again
    await expect.poll(() => payloadState.textContent(), { timeout: 15_000 }).toBe('queued');
    await expect.poll(() => page.locator(`#payloads tr[data-payload-row="${payloadId}"] td`).nth(7).textContent(), { timeout: 15_000 }).toBe('1 (1 evicted)');
    // the accounting shows the evicted core-hours apart, not as a failure
    const atlas = page.locator('#accounting tr[data-group-row="atlas"]');
    await expect.poll(async () => Number(await atlas.locator('td[data-field="evictedCoreSec"]').textContent().catch(() => '0')), { timeout: 15_000 }).toBeGreaterThan(0);
    expect(await atlas.locator('td[data-field="failed"]').textContent()).toBe('0');
    expect(await atlas.locator('td[data-field="evicted"]').textContent()).toBe('1');
    // killed from the page while queued: cancelled, and no kill button any more
    await page.click(`#payloads button[data-action="kill"][data-payload="${payloadId}"]`);
    await expect.poll(() => payloadState.textContent(), { timeout: 15_000 }).toBe('cancelled');
    expect(await page.locator(`#payloads tr[data-payload-row="${payloadId}"] button[data-action="kill"]`).count()).toBe(0);
    expect((await agent.exited).code).toBe(0);
    expect(errors).toEqual([]);
  });
});
