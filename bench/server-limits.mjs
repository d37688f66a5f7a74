#!/usr/bin/env node
// Server limits (issue 11): what the security limits cost, and what no
// request may cost any more.
//
// 1. Heartbeats before and after, paired (BENCH_ONLY=heartbeats: this part only): the server of the base commit
//    (BENCH_BASE, default: the merge base with main, built into a temporary
//    directory) and this one, in alternating rounds (ABAB…, BENCH_ROUNDS) on
//    the same machine in the same run, each with 10,000 registered pilots
//    (BENCH_LIMITS_PILOTS): heartbeats closed loop (64 in flight) and open
//    loop at 3,000/s, as server-load measures them. This server runs with its
//    default limits.
// 2. (BENCH_ONLY=requests: this part only) With 100,000 pilots (BENCH_LISTING_PILOTS) and as many payloads: how
//    long each admin request takes on an otherwise idle server (SQLite is
//    synchronous, so that is how long it holds the event loop), and the
//    worst wait of a /v1/health probe sent every 2 ms while the dashboard's
//    poll runs back to back; the base server's GET /v1/pilots beside it.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Pool } from 'undici';
import { RESULTS, ROOT, SERVER, build, buildBase, percentile, record, startServer, tempDir, tokens } from './lib.mjs';

build();
const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
const hbPilots = Number(process.env.BENCH_LIMITS_PILOTS ?? 10_000);
const listPilots = Number(process.env.BENCH_LISTING_PILOTS ?? 100_000);
const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const rate = Number(process.env.BENCH_RATE ?? 3000);
const inFlight = 64;
/** `heartbeats` or `requests`: run one part only. */
const only = process.env.BENCH_ONLY ?? '';

function heartbeat(i) {
  return JSON.stringify({
    at: Date.now(),
    state: 'serving',
    version: '0.1.0',
    uptimeSec: 3600 + i,
    cores: { total: 8, used: 6, free: 2 },
    memoryMb: { total: 16000, used: 9000 },
    load: [5.9, 5.8, 5.7],
    diskFreeMb: 30000,
    payloads: [
      { id: i * 4 + 1, state: 'running', cores: 4, cpuSec: 1000, rssMb: 1800 },
      { id: i * 4 + 2, state: 'running', cores: 2, cpuSec: 500, rssMb: 900 },
    ],
    deadline: null,
  });
}

/** A server (bundle `bundle`) with `n` registered pilots that each sent one heartbeat. */
async function serverWith(bundle, n, extra = []) {
  const tmp = tempDir();
  const tok = tokens();
  // registering them all is set-up, not the figure: no registration limit for it
  const config = path.join(tmp.dir, 'server.yaml');
  writeFileSync(config, 'limits: { registerBurstPerToken: 0, registerBurstPerAddress: 0 }\n');
  const base = bundle !== SERVER;
  const server = await startServer(path.join(tmp.dir, 'server.db'), tok, ['--heartbeat-interval', '60', '--match-wait-max', '0', ...(base ? [] : ['--config', config]), ...extra], bundle);
  const pool = new Pool(server.url, { connections: inFlight, pipelining: 1 });
  const call = async (method, route, token, body) => {
    const res = await pool.request({ method, path: route, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body });
    const text = await res.body.text();
    if (res.statusCode >= 300) throw new Error(`${route}: ${res.statusCode} ${text.slice(0, 200)}`);
    return text && text.startsWith('#') ? text : text ? JSON.parse(text) : null;
  };
  const pilots = new Array(n);
  let r = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      for (let i = r++; i < n; i = r++) {
        const reply = await call('POST', '/v1/register', tok.pilot, JSON.stringify({ hostname: `sim-${i}.example.org`, version: '0.1.0', cores: 8, memoryMb: 16000, labels: { site: 'SIM', cloud: 'bench' } }));
        pilots[i] = { id: reply.pilotId, credential: reply.credential };
      }
    }),
  );
  const beat = (i) => call('POST', `/v1/pilots/${pilots[i % n].id}/heartbeat`, pilots[i % n].credential, heartbeat(i % n));
  let w = 0;
  await Promise.all(Array.from({ length: inFlight }, async () => {
    for (let i = w++; i < n; i = w++) await beat(i);
  }));
  return {
    call,
    beat,
    pilots,
    tok,
    stop: async () => {
      await pool.close();
      await server.stop();
      tmp.cleanup();
    },
  };
}

