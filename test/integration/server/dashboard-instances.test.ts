/**
 * The dashboard's instances, in headless Chromium against the built server
 * with a `process` endpoint: its director starts real agents as local
 * processes. Started by hand here (so the test knows how many), they are
 * listed, paged and filtered on the server with the view in the URL; one is
 * shown in detail with its history and its pilot; Stop says what it will do,
 * sends nothing when cancelled, and once confirmed drains the pilot and
 * follows the instance until it is deleted. A server without endpoints says
 * that no director runs.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InstanceDetailReply, InstanceView, StartInstancesReply } from '../../../src/protocol/index.js';
import { ADMIN_TOKEN, ROOT, admin, killAll, killProcessesWith, startServer, tempDir, waitFor, type Server } from '../harness.js';
import { ensureChromium, launchPage } from './chromium.js';

/** Beside the other dashboard screenshots (gitignored; look at them). */
const SCREENSHOTS = path.join(ROOT, 'screenshots/dashboard');

const DESKTOP = { width: 1440, height: 900 };
const PHONE = { width: 390, height: 844 };
const LONG = 90_000;

describe('the dashboard: instances the director started', () => {
  const tmp = tempDir('vmpilot-dashboard-instances-');
  // the agents run as root and their payloads as slot accounts, which must pass through to their directories
  chmodSync(tmp.dir, 0o711);
  const profile = mkdtempSync(path.join(tmpdir(), 'vmpilot-chromium-'));
  let server: Server;
  let bare: Server;
  let context: BrowserContext;
  let page: Page;
  let api: ReturnType<typeof admin>;
  let ids: number[];
  const errors: string[] = [];

  const shot = (name: string) => page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
  const instance = async (id: number) => (await api.call<InstanceDetailReply>('GET', `/v1/instances/${id}`)).body;
  const rows = () => page.locator('#instances-list tr[data-instance-row]').evaluateAll((all) => all.map((r) => Number(r.getAttribute('data-instance-row'))));

  beforeAll(async () => {
    ensureChromium();
    mkdirSync(SCREENSHOTS, { recursive: true });
    const config = path.join(tmp.dir, 'server.yaml');
    writeFileSync(
      config,
      `endpoints:
  laptop:
    driver: process
    process: { workDir: ${path.join(tmp.dir, 'instances')} }
    shapes:
      small: { cores: 1, memoryMb: 500 }
    limits: { instances: 3 }
    timeouts: { idleSec: 300, payloadGraceSec: 2, drainGraceSec: 120 }
`,
    );
    server = await startServer(path.join(tmp.dir, 'server.db'), ['--config', config]);
    bare = await startServer(path.join(tmp.dir, 'bare.db'));
    api = admin(server.url);
    const started = await api.call<StartInstancesReply>('POST', '/v1/instances', { endpoint: 'laptop', count: 2 });
    expect(started.status).toBe(201);
    ids = started.body.instances.map((i) => i.id);
    for (const id of ids) await waitFor(`instance ${id} to register`, async () => (await instance(id)).state === 'registered', LONG);
    ({ context, page } = await launchPage(profile, DESKTOP, errors));
    await page.goto(server.url);
    await page.fill('#token', ADMIN_TOKEN);
    await page.click('#signin button[type=submit]');
    await page.waitForSelector('[data-tile="running"]');
  }, 180_000);

  afterAll(async () => {
    await context?.close();
    await server?.stop();
    await bare?.stop();
    killAll();
    // agents the director started are not the harness's children
    killProcessesWith(tmp.dir);
    rmSync(profile, { recursive: true, force: true });
    tmp.cleanup();
  });

  it('the overview counts them by endpoint and state, and its count opens the list filtered the same way', async () => {
    const cell = page.locator('#instances tbody tr td:nth-child(3) a');
    await expect.poll(() => cell.textContent().catch(() => null), { timeout: 15_000 }).toBe('2');
    await cell.click();
    await expect.poll(() => page.url()).toMatch(/#\/instances\?endpoint=laptop&state=registered$/);
    await expect.poll(() => page.locator('#instances-pager .range').textContent(), { timeout: 15_000 }).toBe('1-2 of 2');
    expect(await page.locator('nav a[aria-current="page"]').textContent()).toBe('Instances');
    expect(await page.inputValue('#f-instance-state')).toBe('registered');
    expect(await page.inputValue('#f-instance-endpoint')).toBe('laptop');
  });

  it('lists them newest first with their pilots, filters by state on the server, and keeps the view through a reload', async () => {
    await page.goto(`${server.url}/#/instances`);
    await expect.poll(rows, { timeout: 15_000 }).toEqual([...ids].sort((a, b) => b - a));
    const views = (await api.call<InstanceView[]>('GET', '/v1/instances')).body;
    for (const v of views) {
      const row = page.locator(`#instances-list tr[data-instance-row="${v.id}"]`);
      expect(await row.locator('.state').textContent()).toBe('registered');
      expect(await row.locator('td:nth-child(7)').textContent()).toBe('by hand');
      expect(await row.locator(`a[href="#/pilot/${v.pilotId}"]`).count()).toBe(1);
    }
    await shot('instances-desktop');
    await page.selectOption('#f-instance-state', 'deleted');
    await expect.poll(() => page.url()).toMatch(/#\/instances\?state=deleted$/);
    await expect.poll(() => page.locator('#instances-list td.empty').textContent().catch(() => null), { timeout: 15_000 }).toBe('no instances in that state');
    expect(await page.locator('#instances-pager .range').textContent()).toBe('none');
    await page.reload();
    await expect.poll(() => page.locator('#instances-list td.empty').textContent().catch(() => null), { timeout: 15_000 }).toBe('no instances in that state');
    expect(await page.inputValue('#f-instance-state')).toBe('deleted');
  });

  it('shows one in detail: its key, pilot and history', async () => {
    const id = ids[0]!;
    const i = await instance(id);
    await page.goto(`${server.url}/#/instances`);
    await page.click(`#instances-list a[href="#/instance/${id}"]`);
    await expect.poll(() => page.url()).toMatch(new RegExp(`#/instance/${id}$`));
    await expect.poll(() => page.locator('#instance-facts dd[data-fact="Key"]').textContent().catch(() => null), { timeout: 15_000 }).toBe(i.key);
    expect(await page.locator('#instance-facts dd[data-fact="Pilot"]').textContent()).toBe(`${i.pilotId} running`);
    expect(await page.locator('#instance-facts dd[data-fact="For"]').textContent()).toBe('by hand');
    const states = await page.locator('#instance-history tbody tr td:nth-child(2)').allTextContents();
    expect(states[0]).toBe('requested');
    expect(states).toContain('registered');
    expect(await page.locator(`.title-row button[data-action="stop"][data-instance="${id}"]`).count()).toBe(1);
    await shot('instance-detail-desktop');
  });

  it('asks before a stop, naming what will happen; cancelling sends nothing; confirming drains its pilot and follows it until deleted', async () => {
    const id = ids[0]!;
    const before = await instance(id);
    await page.goto(`${server.url}/#/instance/${id}`);
    const stop = page.locator(`.title-row button[data-action="stop"][data-instance="${id}"]`);
    await stop.click();
    await page.waitForSelector('#confirm[open]');
    expect(await page.textContent('#confirm-text')).toBe(
      `stop instance ${id} (laptop/small): its pilot ${before.pilotId} is asked to drain: it takes no new payloads, its running payloads run to their end, then the machine is discarded (terminated at the latest its endpoint's drain grace later).`,
    );
    await shot('instance-stop-confirm-desktop');
    await page.click('#confirm-cancel');
    await expect.poll(() => page.locator('#confirm[open]').count()).toBe(0);
    expect(await page.locator('#feedback li').count()).toBe(0);
    // nothing was sent: the instance is as it was, its pilot not draining
    expect(await instance(id)).toMatchObject({ state: 'registered', drainAt: null });
    expect((await api.pilots()).find((p) => p.id === before.pilotId)?.state).toBe('running');

    await stop.click();
    await page.waitForSelector('#confirm[open]');
    await page.click('#confirm-ok');
    await expect.poll(() => page.textContent('#feedback li'), { timeout: 15_000 }).toMatch(new RegExp(`stop instance ${id} .*(draining|deleted)`));
    await expect.poll(() => page.locator('#feedback li.ok').textContent().catch(() => null), { timeout: LONG }).toMatch(new RegExp(`stop instance ${id} .*deleted`));
    const after = await instance(id);
    expect(after.state).toBe('deleted');
    expect(after.pilot).toEqual({ id: before.pilotId, state: 'halted' });
    // the page shows it deleted, with no Stop left; the other instance is untouched
    await expect.poll(() => page.locator('.title-row .state').textContent(), { timeout: 15_000 }).toBe('deleted');
    expect(await page.locator('button[data-action="stop"]').count()).toBe(0);
    expect((await instance(ids[1]!)).state).toBe('registered');
    await shot('instance-stopped-desktop');
  }, 180_000);

  it('fits a phone: no sideways page scroll, and Stop on screen', async () => {
    await page.setViewportSize(PHONE);
    for (const [name, hash, ready] of [
      ['instances', '#/instances', '#instances-list tr[data-instance-row]'],
      ['instance-detail', `#/instance/${ids[1]}`, '#instance-facts'],
    ] as const) {
      await page.goto(`${server.url}/${hash}`);
      await page.waitForSelector(ready, { timeout: 15_000 });
      expect(await page.locator('html').evaluate((h) => h.scrollWidth), name).toBeLessThanOrEqual(PHONE.width);
      const boxes = await page.locator('.title-row button[data-action], nav a').evaluateAll((all) => all.map((b) => ({ text: b.textContent, ...b.getBoundingClientRect().toJSON() })));
      for (const b of boxes) {
        expect(b.left, `${name}: ${b.text}`).toBeGreaterThanOrEqual(0);
        expect(b.right, `${name}: ${b.text}`).toBeLessThanOrEqual(PHONE.width);
      }
      await shot(`${name}-phone`);
    }
    await page.setViewportSize(DESKTOP);
  });

  it('on a server without endpoints, says that no director runs', async () => {
    await page.goto(`${bare.url}/#/instances`);
    // a new origin: sign in there too
    await page.fill('#token', ADMIN_TOKEN);
    await page.click('#signin button[type=submit]');
    await expect.poll(() => page.locator('#no-director').isVisible(), { timeout: 15_000 }).toBe(true);
    expect(await page.textContent('#no-director')).toMatch(/No endpoints are configured, so no director runs/);
    expect(await page.locator('#instances-pager .range').textContent()).toBe('none');
    expect(errors).toEqual([]);
  });
});
