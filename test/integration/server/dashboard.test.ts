import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PilotDetailReply, PayloadView } from '../../../src/protocol/index.js';
import { ADMIN_TOKEN, PILOT_TOKEN, ROOT, admin, killAll, startAgent, startServer, tempDir, waitFor, type Proc, type Server } from '../harness.js';
import { ensureChromium, launchPage } from './chromium.js';

/** Screenshots of every view at both sizes (gitignored; look at them). */
export const SCREENSHOTS = path.join(ROOT, 'screenshots/dashboard');
const DESKTOP = { width: 1440, height: 900 };
const PHONE = { width: 390, height: 844 };
const SEEDED = 10_000;
const HOSTILE = '<img src=x onerror="document.title=1">' + 'x'.repeat(150);

describe('the dashboard in headless Chromium, with 10,000 payloads', () => {
  const tmp = tempDir();
  const profile = mkdtempSync(path.join(tmpdir(), 'vmpilot-chromium-'));
  let server: Server;
  let context: BrowserContext;
  let page: Page;
  let agent: Proc;
  let api: ReturnType<typeof admin>;
  let helloId: number;
  let hostileId: number;
  let newest: number;
  const errors: string[] = [];

  const shot = async (name: string) => {
    await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
  };
  const pagerText = (id: string) => page.locator(`#${id} .range`).textContent();
  /** The page is no wider than the window: nothing scrolls sideways but the tables inside their cards. */
  const pageWidth = () => page.locator('html').evaluate((html) => html.scrollWidth);

  beforeAll(async () => {
    ensureChromium();
    mkdirSync(SCREENSHOTS, { recursive: true });
    server = await startServer(path.join(tmp.dir, 'server.db'), ['--heartbeat-interval', '1']);
    api = admin(server.url);
    // one payload with output, first in the queue; one with a hostile name; then 10,000 that sleep
    helloId = await api.submit({ name: 'say-hello', group: 'atlas', priority: 10, command: ['/bin/sh', '-c', 'for i in 1 2 3; do echo "hello from the payload, line $i"; done'] });
    hostileId = await api.submit({ name: HOSTILE, group: 'cms', priority: -1, command: ['/bin/true'] });
    for (let start = 0; start < SEEDED; start += 5000) {
      const payloads = Array.from({ length: 5000 }, (_, i) => ({
        name: `sim-${start + i}`,
        group: (start + i) % 2 ? 'cms' : 'atlas',
        command: ['/bin/sh', '-c', 'sleep 600'],
      }));
      const r = await api.call<{ ids: number[] }>('POST', '/v1/payloads/batch', { payloads });
      expect(r.status).toBe(201);
      newest = r.body.ids[r.body.ids.length - 1]!;
    }
    agent = startAgent(server.url, { cores: 4, idleTimeoutSec: 300, stateDir: path.join(tmp.dir, 'agent') });
    // the wrong token's 401s are expected; anything else is not
    ({ context, page } = await launchPage(profile, DESKTOP, errors, /status of 401/));
  }, 20 * 60_000);

  afterAll(async () => {
    await context?.close();
    killAll();
    rmSync(profile, { recursive: true, force: true });
    tmp.cleanup();
  });

  it('signs in, and the overview counts everything: payloads by state, cores, pilots, each queue beside its share', async () => {
    await page.goto(server.url);
    await page.fill('#token', 'not-the-token');
    await page.click('#signin button[type=submit]');
    await expect.poll(() => page.textContent('#signin-error'), { timeout: 15_000 }).toMatch(/refused/);
    await page.fill('#token', ADMIN_TOKEN);
    await page.click('#signin button[type=submit]');
    // the pilot fills its 4 cores with 1-core payloads: say-hello ends, so 4 sleepers run
    await expect.poll(() => page.locator('[data-tile="done"] .tile-value').textContent().catch(() => null), { timeout: 60_000 }).toBe('1');
    await expect.poll(() => page.locator('[data-tile="running"] .tile-value').textContent(), { timeout: 30_000 }).toBe('4');
    await expect.poll(() => page.locator('[data-tile="cores in use"] .tile-value').textContent(), { timeout: 15_000 }).toBe('4 / 4');
    const queued = Number((await page.locator('[data-tile="queued"] .tile-value').textContent())!.replace(/,/g, ''));
    expect(queued).toBeGreaterThan(9_000);
    expect(await page.locator('#queues tr[data-group-row="atlas"] td').nth(3).textContent()).toBe('50 %');
    await expect.poll(() => page.locator('#chart polygon').count(), { timeout: 15_000 }).toBeGreaterThan(0);
    // no director runs: no instances card
    expect(await page.locator('#instances').isVisible()).toBe(false);
    await shot('overview-desktop');
  }, 150_000);

  it('finds the running payloads on the first page of "running", though they are among the oldest of 10,000', async () => {
    await page.click('a.tile-link:has([data-tile="running"])');
    await expect.poll(() => page.url()).toMatch(/#\/payloads\?state=running$/);
    await expect.poll(() => pagerText('payloads-pager'), { timeout: 15_000 }).toBe('1-4 of 4');
    const running = (await api.call<PayloadView[]>('GET', '/v1/payloads?state=running')).body.map((p) => String(p.id));
    const shown = await page.locator('#payloads tr[data-payload-row]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-payload-row')));
    expect(shown.sort()).toEqual(running.sort());
    // they are oldest: the default view's first page does not have them
    expect(Math.max(...running.map(Number))).toBeLessThan(newest - 100);
    await shot('payloads-running-desktop');
  });

  it('pages, sorts and filters on the server, the URL holding the view through a reload', async () => {
    await page.goto(`${server.url}/#/payloads`);
    await expect.poll(() => pagerText('payloads-pager'), { timeout: 15_000 }).toBe(`1-50 of ${(SEEDED + 2).toLocaleString('en-US')}`);
    const firstId = () => page.locator('#payloads tr[data-payload-row]').first().getAttribute('data-payload-row');
    expect(await firstId()).toBe(String(newest));
    await page.click('#payloads-pager a[data-page="next"]');
    await expect.poll(() => page.url()).toMatch(/page=2$/);
    await expect.poll(() => firstId()).toBe(String(newest - 50));
    expect(await pagerText('payloads-pager')).toBe(`51-100 of ${(SEEDED + 2).toLocaleString('en-US')}`);
    await page.selectOption('#f-order', 'oldest');
    await expect.poll(() => page.url()).toMatch(/order=oldest/);
    await expect.poll(() => firstId()).toBe(String(helloId));
    await page.fill('#f-name', 'sim-77');
    await page.click('#payload-filters button[type=submit]');
    await expect.poll(() => page.url()).toMatch(/name=sim-77/);
    // sim-77, sim-770..779, sim-7700..7799
    await expect.poll(() => pagerText('payloads-pager'), { timeout: 15_000 }).toBe('1-50 of 111');
    const names = await page.locator('#payloads tr[data-payload-row] td:nth-child(4)').allTextContents();
    expect(names.every((n) => n.includes('sim-77'))).toBe(true);
    expect(names[0]).toBe('sim-77');
    await page.reload();
    await expect.poll(() => pagerText('payloads-pager'), { timeout: 15_000 }).toBe('1-50 of 111');
    expect(await page.inputValue('#f-name')).toBe('sim-77');
    expect(await page.inputValue('#f-order')).toBe('oldest');
    // a column header sorts on the server: Z to A on the second click; the URL holds it
    const nameColumn = () => page.locator('#payloads tr[data-payload-row] td:nth-child(4)').allTextContents();
    await page.click('#payloads th button[data-sort="name"]');
    await expect.poll(() => page.url()).toMatch(/sort=name(&|$)/);
    expect(page.url()).not.toMatch(/order=/);
    await expect.poll(() => page.locator('#payloads th[aria-sort="ascending"]').textContent()).toBe('Name ▲');
    await expect.poll(async () => (await nameColumn()).slice(0, 3)).toEqual(['sim-77', 'sim-770', 'sim-7700']);
    await page.click('#payloads th button[data-sort="name"]');
    await expect.poll(() => page.url()).toMatch(/sort=-name(&|$)/);
    await expect.poll(async () => (await nameColumn()).slice(0, 2)).toEqual(['sim-7799', 'sim-7798']);
    expect(await pagerText('payloads-pager')).toBe('1-50 of 111');
    // the next page goes on in the same order (text order: sim-7790 before sim-779)
    await page.click('#payloads-pager a[data-page="next"]');
    await expect.poll(async () => (await nameColumn())[0]).toBe('sim-7753');
    await page.reload();
    await expect.poll(async () => (await nameColumn())[0], { timeout: 15_000 }).toBe('sim-7753');
    expect(await page.locator('#payloads th[aria-sort="descending"]').textContent()).toBe('Name ▼');
    await page.goto(`${server.url}/#/payloads?name=sim-77&order=oldest`);
    await expect.poll(() => pagerText('payloads-pager'), { timeout: 15_000 }).toBe('1-50 of 111');
    // a pilot that is not a number is refused on the page, naming it, and the view stays
    await page.fill('#f-pilot', 'seven');
    await page.click('#payload-filters button[type=submit]');
    expect(await page.textContent('#filter-error')).toMatch(/Pilot must be a pilot id.*"seven"/);
    expect(page.url()).not.toMatch(/pilot=/);
    await shot('payloads-filtered-desktop');
  });

  it('renders a hostile name as text, cut short with the whole of it on hover', async () => {
    await page.goto(`${server.url}/#/payloads?group=cms&order=oldest`);
    const cell = page.locator(`#payloads tr[data-payload-row="${hostileId}"] td:nth-child(4)`);
    await expect.poll(() => cell.getAttribute('title'), { timeout: 15_000 }).toBe(HOSTILE);
    expect(await cell.textContent()).toBe(HOSTILE);
    expect(await page.locator('#payloads img').count()).toBe(0);
    // cut short: the text is wider than the box that shows it
    const span = cell.locator('span');
    expect((await span.boundingBox())!.width).toBeLessThan(300);
    expect(await span.evaluate((e) => e.scrollWidth > e.clientWidth)).toBe(true);
    expect(await page.title()).toBe('vmpilot');
    // a pilot with a hostile hostname (registered as any pilot registers): text, cut short, its buttons in their card
    const reg = await fetch(`${server.url}/v1/register`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PILOT_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ hostname: HOSTILE, version: '0.1.0', cores: 2, memoryMb: 1000 }),
    });
    expect(reg.status).toBe(201);
    const hostilePilot = ((await reg.json()) as { pilotId: number }).pilotId;
    await page.goto(`${server.url}/#/pilots`);
    const host = page.locator(`#pilots tr[data-pilot-row="${hostilePilot}"] td:nth-child(4)`);
    await expect.poll(() => host.getAttribute('title'), { timeout: 15_000 }).toBe(HOSTILE);
    expect(await page.locator('#pilots img').count()).toBe(0);
    const cardRight = (await page.locator('#pilots').boundingBox())!;
    const halt = (await page.locator(`#pilots button[data-action="halt"][data-pilot="${hostilePilot}"]`).boundingBox())!;
    expect(halt.x + halt.width).toBeLessThanOrEqual(cardRight.x + cardRight.width);
    expect((await host.locator('span').boundingBox())!.width).toBeLessThan(300);
    // the pilots sort by host on the server, the other way on a second click
    const rows = () => page.locator('#pilots tr[data-pilot-row]').evaluateAll((trs) => trs.map((tr) => Number(tr.getAttribute('data-pilot-row'))));
    const byHost = (await api.pilots()).filter((p) => p.state !== 'halted').sort((a, b) => (a.hostname < b.hostname ? -1 : 1)).map((p) => p.id);
    await page.click('#pilots th button[data-sort="host"]');
    await expect.poll(() => page.url()).toMatch(/#\/pilots\?sort=host$/);
    await expect.poll(rows).toEqual(byHost);
    await page.click('#pilots th button[data-sort="host"]');
    await expect.poll(() => page.url()).toMatch(/sort=-host$/);
    await expect.poll(rows).toEqual([...byHost].reverse());
  });

  it("shows a payload's detail with its output tail, and its pilot's with instructions and last heartbeat", async () => {
    await page.goto(`${server.url}/#/payloads?name=say-hello`);
    await page.click(`#payloads a[href="#/payload/${helloId}"]`);
    await expect.poll(() => page.url()).toMatch(new RegExp(`#/payload/${helloId}$`));
    await expect.poll(() => page.textContent('#output-tail'), { timeout: 15_000 }).toMatch(/hello from the payload, line 3/);
    expect(await page.locator('#payload-facts dd[data-fact="Exit"]').textContent()).toBe('0');
    expect(await page.locator('#payload-facts dd[data-fact="Cores allocated"]').textContent()).toBe('1');
    // what its run used, as its agent reported at the end
    const hello = await api.job(helloId);
    const efficiency = await page.locator('#payload-facts dd[data-fact="CPU efficiency"]').textContent();
    // the hello run lasts milliseconds: too short a run for an efficiency
    expect(hello.cpuEfficiency).toBeNull();
    if (hello.cpuEfficiency === null || hello.cpuEfficiency === undefined) expect(efficiency).toBe(hello.cpuSec === null ? 'not reported by its pilot' : 'not measured: the run was shorter than a second');
    else expect(efficiency).toMatch(new RegExp(`^${Math.round(hello.cpuEfficiency * 100)} % \\(CPU `));
    const peak = await page.locator('#payload-facts dd[data-fact="Memory peak"]').textContent();
    expect(peak).toBe(hello.peakRssMb === null || hello.peakRssMb === undefined ? '-' : `${Math.round(hello.peakRssMb)} MB`);
    expect(await page.locator('#payload-history tbody tr').count()).toBeGreaterThanOrEqual(4);
    expect(await page.locator('button[data-action="kill"]').count()).toBe(0);
    await shot('payload-detail-desktop');
    // an ended payload offers Resubmit; cancelling the confirmation sends nothing
    const before = (await api.jobs()).length;
    const resubmit = page.locator(`.title-row button[data-action="resubmit"][data-payload="${helloId}"]`);
    await resubmit.click();
    await page.waitForSelector('#confirm[open]');
    expect(await page.textContent('#confirm-text')).toBe(
      `resubmit payload ${helloId} (say-hello): a new payload with the same command, environment, cores, memory, wall time and group (${hello.group}) is queued; payload ${helloId} stays done.`,
    );
    await page.click('#confirm-cancel');
    await expect.poll(() => page.locator('#confirm[open]').count()).toBe(0);
    expect((await api.jobs()).length).toBe(before);
    await resubmit.click();
    await page.waitForSelector('#confirm[open]');
    await page.click('#confirm-ok');
    await expect.poll(() => page.textContent('#feedback li.ok').catch(() => null), { timeout: 15_000 }).toMatch(new RegExp(`resubmit payload ${helloId} .*queued as payload \\d+`));
    const copyId = Number(/queued as payload (\d+)/.exec((await page.textContent('#feedback li.ok'))!)?.[1]);
    expect(await api.job(copyId)).toMatchObject({ name: 'say-hello', command: hello.command, group: hello.group });
    expect((await api.jobs()).length).toBe(before + 1);
    // the world of the next tests stays as it was: the copy is cancelled before it runs
    await api.call('POST', `/v1/payloads/${copyId}/kill`, {});
    await page.click('#feedback button.dismiss');
    const pilotLink = page.locator('#payload-facts dd[data-fact="Pilot"] a');
    const pilotId = Number((await pilotLink.textContent())!);
    await pilotLink.click();
    await expect.poll(() => page.locator('#pilot-beat dd[data-fact="Cores"]').textContent().catch(() => null), { timeout: 15_000 }).toBe('4 used, 0 free of 4');
    expect(await page.locator('#pilot-beat-payloads tbody tr').count()).toBe(4);
    // what it registered with: it came directly, and said what it is (its arch at least)
    expect(await page.locator('#pilot-facts dd[data-fact="Via"]').textContent()).toBe('-');
    expect(await page.locator('#pilot-facts dd[data-fact="Capabilities"]').textContent()).toMatch(/^(x86_64|aarch64)/);
    // a running pilot offers drain and halt
    expect(await page.locator(`.title-row button[data-pilot="${pilotId}"]`).allTextContents()).toEqual(['Drain', 'Halt']);
    await shot('pilot-detail-desktop');
    // a running payload's CPU efficiency, from its pilot's last heartbeat
    const running = (await api.call<PayloadView[]>('GET', '/v1/payloads?state=running&limit=1')).body[0]!;
    await page.click(`#pilot-payloads a[href="#/payload/${running.id}"]`);
    await expect.poll(() => page.locator('#payload-facts dd[data-fact="CPU efficiency"]').textContent().catch(() => null), { timeout: 15_000 }).toMatch(/^\d+ % \(CPU /);
    expect(await page.locator(`.title-row button[data-action="kill"][data-payload="${running.id}"]`).count()).toBe(1);
  });

  it('fits a phone: no sideways page scroll in any view, and every action on screen', async () => {
    await page.setViewportSize(PHONE);
    const pilotId = (await api.pilots())[0]!.id;
    const views: [string, string, string][] = [
      ['overview', '#/overview', '[data-tile="running"]'],
      ['payloads-running', '#/payloads?state=running', '#payloads tr[data-payload-row]'],
      ['pilots', '#/pilots', '#pilots tr[data-pilot-row]'],
      ['accounting', '#/accounting', '#accounting tr[data-group-row]'],
      ['payload-detail', `#/payload/${helloId}`, '#output-tail'],
      ['pilot-detail', `#/pilot/${pilotId}`, '#pilot-beat'],
    ];
    for (const [name, hash, ready] of views) {
      await page.goto(`${server.url}/${hash}`);
      await page.waitForSelector(ready, { timeout: 15_000 });
      expect(await pageWidth(), name).toBeLessThanOrEqual(PHONE.width);
      // read at once: a refresh may replace the rows between two calls
      const boxes = await page.locator('button[data-action], nav a').evaluateAll((all) =>
        all.map((b) => {
          const r = b.getBoundingClientRect();
          return { text: b.textContent, left: r.left, right: r.right, height: r.height };
        }),
      );
      if (name === 'pilots' || name === 'payloads-running' || name === 'pilot-detail') expect(boxes.some((b) => /Halt|Kill/.test(b.text ?? '')), name).toBe(true);
      for (const b of boxes) {
        expect(b.left, `${name}: ${b.text}`).toBeGreaterThanOrEqual(0);
        expect(b.right, `${name}: ${b.text}`).toBeLessThanOrEqual(PHONE.width);
        expect(b.height, `${name}: ${b.text} is touch-sized`).toBeGreaterThanOrEqual(36);
      }
      await shot(`${name}-phone`);
    }
    for (const [name, hash, ready] of views.slice(2)) {
      await page.setViewportSize(DESKTOP);
      await page.goto(`${server.url}/${hash}`);
      await page.waitForSelector(ready, { timeout: 15_000 });
      expect(await pageWidth(), name).toBeLessThanOrEqual(DESKTOP.width);
      await shot(`${name}-desktop`);
    }
  });

  it('shows accounting since the start, and by day between two dates held in the URL', async () => {
    await page.setViewportSize(DESKTOP);
    await page.goto(`${server.url}/#/accounting`);
    const atlas = page.locator('#accounting tr[data-group-row="atlas"]');
    await expect.poll(() => atlas.locator('td[data-field="done"]').textContent().catch(() => null), { timeout: 15_000 }).toBe('1');
    const today = new Date().toISOString().slice(0, 10);
    await page.fill('#f-from', today);
    await page.fill('#f-to', today);
    await page.click('#accounting-filters button[type=submit]');
    await expect.poll(() => page.url()).toMatch(new RegExp(`#/accounting\\?from=${today}&to=${today}$`));
    await expect.poll(() => atlas.locator('td').first().textContent().catch(() => null), { timeout: 15_000 }).toBe(today);
    expect(await atlas.locator('td[data-field="done"]').textContent()).toBe('1');
    // a range with nothing in it says so
    await page.goto(`${server.url}/#/accounting?from=2000-01-01&to=2000-01-02`);
    await expect.poll(() => page.locator('#accounting td.empty').textContent().catch(() => null), { timeout: 15_000 }).toBe('nothing has ended in that time');
    await shot('accounting-by-day-desktop');
  });

  it('kills a selection of payloads after one confirmation that counts them', async () => {
    await page.setViewportSize(DESKTOP);
    await page.goto(`${server.url}/#/payloads?name=sim-999&order=oldest`);
    await page.waitForSelector('#payloads input[data-select]');
    const ids = (await page.locator('#payloads input[data-select]').evaluateAll((all) => all.map((c) => c.getAttribute('data-select')))).slice(0, 2);
    for (const id of ids) await page.check(`#payloads input[data-select="${id}"]`);
    await expect.poll(() => page.textContent('#payload-bulk')).toMatch(/^2 selected/);
    await page.click('#payload-bulk button[data-bulk="kill"]');
    await page.waitForSelector('#confirm[open]');
    // sim-999, then sim-9990 (names containing "sim-999", oldest first)
    expect(await page.textContent('#confirm-text')).toBe(`kill 2 payloads (${ids[0]} sim-999, ${ids[1]} sim-9990): 2 queued will be cancelled before they start.`);
    await page.click('#confirm-ok');
    for (const id of ids) await waitFor(`payload ${id} cancelled`, async () => (await api.job(Number(id))).state === 'cancelled');
    await expect.poll(() => page.locator('#feedback li.ok').textContent(), { timeout: 15_000 }).toMatch(/kill 2 payloads.*all 2 done/);
    // ended: no checkbox, and the selection is empty
    await expect.poll(() => page.locator(`#payloads input[data-select="${ids[0]}"]`).count(), { timeout: 15_000 }).toBe(0);
    expect(await page.locator('#payload-bulk').isVisible()).toBe(false);
    await shot('payloads-bulk-desktop');
    await page.click('#feedback button.dismiss');
  });

  it('asks before a halt, naming what will happen; cancelling sends nothing; confirming sends one halt, shown until acknowledged', async () => {
    await page.setViewportSize(DESKTOP);
    const pilot = (await api.pilots())[0]!;
    const instructions = async () => (await api.call<PilotDetailReply>('GET', `/v1/pilots/${pilot.id}/detail`)).body.instructions;
    await page.goto(`${server.url}/#/pilots`);
    const halt = page.locator(`#pilots button[data-action="halt"][data-pilot="${pilot.id}"]`);
    await halt.click();
    await page.waitForSelector('#confirm[open]');
    expect(await page.textContent('#confirm-text')).toBe(
      `halt pilot ${pilot.id} (${pilot.hostname}): its 4 running payloads will be stopped and requeued (or failed, if they have no attempt left); the pilot then exits.`,
    );
    await shot('halt-confirm-desktop');
    await page.click('#confirm-cancel');
    await expect.poll(() => page.locator('#confirm[open]').count()).toBe(0);
    // Escape cancels too
    await halt.click();
    await page.waitForSelector('#confirm[open]');
    await page.keyboard.press('Escape');
    await expect.poll(() => page.locator('#confirm[open]').count()).toBe(0);
    expect(await page.locator('#feedback li').count()).toBe(0);
    // now confirmed: the server then holds exactly one instruction, so the cancelled ones sent nothing
    await page.locator(`#pilots button[data-action="halt"][data-pilot="${pilot.id}"]`).click();
    await page.waitForSelector('#confirm[open]');
    await page.click('#confirm-ok');
    const sent = await waitFor('the halt on the server', async () => {
      const list = await instructions();
      return list.length > 0 ? list : undefined;
    });
    expect(sent.map((i) => i.instruction.type)).toEqual(['halt']);
    await expect.poll(() => page.textContent('#feedback li'), { timeout: 30_000 }).toMatch(new RegExp(`halt pilot ${pilot.id} .*acknowledged by the pilot`));
    await expect.poll(() => page.locator(`#pilots tr[data-pilot-row="${pilot.id}"]`).count(), { timeout: 30_000 }).toBe(0); // halted: hidden by default
    // the feedback stays after the result is known, until dismissed
    expect(await page.locator('#feedback li.ok').count()).toBe(1);
    await shot('halt-done-desktop');
    await page.selectOption('#f-pilot-state', 'all');
    await expect.poll(() => page.url()).toMatch(/#\/pilots\?state=all$/);
    await expect.poll(() => page.locator(`#pilots tr[data-pilot-row="${pilot.id}"] .state`).textContent(), { timeout: 15_000 }).toBe('halted');
    expect(await page.locator(`#pilots tr[data-pilot-row="${pilot.id}"] button`).count()).toBe(0);
    await page.click('#feedback button.dismiss');
    expect(await page.locator('#feedback li').count()).toBe(0);
    expect((await agent.exited).code).toBe(0);
    // its 4 payloads were requeued, not failed
    const back = await Promise.all((await api.call<PayloadView[]>('GET', '/v1/payloads?state=failed')).body.map((p) => p.id));
    expect(back).toEqual([]);
    expect(errors).toEqual([]);
  });
});