async function closedLoop(ms, worker) {
  const until = performance.now() + ms;
  const latencies = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < until) {
        const t0 = performance.now();
        await worker(next++);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return latencies;
}

async function openLoop(perSec, ms, worker) {
  const latencies = [];
  const start = performance.now();
  const total = Math.floor((perSec * ms) / 1000);
  const pending = [];
  for (let sent = 0; sent < total; ) {
    const due = start + (sent * 1000) / perSec;
    const now = performance.now();
    if (now < due) {
      await new Promise((r) => setTimeout(r, Math.max(0, due - now - 0.5)));
      continue;
    }
    sent++;
    pending.push(worker(sent).then(() => latencies.push(performance.now() - due)));
  }
  await Promise.all(pending);
  return { latencies, achieved: total / ((performance.now() - start) / 1000) };
}

/** One round of heartbeats against `bundle`: closed-loop rate and p99, open-loop rate and p99. */
async function heartbeatRound(bundle) {
  const s = await serverWith(bundle, hbPilots);
  const closed = await closedLoop(seconds * 1000, s.beat);
  const open = await openLoop(rate, seconds * 1000, s.beat);
  await s.stop();
  return { closedRate: closed.length / seconds, closedP99: percentile(closed, 99), openRate: open.achieved, openP99: percentile(open.latencies, 99) };
}

/** Time `count` runs of one GET (ms each). */
async function timeGet(s, route, count = 20) {
  const times = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await s.call('GET', route, s.tok.admin);
    times.push(performance.now() - t0);
  }
  return times;
}

const base = process.env.BENCH_BASE ?? execFileSync('git', ['merge-base', 'HEAD', 'main'], { cwd: ROOT, encoding: 'utf8' }).trim();
const before = await buildBase(base);
const figures = [];
const label = (n) => `${n / 1000}k`;

// 1. heartbeats, before and after, paired
const runs = { before: [], after: [] };
for (let i = 0; i < (only === 'requests' ? 0 : rounds); i++) {
  runs.before.push(await heartbeatRound(before.bundle));
  runs.after.push(await heartbeatRound(SERVER));
}
const med = (list, k) => percentile(list.map((x) => x[k]), 50);
for (const [k, name, unit] of only === 'requests' ? [] : [
  ['closedRate', `heartbeats, closed loop (${inFlight} in flight)`, '/s'],
  ['closedP99', 'heartbeat p99, closed loop', 'ms'],
  ['openRate', `heartbeats, open loop at ${rate}/s`, '/s'],
  ['openP99', 'heartbeat p99, open loop', 'ms'],
]) {
  const b = med(runs.before, k);
  const a = med(runs.after, k);
  figures.push({ part: 'heartbeats', name: `${label(hbPilots)} pilots: ${name}, before (${base.slice(0, 7)})`, value: b, unit });
  figures.push({ part: 'heartbeats', name: `${label(hbPilots)} pilots: ${name}, after`, value: a, unit, compare: `${(((a - b) / b) * 100).toFixed(1)} % against before; median of ${rounds} paired rounds` });
}

// 2. requests with 100k pilots and 100k payloads
if (only !== 'heartbeats') await requests();
before.cleanup();
for (const f of figures) f.part ??= 'requests';
// one part run alone keeps the other part's figures of the last run
const kept = only && existsSync(RESULTS) ? (JSON.parse(readFileSync(RESULTS, 'utf8'))['server-limits']?.figures ?? []).filter((f) => (f.part ?? (/heartbeat/.test(f.name) ? 'heartbeats' : 'requests')) !== only) : [];
const ordered = [...figures, ...kept].sort((x, y) => (x.part === y.part ? 0 : x.part === 'heartbeats' ? -1 : 1));
record('server-limits', ordered, { rounds, hbPilots, listPilots, seconds, rate, base });

