#!/usr/bin/env node
// The dashboard with a large site (issue 17): 100,000 payloads
// (BENCH_DASH_PAYLOADS) and 2,000 pilots (BENCH_DASH_PILOTS) on the real
// server, the page in Debian's Chromium (playwright-core). Figures: the
// time from navigation to the overview's totals on screen and to the first
// page of payloads; the requests and bytes each periodic refresh sends and
// receives in those two views; and how long GET /v1/overview and a counted
// page of payloads take on the server.
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { Pool } from 'undici';
import { build, percentile, record, startServer, tempDir, tokens } from './lib.mjs';

build();
const nPayloads = Number(process.env.BENCH_DASH_PAYLOADS ?? 100_000);
const nPilots = Number(process.env.BENCH_DASH_PILOTS ?? 2_000);
const CHROMIUM = '/usr/bin/chromium';
if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: test/systems/packages.sh chromium installs it`);

const tmp = tempDir();
const tok = tokens();
const config = path.join(tmp.dir, 'server.yaml');
writeFileSync(config, 'limits: { registerBurstPerToken: 0, registerBurstPerAddress: 0 }\n');
const server = await startServer(path.join(tmp.dir, 'server.db'), tok, ['--heartbeat-interval', '60', '--config', config]);
const pool = new Pool(server.url, { connections: 16 });
const call = async (method, route, token, body) => {
  const res = await pool.request({ method, path: route, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body });
  const text = await res.body.text();
  if (res.statusCode >= 300) throw new Error(`${route}: ${res.statusCode} ${text.slice(0, 200)}`);
  return text ? JSON.parse(text) : null;
};

let next = 0;
await Promise.all(Array.from({ length: 16 }, async () => {
  for (let i = next++; i < nPilots; i = next++) {
    await call('POST', '/v1/register', tok.pilot, JSON.stringify({ hostname: `sim-${i}.example.org`, version: '0.1.0', cores: 8, memoryMb: 16000 }));
  }
}));
for (let i = 0; i < nPayloads; i += 5000) {
  const payloads = Array.from({ length: Math.min(5000, nPayloads - i) }, (_, j) => ({ name: `sim-${i + j}`, command: ['/opt/sim', String(i + j)], group: `g${(i + j) % 4}` }));
  await call('POST', '/v1/payloads/batch', tok.admin, JSON.stringify({ payloads }));
}

/** Milliseconds of `route` on the server, `runs` times one after another. */
async function timeGet(route, runs = 20) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await call('GET', route, tok.admin);
    times.push(performance.now() - t0);
  }
  return times;
}

const figures = [];
for (const [name, route] of [
  ['GET /v1/overview', '/v1/overview'],
  ['GET /v1/payloads, a counted page of 50', '/v1/payloads?limit=50&offset=0'],
  ['GET /v1/payloads, page 1,000 of 50 by offset', '/v1/payloads?limit=50&offset=49950'],
  ['GET /v1/payloads?name=sim-777 (counted)', '/v1/payloads?name=sim-777&limit=50&offset=0'],
  ['GET /v1/pilots, live, counted page of 50', '/v1/pilots?state=submitted,booting,running,draining,halting,stalled,error&limit=50&offset=0'],
]) {
  const t = await timeGet(route);
  figures.push({ name: `${name}: p50`, value: percentile(t, 50), unit: 'ms', goal: { op: '<=', value: 20 } });
  figures.push({ name: `${name}: max of 20`, value: Math.max(...t), unit: 'ms' });
}

const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
await context.addInitScript((t) => sessionStorage.setItem('vmpilot-admin-token', t), tok.admin);

/** Time to `ready` after navigating to `hash`, then the requests and bytes of each refresh over `cycles` refreshes. */
async function view(hash, ready, cycles = 3) {
  const page = await context.newPage();
  const t0 = performance.now();
  await page.goto(`${server.url}/${hash}`);
  await page.waitForSelector(ready, { timeout: 60_000 });
  const firstPaint = performance.now() - t0;
  const seen = [];
  page.on('requestfinished', async (req) => {
    if (!req.url().includes('/v1/')) return;
    const sizes = await req.sizes();
    seen.push({ sent: sizes.requestHeadersSize + sizes.requestBodySize, received: sizes.responseHeadersSize + sizes.responseBodySize });
  });
  // the page refreshes every 3 s
  await page.waitForTimeout(cycles * 3000 + 500);
  await page.close();
  const received = seen.reduce((s, r) => s + r.received, 0) / cycles;
  const sent = seen.reduce((s, r) => s + r.sent, 0) / cycles;
  return { firstPaint, requests: seen.length / cycles, received, sent };
}

for (const [name, hash, ready] of [
  ['overview', '#/overview', '[data-tile="queued"] .tile-value'],
  ['payloads, first page', '#/payloads', '#payloads tr[data-payload-row]'],
  ['pilots, first page', '#/pilots', '#pilots tr[data-pilot-row]'],
]) {
  const v = await view(hash, ready);
  figures.push({ name: `${name}: navigation to data on screen`, value: v.firstPaint, unit: 'ms', goal: { op: '<=', value: 1000 } });
  figures.push({ name: `${name}: requests per refresh`, value: v.requests, unit: '' });
  figures.push({ name: `${name}: bytes received per refresh`, value: v.received, unit: 'B', goal: { op: '<=', value: 100_000 } });
  figures.push({ name: `${name}: bytes sent per refresh`, value: v.sent, unit: 'B' });
}
await browser.close();
await pool.close();
await server.stop();
tmp.cleanup();
record('dashboard', figures, { payloads: nPayloads, pilots: nPilots });
