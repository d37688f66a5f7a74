#!/usr/bin/env node
// PostgreSQL growth (issue 16, "the hot data stays small"): what heartbeats
// and a payload churn do to the pilots and payloads tables on a real
// PostgreSQL 15 (started as the tests start one, autovacuum on), for the
// server of the base commit (BENCH_BASE, default the merge base with main)
// and this one, each on a database of its own in the same cluster, one after
// the other.
//
// BENCH_GROWTH_PILOTS pilots (default 1,000) registered, then
// BENCH_GROWTH_ROUNDS rounds (default 30: half an hour of a fleet's life at
// the 60 s heartbeat interval, compressed): in each, every pilot sends one
// heartbeat, and BENCH_GROWTH_CHURN payloads (default 50) are submitted,
// claimed, started and ended by pilots in turn, one at a time. Read from
// pg_stat_user_tables (after pg_stat_clear_snapshot, once the counts settled)
// and pg_total_relation_size: the share of pilot-row updates that were HOT
// (in place, no index entry), dead tuples at the end, and the growth of each
// table and of the pilots' indexes per 1,000 heartbeats.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import pg from 'pg';
import { ROOT, SERVER, build, buildBase, record, sleep, startPostgres, startServer, tempDir, tokens } from './lib.mjs';
import { SimPilot, connect, each } from './sim-pilots.mjs';

build();
const pilotCount = Number(process.env.BENCH_GROWTH_PILOTS ?? 1000);
const rounds = Number(process.env.BENCH_GROWTH_ROUNDS ?? 30);
const churn = Number(process.env.BENCH_GROWTH_CHURN ?? 50);
const inFlight = 64;

const base = process.env.BENCH_BASE ?? execFileSync('git', ['merge-base', 'HEAD', 'main'], { cwd: ROOT, encoding: 'utf8' }).trim();
const before = await buildBase(base);
const cluster = await startPostgres();
const tmp = tempDir();
const limits = path.join(tmp.dir, 'limits.yaml');
writeFileSync(limits, 'limits: { registerBurstPerToken: 0, registerBurstPerAddress: 0 }\n');

/** The counters and sizes of the pilots and payloads tables, once a second read finds the counts unchanged. */
async function tables(url) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const read = async () => {
    await client.query('SELECT pg_stat_clear_snapshot()');
    const r = await client.query(
      `SELECT relname, n_live_tup, n_dead_tup, n_tup_upd, n_tup_hot_upd, autovacuum_count,
         pg_total_relation_size(relid) AS total, pg_indexes_size(relid) AS indexes
       FROM pg_stat_user_tables WHERE relname IN ('pilots', 'payloads')`,
    );
    return Object.fromEntries(r.rows.map((row) => [row.relname, Object.fromEntries(Object.entries(row).map(([k, v]) => [k, k === 'relname' ? v : Number(v)]))]));
  };
  try {
    // each backend sends its counts when idle, at most once a second (10 s at the latest)
    let last = await read();
    for (let i = 0; i < 30; i++) {
      await sleep(1000);
      const now = await read();
      if (JSON.stringify(now) === JSON.stringify(last)) return now;
      last = now;
    }
    return last;
  } finally {
    await client.end();
  }
}

async function grow(name, db, bundle) {
  const tok = tokens();
  const url = cluster.createDatabase(db);
  const server = await startServer(url, tok, ['--heartbeat-interval', '60', '--match-wait-max', '0', '--config', limits], bundle);
  const net = connect(server.url, inFlight);
  console.error(`  ${name}: registering ${pilotCount} pilots`);
  const pilots = new Array(pilotCount);
  await each(pilotCount, inFlight, async (i) => {
    pilots[i] = await SimPilot.register(net, tok.pilot, `sim-${i}`);
  });
  await each(pilotCount, inFlight, (i) => pilots[i].beat());
  const start = await tables(url);
  let claimer = 0;
  for (let r = 0; r < rounds; r++) {
    if ((r + 1) % 10 === 0) console.error(`  ${name}: round ${r + 1} of ${rounds}`);
    await each(pilotCount, inFlight, (i) => pilots[i].beat());
    await net.post('/v1/payloads/batch', tok.admin, { payloads: Array.from({ length: churn }, (_, i) => ({ command: ['true'], group: `g${i % 4}` })) });
    // one claim at a time: claims running together skip the rows each other locked (SKIP LOCKED) and may hand out nothing
    for (let k = 0; k < churn; k++) {
      const p = pilots[claimer++ % pilotCount];
      const reply = await p.match();
      if (!reply.payload) throw new Error(`pilot ${p.id} was handed no payload with ${churn - k} queued`);
      await p.start(reply.payload);
      await p.end(reply.payload.id);
    }
  }
  const end = await tables(url);
  await net.close();
  await server.stop();
  const beats = pilotCount * rounds;
  const d = (t, k) => end[t][k] - start[t][k];
  const label = name;
  return [
    { name: `${label}: pilot-row updates that were HOT`, value: (d('pilots', 'n_tup_hot_upd') / d('pilots', 'n_tup_upd')) * 100, unit: '%', compare: `${d('pilots', 'n_tup_upd')} updates over ${beats} heartbeats and ${rounds * churn} payload runs` },
    { name: `${label}: pilots, dead tuples at the end`, value: end.pilots.n_dead_tup, unit: '', compare: `${end.pilots.n_live_tup} live; autovacuum ran ${d('pilots', 'autovacuum_count')} times` },
    { name: `${label}: pilots, table and indexes growth per 1,000 heartbeats`, value: (d('pilots', 'total') / beats) * 1000 / 1024, unit: 'KiB', compare: `${(start.pilots.total / 1e6).toFixed(2)} MB → ${(end.pilots.total / 1e6).toFixed(2)} MB` },
    { name: `${label}: pilots' indexes growth per 1,000 heartbeats`, value: (d('pilots', 'indexes') / beats) * 1000 / 1024, unit: 'KiB', compare: `${(start.pilots.indexes / 1e6).toFixed(2)} MB → ${(end.pilots.indexes / 1e6).toFixed(2)} MB` },
    { name: `${label}: payloads, dead tuples at the end`, value: end.payloads.n_dead_tup, unit: '', compare: `${end.payloads.n_live_tup} live; HOT ${d('payloads', 'n_tup_hot_upd')} of ${d('payloads', 'n_tup_upd')} updates` },
    { name: `${label}: payloads, growth per payload run`, value: d('payloads', 'total') / (rounds * churn), unit: 'bytes', compare: `${(end.payloads.total / 1e6).toFixed(2)} MB at the end` },
  ];
}

const figures = [...(await grow(`before (${base.slice(0, 7)})`, 'growth_before', before.bundle)), ...(await grow('after', 'growth_after', SERVER))];
cluster.stop();
before.cleanup();
tmp.cleanup();
record('pg-growth', figures, { pilots: pilotCount, rounds, churn, base });
