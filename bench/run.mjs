#!/usr/bin/env node
// Run every benchmark in turn (each is also runnable alone: node bench/NAME.mjs),
// then print one table of all figures from bench/results.json.
// Usage: npm run bench [-- NAME ...]
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { RESULTS, ROOT, build, printTable } from './lib.mjs';

const all = ['agent-startup', 'dispatch', 'dispatch-replicas', 'halt', 'agent-idle', 'server-load', 'pg-growth', 'server-limits', 'packing', 'dashboard', 'relay', 'director'];
const chosen = process.argv.slice(2).length > 0 ? process.argv.slice(2) : all;
for (const name of chosen) if (!all.includes(name)) throw new Error(`no benchmark "${name}"; choose from ${all.join(', ')}`);

build();
for (const name of chosen) {
  console.log(`\n== ${name}`);
  execFileSync(process.execPath, [path.join(ROOT, 'bench', `${name}.mjs`)], { stdio: 'inherit', env: { ...process.env, BENCH_NO_BUILD: '1' } });
}

execFileSync(process.execPath, [path.join(ROOT, 'bench', 'report.mjs')], { stdio: 'inherit' });
const results = JSON.parse(readFileSync(RESULTS, 'utf8'));
console.log('\n==== all figures (bench/results.json)');
for (const name of chosen) if (results[name]) printTable(name, results[name].figures);
