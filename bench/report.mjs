#!/usr/bin/env node
// Write the figures of bench/results.json into bench/README.md, between the
// `<!-- results -->` markers, so the README shows the latest measured run.
// Usage: node bench/report.mjs (npm run bench does it at the end)
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { RESULTS, ROOT, meets } from './lib.mjs';

const readme = path.join(ROOT, 'bench/README.md');
const results = JSON.parse(readFileSync(RESULTS, 'utf8'));
const fmt = (v) => (Number.isFinite(v) ? (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2)) : 'n/a');
const lines = [`Last run ${results.machine?.date?.slice(0, 10) ?? '?'} with Node.js ${results.machine?.node ?? '?'}; each benchmark says when it was measured.`, ''];
for (const [bench, { figures, notes, at }] of Object.entries(results)) {
  if (bench === 'machine') continue;
  const settings = Object.entries(notes ?? {}).map(([k, v]) => `${k} ${v}`).join(', ');
  const when = at ? `, measured ${at.slice(0, 10)}` : '';
  lines.push(`**${bench}**${settings ? ` (${settings}${when})` : when ? ` (${when.slice(2)})` : ''}`, '', '| figure | value | goal | compared with |', '|---|---|---|---|');
  for (const f of figures) lines.push(`| ${f.name} | ${fmt(f.value)} ${f.unit} | ${meets(f) || '—'} | ${f.compare ?? ''} |`);
  lines.push('');
}
const text = readFileSync(readme, 'utf8');
const start = text.indexOf('<!-- results -->');
const end = text.indexOf('<!-- /results -->');
if (start < 0 || end < 0) throw new Error('bench/README.md has no <!-- results --> ... <!-- /results --> section');
writeFileSync(readme, `${text.slice(0, start)}<!-- results -->\n${lines.join('\n')}\n${text.slice(end)}`);
console.log('wrote the results into bench/README.md');