/** Each admin request with 100k pilots and 100k payloads, and the health probe while the dashboard polls. */
async function requests() {
  const s = await serverWith(SERVER, listPilots);
  for (let i = 0; i < listPilots; i += 10_000) {
    const payloads = Array.from({ length: Math.min(10_000, listPilots - i) }, (_, j) => ({ command: ['/opt/sim', '--seed', String(i + j)], group: `g${(i + j) % 4}` }));
    await s.call('POST', '/v1/payloads/batch', s.tok.admin, JSON.stringify({ payloads }));
}
const mid = s.pilots[Math.floor(listPilots / 2)].id;
const routes = [
  ['GET /v1/pilots (a page of 100)', '/v1/pilots'],
  ['GET /v1/pilots?limit=500', '/v1/pilots?limit=500'],
  ['GET /v1/pilots?state=running,draining&limit=500', '/v1/pilots?state=running,draining&limit=500'],
  ['GET /v1/pilots, a page from the middle', `/v1/pilots?limit=500&cursor=${mid}`],
  ['GET /v1/payloads (a page of 100)', '/v1/payloads'],
  ['GET /v1/payloads?limit=500', '/v1/payloads?limit=500'],
  ['GET /v1/payloads?state=queued&group=g3&limit=500', '/v1/payloads?state=queued&group=g3&limit=500'],
  ['GET /v1/pilots/:id', `/v1/pilots/${mid}`],
  ['GET /v1/accounting?by=group (the dashboard)', '/v1/accounting?by=group'],
  ['GET /v1/usage (the dashboard chart)', '/v1/usage?minutes=30&stepSec=15'],
  ['GET /metrics', '/metrics'],
];
for (const [name, route] of routes) {
  const times = await timeGet(s, route);
  figures.push({ name: `${label(listPilots)} pilots: ${name}, p50`, value: percentile(times, 50), unit: 'ms' });
  figures.push({ name: `${label(listPilots)} pilots: ${name}, max`, value: Math.max(...times), unit: 'ms', goal: { op: '<=', value: 20 } });
}
// the dashboard polls back to back while a probe measures how long the server keeps it waiting
const dashboard = ['/v1/pilots?limit=200', '/v1/payloads?limit=200', '/v1/accounting?by=group', '/v1/usage?minutes=30&stepSec=15'];
let polling = true;
const poller = (async () => {
  while (polling) await Promise.all(dashboard.map((r) => s.call('GET', r, s.tok.admin)));
})();
const probes = [];
const probeUntil = performance.now() + 5000;
while (performance.now() < probeUntil) {
  const t0 = performance.now();
  await s.call('GET', '/v1/health', s.tok.admin);
  probes.push(performance.now() - t0);
  await new Promise((r) => setTimeout(r, 2));
}
polling = false;
await poller;
figures.push({ name: `${label(listPilots)} pilots: health probe wait while the dashboard polls, p99`, value: percentile(probes, 99), unit: 'ms' });
figures.push({ name: `${label(listPilots)} pilots: health probe wait while the dashboard polls, max`, value: Math.max(...probes), unit: 'ms', goal: { op: '<=', value: 20 } });
await s.stop();

// the base server's whole listing, for comparison (a few runs: each takes long)
const old = await serverWith(before.bundle, listPilots);
const oldTimes = await timeGet(old, '/v1/pilots', 3);
figures.push({ name: `${label(listPilots)} pilots: GET /v1/pilots before (${base.slice(0, 7)}: every pilot, whole rows), p50`, value: percentile(oldTimes, 50), unit: 'ms' });
await old.stop();
}
