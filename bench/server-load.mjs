#!/usr/bin/env node
// Server load: heartbeat and match throughput and latency with many simulated
// pilots (default 10,000 and 100,000), all in this one process on loopback,
// against the real server on its SQLite store; and how the database grows
// per day of heartbeats.
//
// Heartbeats are measured two ways: closed loop (C requests in flight, as fast
// as the server answers) and open loop at a fixed rate (default 3,000/s, the
// load of 180,000 pilots at a 60 s interval), where latency counts from when a
// request was due, so a server that falls behind cannot hide it.
import { statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Pool } from 'undici';
import { build, percentile, record, startServer, tempDir, tokens } from './lib.mjs';

build();
const sizes = (process.env.BENCH_PILOTS ?? '10000,100000').split(',').map(Number);
const seconds = Number(process.env.BENCH_SECONDS ?? 15);
const rate = Number(process.env.BENCH_RATE ?? 3000);
const inFlight = Number(process.env.BENCH_CONCURRENCY ?? 64);

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

/** Run `worker` with `inFlight` in parallel until `until`; returns latencies (ms). */
async function closedLoop(until, worker) {
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

/** Send `perSec` requests a second for `ms`, latency from when each was due. */
async function openLoop(perSec, ms, worker) {
  const latencies = [];
  const start = performance.now();
  const total = Math.floor((perSec * ms) / 1000);
  const pending = [];
  let sent = 0;
  while (sent < total) {
    const due = start + (sent * 1000) / perSec;
    const now = performance.now();
    if (now < due) {
      await new Promise((r) => setTimeout(r, Math.max(0, due - now - 0.5)));
      continue;
    }
    const i = sent++;
    pending.push(worker(i).then(() => latencies.push(performance.now() - due)));
    if (pending.length > 20_000) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  const elapsed = (performance.now() - start) / 1000;
  return { latencies, achieved: total / elapsed };
}

async function run(pilotCount) {
  const tmp = tempDir();
  const tok = tokens();
  const db = path.join(tmp.dir, 'server.db');
  // registering every simulated pilot from one address is set-up, not the load: no registration rate limit for it
  const limits = path.join(tmp.dir, 'limits.yaml');
  writeFileSync(limits, 'limits: { registerBurstPerToken: 0, registerBurstPerAddress: 0 }\n');
  const args = ['--heartbeat-interval', '60', '--match-wait-max', '0', '--config', limits];
  let server = await startServer(db, tok, args);
  let pool = new Pool(server.url, { connections: inFlight, pipelining: 1 });
  const post = async (route, token, body) => {
    const res = await pool.request({ method: 'POST', path: route, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body });
    const text = await res.body.text();
    if (res.statusCode >= 300) throw new Error(`${route}: ${res.statusCode} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  /** Stop the server (closing checkpoints the WAL into the database file), measure the file, start again. */
  const restart = async () => {
    await pool.close();
    await server.stop();
    const bytes = statSync(db).size;
    server = await startServer(db, tok, args);
    pool = new Pool(server.url, { connections: inFlight, pipelining: 1 });
    return bytes;
  };

  // register every pilot
  const pilots = new Array(pilotCount);
  let r = 0;
  const regStart = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      for (let i = r++; i < pilotCount; i = r++) {
        const reply = await post('/v1/register', tok.pilot, JSON.stringify({ hostname: `sim-${i}`, version: '0.1.0', cores: 8, memoryMb: 16000 }));
        pilots[i] = { id: reply.pilotId, credential: reply.credential };
      }
    }),
  );
  const registerRate = pilotCount / ((performance.now() - regStart) / 1000);
  // a pilot's heartbeat keeps its size from beat to beat, as a real one does
  const beat = (i) => {
    const p = pilots[i % pilotCount];
    return post(`/v1/pilots/${p.id}/heartbeat`, p.credential, heartbeat(i % pilotCount));
  };

  // one heartbeat from every pilot first: its first one fills the pilot's row once, which is not growth per day
  let w = 0;
  await Promise.all(Array.from({ length: inFlight }, async () => {
    for (let i = w++; i < pilotCount; i = w++) await beat(i);
  }));
  const bytesBefore = await restart();
  const closed = await closedLoop(performance.now() + seconds * 1000, beat);
  const open = await openLoop(rate, seconds * 1000, beat);
  const beats = closed.length + open.latencies.length;
  const bytesPerBeat = Math.max(0, (await restart()) - bytesBefore) / beats;

  // match: claim from a queue of payloads, then ask an empty queue
  const queued = Math.min(20_000, pilotCount);
  let s = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      for (let i = s++; i < queued; i = s++) await post('/v1/payloads', tok.admin, JSON.stringify({ command: ['true'], group: `g${i % 4}` }));
    }),
  );
  const match = (i) => {
    const p = pilots[i % pilotCount];
    return post(`/v1/pilots/${p.id}/match`, p.credential, JSON.stringify({ freeCores: 8, totalCores: 8, freeMemoryMb: 16000, remainingSec: null, holding: [], waitSec: 0 }));
  };
  let claims = 0;
  const claimLat = [];
  const claimStart = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      // each pilot claims once; a claimed payload stays assigned to it
      for (let i = claims++; i < queued; i = claims++) {
        const t0 = performance.now();
        await match(i);
        claimLat.push(performance.now() - t0);
      }
    }),
  );
  const claimRate = queued / ((performance.now() - claimStart) / 1000);
  const emptyLat = await closedLoop(performance.now() + Math.min(seconds, 5) * 1000, (i) => match(queued + i));

  await pool.close();
  await server.stop();
  tmp.cleanup();
  const perDayAt = (n) => (bytesPerBeat * n * 1440) / 1e6;
  const label = pilotCount >= 1000 ? `${pilotCount / 1000}k` : String(pilotCount);
  return [
    { name: `${label} pilots: register rate`, value: registerRate, unit: '/s' },
    { name: `${label} pilots: heartbeats, closed loop (${inFlight} in flight)`, value: closed.length / seconds, unit: '/s', goal: { op: '>=', value: 3000 } },
    { name: `${label} pilots: heartbeat p99, closed loop`, value: percentile(closed, 99), unit: 'ms' },
    { name: `${label} pilots: heartbeats, open loop at ${rate}/s`, value: open.achieved, unit: '/s', goal: { op: '>=', value: rate * 0.98 } },
    { name: `${label} pilots: heartbeat p99, open loop`, value: percentile(open.latencies, 99), unit: 'ms', goal: { op: '<=', value: 50 } },
    { name: `${label} pilots: match with claim`, value: claimRate, unit: '/s' },
    { name: `${label} pilots: match with claim p99`, value: percentile(claimLat, 99), unit: 'ms', goal: { op: '<=', value: 50 } },
    { name: `${label} pilots: match, empty queue`, value: emptyLat.length / Math.min(seconds, 5), unit: '/s' },
    { name: `${label} pilots: match, empty queue p99`, value: percentile(emptyLat, 99), unit: 'ms', goal: { op: '<=', value: 50 } },
    { name: `${label} pilots: db file growth per day of heartbeats`, value: perDayAt(pilotCount), unit: 'MB', compare: 'heartbeats rewrite the pilot row in place; the WAL is cut back to 64 MB' },
  ];
}

const figures = [];
for (const n of sizes) figures.push(...(await run(n)));
record('server-load', figures, { seconds, rate, inFlight });
