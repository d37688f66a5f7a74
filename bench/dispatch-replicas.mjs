#!/usr/bin/env node
// Dispatch latency across server replicas on one PostgreSQL: from a submit
// through server A to the payload's process start on an idle agent of
// server B (its match request open on B), with B hearing of it through
// LISTEN/NOTIFY (`--db-wakeups listen`, the default) and through polling
// alone (`--db-wakeups poll --db-poll-ms 1000`), beside direct (submit and
// agent on the same server, PostgreSQL). Three databases on one real
// PostgreSQL 15 (test/postgres.ts), one agent each; the payloads go to the
// three in turn, so the modes share the machine's noise. p50 and p99 over
// BENCH_REPLICA_PAYLOADS (default 60) payloads per mode.
import { build as esbuild } from 'esbuild';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, admin, build, percentile, record, startAgent, startServer, tempDir, tokens, waitFor } from './lib.mjs';

build();
const n = Number(process.env.BENCH_REPLICA_PAYLOADS ?? 60);
const pollMs = 1000;
const tmp = tempDir();
// the tests' PostgreSQL harness is TypeScript: bundled here (pg with it; its optional native binding left out)
const banner = { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" };
await esbuild({ entryPoints: [path.join(ROOT, 'test/postgres.ts')], bundle: true, platform: 'node', format: 'esm', outdir: tmp.dir, banner, external: ['pg-native'], logLevel: 'error' });
const { startPostgres } = await import(pathToFileURL(path.join(tmp.dir, 'postgres.js')).href);
const cluster = await startPostgres();
const tok = tokens();

const modes = [];
const servers = [];
async function mode(name, flags, twoServers) {
  const db = await cluster.createDatabase();
  const a = await startServer(db, tok, ['--db-pool', '4', ...flags]);
  const b = twoServers ? await startServer(db, tok, ['--db-pool', '4', ...flags]) : a;
  servers.push(...new Set([a, b]));
  const agent = startAgent(b.url, tok, { stateDir: path.join(tmp.dir, `agent-${name}`), cores: 4 });
  await agent.registered;
  modes.push({ name, api: admin(a.url, tok.admin), agent, latencies: [] });
}
await mode('direct', [], false);
await mode('listen', ['--db-wakeups', 'listen'], true);
await mode('poll', ['--db-wakeups', 'poll', '--db-poll-ms', String(pollMs)], true);

for (let i = 0; i < n * modes.length; i++) {
  const m = modes[i % modes.length];
  const mark = path.join(tmp.dir, `start-${i}`);
  // let the agent settle into its open match request before the next submit
  await new Promise((r) => setTimeout(r, 20));
  const submittedAt = Date.now();
  const { id } = await m.api('POST', '/v1/payloads', { command: ['/bin/sh', '-c', `date +%s%N > ${mark}`], group: 'bench' });
  await waitFor(`payload ${id} to end`, async () => ['done', 'failed'].includes((await m.api('GET', `/v1/payloads/${id}`)).state), 30_000, 2);
  const startedNs = BigInt(readFileSync(mark, 'utf8').trim());
  m.latencies.push(Number(startedNs / 1000n) / 1000 - submittedAt);
}
for (const m of modes) {
  m.agent.child.kill('SIGKILL');
  await m.agent.exited;
}
for (const s of servers) await s.stop();
await cluster.stop();
tmp.cleanup();

const [direct, listen, poll] = modes;
const fig = (m, p, label, extra = {}) => ({ name: `${label} (p${p})`, value: percentile(m.latencies, p), unit: 'ms', ...extra });
record(
  'dispatch-replicas',
  [
    fig(direct, 50, 'PostgreSQL, one server: submit → payload start, idle agent'),
    fig(direct, 99, 'PostgreSQL, one server: submit → payload start, idle agent', { goal: { op: '<=', value: 100 } }),
    fig(listen, 50, 'submit through A → payload start on an agent of B, LISTEN/NOTIFY', { compare: 'one server, same run' }),
    fig(listen, 99, 'submit through A → payload start on an agent of B, LISTEN/NOTIFY', { goal: { op: '<=', value: 100 } }),
    fig(poll, 50, `submit through A → payload start on an agent of B, poll every ${pollMs} ms`, { compare: `about half the poll interval` }),
    fig(poll, 99, `submit through A → payload start on an agent of B, poll every ${pollMs} ms`, { compare: `at most the poll interval (${pollMs} ms) plus dispatch` }),
  ],
  { payloads: n, pollMs },
);
