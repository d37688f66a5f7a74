#!/usr/bin/env node
// Packing: bundle bench/packing.ts (which imports the real matching code from
// src/: the server's picker and designation, the agent's match request,
// starvation rule, backfill and admission check; the claim loop is the
// simulator's own) and simulate vmpilot (with backfill, and without:
// reservations only) and two baselines over the same trace, at each offered
// load; then a trace with a GPU share (BENCH_GPU_NODES of the nodes with 4
// GPUs, BENCH_GPU_SHARE of the payloads asking for one) under vmpilot,
// vmpilot without keeping GPU nodes' cores for GPU work, and first fit.
// BENCH_LOAD is one load or a comma-separated list (default 1.0,1.2).
import { build as esbuild } from 'esbuild';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, record, tempDir } from './lib.mjs';

const hours = Number(process.env.BENCH_HOURS ?? 24);
const loads = String(process.env.BENCH_LOAD ?? '1.0,1.2')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const starvationSec = Number(process.env.BENCH_STARVATION_SEC ?? 600);
const gpuNodeShare = Number(process.env.BENCH_GPU_NODES ?? 0.2);
const gpuShare = Number(process.env.BENCH_GPU_SHARE ?? 0.08);
for (const l of loads) if (!(Number(l) > 0)) throw new Error(`BENCH_LOAD: "${l}" is not a positive number`);
const tmp = tempDir();
const out = path.join(tmp.dir, 'packing.mjs');
await esbuild({ entryPoints: [path.join(ROOT, 'bench/packing.ts')], bundle: true, platform: 'node', format: 'esm', outfile: out, logLevel: 'error' });
const sim = await import(pathToFileURL(out).href);
rmSync(tmp.dir, { recursive: true, force: true });

const POLICIES = [
  { key: 'vmpilot', policy: 'vmpilot', backfill: true, label: 'vmpilot', goals: true },
  { key: 'vmpilot-no-backfill', policy: 'vmpilot', backfill: false, label: 'vmpilot without backfill (reservations only)' },
  { key: 'first-fit', policy: 'first-fit', label: 'first fit, no reservation (DIRAC pool pilot)' },
  { key: 'single-core-pilots', policy: 'single-core-pilots', label: 'one single-core pilot per core (runs the 1-core payloads only)' },
];
const h = (s) => s / 3600;
const figures = [];
const payloads = [];
let cores = 0;
for (const load of loads) {
  const trace = sim.makeTrace({ nodes: 100, hours, load: Number(load), seed: 2026 });
  cores = trace.nodes.reduce((s, n) => s + n, 0);
  payloads.push(trace.jobs.length);
  console.log(`trace: ${trace.jobs.length} payloads over ${hours} h on 100 nodes (${cores} cores, 8-64 each), offered load ${load}`);
  for (const p of POLICIES) {
    const t0 = performance.now();
    const o = sim.simulate(trace, p.policy, starvationSec, { backfill: p.backfill ?? false });
    console.log(`  ${p.key}: simulated in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const label = `load ${load}, ${p.label}`;
    const share = p.policy === 'single-core-pilots' ? { compare: `the 1-core payloads are ${(o.oneCoreShare * 100).toFixed(2)} % of the trace's work: the most such pilots can do` } : {};
    figures.push({ name: `${label}: core utilisation`, value: o.utilisation * 100, unit: '%', ...(p.goals ? { goal: { op: '>=', value: 95 } } : {}), ...share });
    if (p.policy === 'vmpilot') {
      figures.push({ name: `${label}: handed out, then given back by the agent's admission check`, value: o.released, unit: 'payloads' });
    }
    for (const [size, w] of Object.entries(o.wait)) {
      const never = w.never > 0 ? `; ${w.never} never started` : '';
      figures.push({ name: `${label}: wait ${size === 'whole' ? 'whole-node' : `${size}-core`} mean / p95`, value: h(w.mean), unit: 'h', compare: `p95 ${h(w.p95).toFixed(2)} h${never}` });
    }
    figures.push({
      name: `${label}: longest wait`,
      value: h(o.longestWait),
      unit: 'h',
      ...(p.goals ? { goal: { op: '<=', value: Number(h(starvationSec + o.longestPayload).toFixed(2)) } } : {}),
      compare: `bound ${starvationSec} s + longest payload ${h(o.longestPayload).toFixed(2)} h (longest declared wall time ${h(o.longestWall).toFixed(2)} h)`,
    });
  }
}

const GPU_POLICIES = [
  { key: 'vmpilot', policy: 'vmpilot', keepGpuCores: true, label: 'vmpilot' },
  { key: 'vmpilot-no-gpu-keep', policy: 'vmpilot', keepGpuCores: false, label: 'vmpilot, picker not keeping GPU cores' },
  { key: 'first-fit', policy: 'first-fit', label: 'first fit, no reservation (DIRAC pool pilot)' },
];
let gpus = 0;
const gpuPayloads = [];
for (const load of loads) {
  const trace = sim.makeTrace({ nodes: 100, hours, load: Number(load), seed: 2026, gpuNodeShare, gpusPerNode: 4, gpuShare });
  gpus = trace.gpus.reduce((s, n) => s + n, 0);
  const asking = trace.jobs.filter((j) => j.gpus > 0).length;
  gpuPayloads.push(asking);
  console.log(`GPU trace: ${trace.gpus.filter((n) => n > 0).length} nodes with 4 GPUs (${gpus} GPUs), ${asking} of ${trace.jobs.length} payloads ask for one, offered load ${load}`);
  for (const p of GPU_POLICIES) {
    const t0 = performance.now();
    const o = sim.simulate(trace, p.policy, starvationSec, { backfill: true, keepGpuCores: p.keepGpuCores });
    console.log(`  ${p.key}: simulated in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const label = `GPU trace, load ${load}, ${p.label}`;
    figures.push({ name: `${label}: GPU utilisation`, value: o.gpu.utilisation * 100, unit: '%' });
    const never = o.gpu.wait.never > 0 ? `; ${o.gpu.wait.never} never started` : '';
    figures.push({ name: `${label}: GPU payload wait mean / p95`, value: h(o.gpu.wait.mean), unit: 'h', compare: `p95 ${h(o.gpu.wait.p95).toFixed(2)} h, longest ${h(o.gpu.longestWait).toFixed(2)} h${never}` });
    figures.push({ name: `${label}: core utilisation`, value: o.utilisation * 100, unit: '%', compare: `CPU-only payloads' mean wait ${h(o.gpu.cpuOnlyMeanWait).toFixed(2)} h` });
  }
}
record('packing', figures, {
  hours,
  loads: loads.join(' and '),
  starvationSec,
  nodes: 100,
  cores,
  payloads: payloads.join(' and '),
  gpuTrace: `${gpuNodeShare * 100} % of nodes with 4 GPUs (${gpus}), ${gpuShare * 100} % of payloads (${gpuPayloads.join(' and ')}) ask for one`,
});
