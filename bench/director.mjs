#!/usr/bin/env node
// The director (docs/director.md): bundle bench/director.ts, which drives the
// real Director (src/server/director/loop.ts) over its in-memory store and
// the fake driver, then
// - time one whole cycle with BENCH_DIRECTOR_QUEUED queued payloads (default
//   100,000), BENCH_DIRECTOR_ENDPOINTS endpoints (50) and about
//   BENCH_DIRECTOR_INSTANCES live instances (2,000), over 20 cycles;
// - simulate a day of bursts (a quiet background and four bursts of 300 to
//   1,500 payloads; machines of 8 cores, at most 100, boot in 3 min, their
//   pilots halt after 5 min with nothing to run) under vmpilot's Director,
//   a VMDIRAC-like rule and a Vcycle-like rule, on the same trace: machine
//   core-hours bought per useful core-hour, and the longest wait.
// - submit → first payload running from zero instances, through the built
//   server's director and its `process` driver (bench/first-payload.mjs), over
//   BENCH_DIRECTOR_FIRST_ROUNDS rounds (5), each on a fresh server.
// What is not measured here: the cycle on the SQLite store (the cycle figure
// is on the in-memory store, its queue held counted as queuedWork returns it;
// the SQLite store counts in one GROUP BY query, not timed here).
import { build as esbuild } from 'esbuild';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { firstPayloadRounds } from './first-payload.mjs';
import { ROOT, build, record, tempDir } from './lib.mjs';

const queued = Number(process.env.BENCH_DIRECTOR_QUEUED ?? 100_000);
const endpoints = Number(process.env.BENCH_DIRECTOR_ENDPOINTS ?? 50);
const instances = Number(process.env.BENCH_DIRECTOR_INSTANCES ?? 2_000);
const tmp = tempDir();
const out = path.join(tmp.dir, 'director.mjs');
await esbuild({ entryPoints: [path.join(ROOT, 'bench/director.ts')], bundle: true, platform: 'node', format: 'esm', outfile: out, logLevel: 'error' });
const sim = await import(pathToFileURL(out).href);
rmSync(tmp.dir, { recursive: true, force: true });

const cost = await sim.cycleCost({ queued, endpoints, instances, cycles: 20 });
console.log(`cycle with ${queued} queued, ${endpoints} endpoints, ${cost.liveInstances} live instances: p50 ${cost.cycleP50.toFixed(1)} ms, max ${cost.cycleMax.toFixed(1)} ms`);

build();
const first = await firstPayloadRounds(Number(process.env.BENCH_DIRECTOR_FIRST_ROUNDS ?? 5));
console.log(`submit → first payload running, from zero instances (process driver): p50 ${first.p50.toFixed(0)} ms, max ${first.max.toFixed(0)} ms over ${first.ms.length} rounds`);

const world = { seed: 11, maxInstances: 100, cores: 8, bootSec: 180, idleSec: 300, fizzleSec: 600, backoffSec: 900, cycleSec: 30, tickSec: 10 };
const rules = { vmpilot: "vmpilot's Director", vmdirac: 'VMDIRAC-like: min(1 per cycle, max − active, queued − booting)', vcycle: 'Vcycle-like: a tenth of the limit per cycle, queue ignored, back-off after a fizzle' };
const day = {};
for (const rule of Object.keys(rules)) {
  day[rule] = await sim.simulateDay(rule, world);
  const d = day[rule];
  console.log(`${rule}: ${d.machines} machines, ${d.boughtCoreHours.toFixed(0)} core-h bought for ${d.usefulCoreHours.toFixed(0)} useful (${d.boughtPerUseful.toFixed(2)}), longest wait ${(d.longestWaitSec / 60).toFixed(1)} min, p95 ${(d.p95WaitSec / 60).toFixed(1)} min, ${d.ran}/${d.payloads} ran`);
}
const v = day.vmpilot;
record(
  'director',
  [
    { name: 'one cycle: 100k queued, 50 endpoints, 2,000 instances (p50)', value: cost.cycleP50, unit: 'ms', goal: { op: '<=', value: 50 }, compare: `${cost.liveInstances} live instances, ${cost.startsLastCycle} starts decided in the last cycle; in-memory store, the queue counted as queuedWork returns it` },
    { name: 'one cycle: 100k queued, 50 endpoints, 2,000 instances (max of 20)', value: cost.cycleMax, unit: 'ms' },
    { name: 'submit → first payload running, from zero instances (process driver, p50)', value: first.p50, unit: 'ms', goal: { op: '<=', value: 1500 }, compare: `max ${first.max.toFixed(0)} ms of ${first.ms.length} rounds; the built server and agent, a fresh database each round` },
    ...Object.entries(rules).flatMap(([rule, label]) => [
      { name: `day of bursts, ${rule}: core-hours bought per useful core-hour`, value: day[rule].boughtPerUseful, unit: '', compare: `${label}; ${day[rule].machines} machines, ${day[rule].ran} of ${day[rule].payloads} payloads ran` },
      { name: `day of bursts, ${rule}: longest wait`, value: day[rule].longestWaitSec / 60, unit: 'min', compare: `p95 ${(day[rule].p95WaitSec / 60).toFixed(1)} min` },
    ]),
    { name: 'day of bursts: vmpilot bought vs VMDIRAC-like', value: (100 * v.boughtCoreHours) / day.vmdirac.boughtCoreHours, unit: '%', compare: `longest wait ${(v.longestWaitSec / 60).toFixed(0)} vs ${(day.vmdirac.longestWaitSec / 60).toFixed(0)} min` },
  ],
  { queued, endpoints, instances, ...world },
);
