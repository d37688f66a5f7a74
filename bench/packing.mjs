#!/usr/bin/env node
// Packing: bundle bench/packing.ts (which imports the real matching code from
// src/) and simulate vmpilot and two baselines over the same trace.
import { build as esbuild } from 'esbuild';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, record, tempDir } from './lib.mjs';

const hours = Number(process.env.BENCH_HOURS ?? 24);
const load = Number(process.env.BENCH_LOAD ?? 1.0);
const starvationSec = Number(process.env.BENCH_STARVATION_SEC ?? 600);
const tmp = tempDir();
const out = path.join(tmp.dir, 'packing.mjs');
await esbuild({ entryPoints: [path.join(ROOT, 'bench/packing.ts')], bundle: true, platform: 'node', format: 'esm', outfile: out, logLevel: 'error' });
const sim = await import(pathToFileURL(out).href);
rmSync(tmp.dir, { recursive: true, force: true });

const trace = sim.makeTrace({ nodes: 100, hours, load, seed: 2026 });
const cores = trace.nodes.reduce((s, n) => s + n, 0);
console.log(`trace: ${trace.jobs.length} payloads over ${hours} h on 100 nodes (${cores} cores, 8-64 each), offered load ${load}`);
const figures = [];
const h = (s) => s / 3600;
for (const policy of ['vmpilot', 'first-fit', 'single-core-pilots']) {
  const t0 = performance.now();
  const o = sim.simulate(trace, policy, starvationSec);
  console.log(`  ${policy}: simulated in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const label = policy === 'vmpilot' ? 'vmpilot' : policy === 'first-fit' ? 'first fit, no reservation (DIRAC pool pilot)' : 'one single-core pilot per core';
  figures.push({ name: `${label}: core utilisation`, value: o.utilisation * 100, unit: '%', ...(policy === 'vmpilot' ? { goal: { op: '>=', value: 95 } } : {}) });
  for (const [size, w] of Object.entries(o.wait)) {
    const never = w.never > 0 ? `; ${w.never} never started` : '';
    figures.push({ name: `${label}: wait ${size === "whole" ? "whole-node" : `${size}-core`} mean / p95`, value: h(w.mean), unit: 'h', compare: `p95 ${h(w.p95).toFixed(2)} h${never}` });
  }
  figures.push({
    name: `${label}: longest wait`,
    value: h(o.longestWait),
    unit: 'h',
    ...(policy === 'vmpilot' ? { goal: { op: '<=', value: Number(h(starvationSec + o.longestPayload).toFixed(2)) } } : {}),
    compare: `bound ${starvationSec} s + longest payload ${h(o.longestPayload).toFixed(2)} h`,
  });
}
record('packing', figures, { hours, load, starvationSec, nodes: 100, cores, payloads: trace.jobs.length });
