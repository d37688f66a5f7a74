#!/usr/bin/env node
// Server load: heartbeat and match throughput and latency with many simulated
// pilots (default 10,000 and 100,000), all in this one process on loopback,
// against the real server on its SQLite store; what a claim costs with 10 and
// with 100,000 payloads queued; and what the database file really grows by.
//
// The pilots are honest protocol clients (bench/sim-pilots.mjs): they report
// only what they were given, start and end every payload they claim, and
// acknowledge every instruction. Every claim round must hand out a new
// payload, or the benchmark stops with an error: it cannot print a claim
// figure for a request that took the early "nothing for you" return.
//
// Heartbeats are measured two ways: closed loop (C requests in flight, as fast
// as the server answers) and open loop at a fixed rate (default 3,000/s, the
// load of 180,000 pilots at a 60 s interval), where latency counts from when a
// request was due, so a server that falls behind cannot hide it.
//
// First (BENCH_ONLY=heartbeats: this part alone; BENCH_ONLY=load: the rest
// alone), heartbeats compared in the same run (heartbeats-compared.mjs): a bare
// fastify route, SQLite before (BENCH_BASE) and after, PostgreSQL with one replica.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { compareHeartbeats } from './heartbeats-compared.mjs';
import { RESULTS, ROOT, build, buildBase, percentile, record, startServer, tempDir, tokens } from './lib.mjs';
import { closedLoop, openLoop } from './loops.mjs';
import { SimPilot, connect, each } from './sim-pilots.mjs';

build();
const sizes = (process.env.BENCH_PILOTS ?? '10000,100000').split(',').map(Number);
const seconds = Number(process.env.BENCH_SECONDS ?? 15);
const rate = Number(process.env.BENCH_RATE ?? 3000);
const inFlight = Number(process.env.BENCH_CONCURRENCY ?? 64);
/** Claims in flight at once: few, so that "10 queued" stays near 10 while each claimer tops the queue up. */
const claimers = Number(process.env.BENCH_CLAIMERS ?? 8);
/** Claim rounds (submit one, claim it, start it, end it) in each claim phase. */
const claimRounds = Number(process.env.BENCH_CLAIMS ?? 1000);
const deepQueue = Number(process.env.BENCH_DEEP_QUEUE ?? 100_000);
const shallowQueue = 10;
/** Heartbeat rounds (every pilot once) after the first, over which the database is measured. */
const dbRounds = Number(process.env.BENCH_DB_ROUNDS ?? 2);
/** Pilots that run two payloads each for the busy-heartbeat figure. */
const busyPilots = Number(process.env.BENCH_BUSY_PILOTS ?? 1000);
/** `heartbeats`: only the comparison (heartbeats-compared.mjs); `load`: only the rest. */
const only = process.env.BENCH_ONLY ?? '';
/** The comparison: pilots on each server, seconds per loop, rounds. */
const hbPilots = Number(process.env.BENCH_HB_PILOTS ?? 10_000);
const hbSeconds = Number(process.env.BENCH_HB_SECONDS ?? 10);
const hbRounds = Number(process.env.BENCH_HB_ROUNDS ?? 2);

/** The database after a full checkpoint (WAL truncated to 0): its size in bytes. */
function checkpointed(file) {
  const db = new Database(file);
  try {
    const [r] = db.pragma('wal_checkpoint(TRUNCATE)');
    if (r.busy !== 0 || r.log !== r.checkpointed) throw new Error(`checkpoint of ${file} incomplete: ${JSON.stringify(r)}`);
  } finally {
    db.close();
  }
  return statSync(file).size;
}

/** Sample the size of the WAL file while `fn` runs; resolves with fn's result and the largest size seen. */
async function watchingWal(file, fn) {
  let peak = 0;
  const look = () => {
    try {
      peak = Math.max(peak, statSync(`${file}-wal`).size);
    } catch {
      // no WAL file at this instant
    }
  };
  const timer = setInterval(look, 200);
  try {
    const result = await fn();
    look();
    return { result, walPeak: peak };
  } finally {
    clearInterval(timer);
  }
}

async function run(pilotCount) {
  const tmp = tempDir();
  const tok = tokens();
  const db = path.join(tmp.dir, 'server.db');
  // registering every simulated pilot from one address is set-up, not the load: no registration rate limit for it
  const limits = path.join(tmp.dir, 'limits.yaml');
  writeFileSync(limits, 'limits: { registerBurstPerToken: 0, registerBurstPerAddress: 0 }\n');
  const server = await startServer(db, tok, ['--heartbeat-interval', '60', '--match-wait-max', '0', '--config', limits]);
  const net = connect(server.url, inFlight);
  const label = pilotCount >= 1000 ? `${pilotCount / 1000}k` : String(pilotCount);
  const figures = [];
  const add = (name, value, unit, extra = {}) => figures.push({ name: `${label} pilots: ${name}`, value, unit, ...extra });
  const say = (what) => console.error(`  ${label}: ${what}`);

  // -- the queue, as this benchmark knows it: every payload it submitted and not yet claimed or cancelled
  const queued = new Set();
  const handedOut = new Set();
  const submit = async (n, group = (i) => `g${i % 4}`) => {
    for (let done = 0; done < n; ) {
      const count = Math.min(10_000, n - done);
      const { ids } = await net.post('/v1/payloads/batch', tok.admin, { payloads: Array.from({ length: count }, (_, i) => ({ command: ['true'], group: group(done + i) })) });
      for (const id of ids) queued.add(id);
      done += count;
    }
  };
  const cancelDownTo = async (keep) => {
    const surplus = [...queued].slice(0, Math.max(0, queued.size - keep));
    await each(surplus.length, inFlight, async (i) => {
      const reply = await net.post(`/v1/payloads/${surplus[i]}/kill`, tok.admin, { reason: 'benchmark: queue shortened' });
      if (reply.instruction !== null) throw new Error(`payload ${surplus[i]} was not queued: ${JSON.stringify(reply)}`);
      queued.delete(surplus[i]);
    });
  };
  /** A claim: `p` asks, and must be handed a payload it never had, from the queue. */
  const claim = async (p) => {
    const reply = await p.match();
    const got = reply.payload;
    if (!got) throw new Error(`pilot ${p.id} was handed no payload with ${queued.size} queued (instructions: ${JSON.stringify(reply.instructions)})`);
    if (handedOut.has(got.id) || !queued.delete(got.id)) throw new Error(`pilot ${p.id} was handed payload ${got.id}, which is not a queued one`);
    handedOut.add(got.id);
    return got;
  };

  // -- register every pilot
  say('registering');
  const pilots = new Array(pilotCount);
  const regStart = performance.now();
  await each(pilotCount, inFlight, async (i) => {
    pilots[i] = await SimPilot.register(net, tok.pilot, `sim-${i}`);
  });
  add('register rate', pilotCount / ((performance.now() - regStart) / 1000), '/s');

  // -- heartbeats from idle pilots (no payload yet: they report none), and what they do to the database
  const beat = (i) => pilots[i % pilotCount].beat();
  // the first heartbeat of each pilot fills its row once: not growth
  await each(pilotCount, inFlight, beat);
  const beforeBeats = checkpointed(db);
  say(`${dbRounds} rounds of heartbeats, then closed and open loop`);
  const { result: beatWindow, walPeak } = await watchingWal(db, async () => {
    await each(pilotCount * dbRounds, inFlight, beat);
    const closed = await closedLoop(performance.now() + seconds * 1000, beat, inFlight);
    const open = await openLoop(rate, seconds * 1000, beat);
    return { closed, open };
  });
  const { closed, open } = beatWindow;
  const beats = pilotCount * dbRounds + closed.length + open.latencies.length;
  const beatGrowth = checkpointed(db) - beforeBeats;
  add(`heartbeats, closed loop (${inFlight} in flight)`, closed.length / seconds, '/s', { goal: { op: '>=', value: 3000 } });
  add('heartbeat p99, closed loop', percentile(closed, 99), 'ms');
  add(`heartbeats, open loop at ${rate}/s`, open.achieved, '/s', { goal: { op: '>=', value: rate * 0.98 } });
  add('heartbeat p99, open loop', percentile(open.latencies, 99), 'ms', { goal: { op: '<=', value: 50 } });
  add('db file growth over the heartbeats', beatGrowth, 'bytes', {
    compare: `over ${beats} heartbeats after each pilot's first (${(beats / pilotCount).toFixed(1)} per pilot); WAL checkpointed (TRUNCATE) before and after`,
  });
  add('WAL file, largest seen during the heartbeats', walPeak / 1e6, 'MB', { compare: 'SQLite checkpoints every 1000 pages; journal_size_limit 64 MB' });

  // -- heartbeats from busy pilots: each runs two payloads it claimed, and lists them
  const busy = pilots.slice(0, Math.min(busyPilots, pilotCount));
  say(`${busy.length} pilots claim two payloads each`);
  await submit(busy.length * 2);
  await each(busy.length, inFlight, async (i) => {
    for (let k = 0; k < 2; k++) await busy[i].start(await claim(busy[i]));
  });
  const busyLat = await closedLoop(performance.now() + Math.min(seconds, 10) * 1000, (i) => busy[i % busy.length].beat(), inFlight);
  add(`heartbeats from pilots running 2 payloads (${busy.length} pilots)`, busyLat.length / Math.min(seconds, 10), '/s', { goal: { op: '>=', value: 3000 } });
  add('heartbeat p99, pilots running 2 payloads', percentile(busyLat, 99), 'ms');
  await each(busy.length, inFlight, async (i) => {
    for (const id of [...busy[i].held.keys()]) await busy[i].end(id);
  });

  // -- claims: each round tops the queue up by one, claims one, starts it and ends it
  let cursor = busy.length;
  const claimPhase = async (what) => {
    say(`claims, ${what}`);
    const lat = [];
    const depths = [];
    let left = claimRounds;
    const base = cursor;
    cursor += claimRounds + claimers;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: claimers }, async (_, w) => {
        // each claimer has its own pilots: a pilot never has two requests in flight
        for (let k = 0; left > 0; k++) {
          left--;
          const p = pilots[(base + w + k * claimers) % pilotCount];
          await submit(1);
          depths.push(queued.size);
          const t = performance.now();
          const got = await claim(p);
          lat.push(performance.now() - t);
          await p.start(got);
          await p.end(got.id);
        }
      }),
    );
    const rounds = lat.length;
    if (rounds !== claimRounds) throw new Error(`${rounds} claims made of ${claimRounds}`);
    const depth = `${Math.min(...depths)}-${Math.max(...depths)} queued`;
    add(`claim, ${what}: payloads handed out / requests`, rounds, `of ${rounds}`, { compare: depth });
    add(`claim, ${what}: match with claim p50`, percentile(lat, 50), 'ms');
    add(`claim, ${what}: match with claim p99`, percentile(lat, 99), 'ms', { goal: { op: '<=', value: 50 } });
    add(`claim, ${what}: rounds (submit, claim, start, end)`, rounds / ((performance.now() - t0) / 1000), '/s', { compare: `${claimers} claimers; ${handedOut.size} payloads handed out in this run so far` });
  };

  await submit(shallowQueue);
  const beforeClaims = checkpointed(db);
  await claimPhase(`${shallowQueue} queued`);
  const perPayload = (checkpointed(db) - beforeClaims) / claimRounds;
  add('db file growth per payload run (submit, claim, start, end)', perPayload, 'bytes', { compare: `over ${claimRounds} payloads, WAL checkpointed before and after` });

  say(`queueing ${deepQueue} payloads`);
  await submit(deepQueue - queued.size);
  await claimPhase(`${deepQueue / 1000}k queued`);
  say(`cancelling down to ${shallowQueue}`);
  await cancelDownTo(shallowQueue);
  await claimPhase(`${shallowQueue} queued again, after the deep queue`);

  // -- match on an empty queue: every answer must be "no payload"
  await cancelDownTo(0);
  const emptySec = Math.min(seconds, 5);
  const emptyLat = await closedLoop(performance.now() + emptySec * 1000, async (i) => {
    const reply = await pilots[i % pilotCount].match();
    if (reply.payload) throw new Error(`payload ${reply.payload.id} handed out from a queue this benchmark emptied`);
  }, inFlight);
  add('match, empty queue', emptyLat.length / emptySec, '/s');
  add('match, empty queue p99', percentile(emptyLat, 99), 'ms', { goal: { op: '<=', value: 50 } });

  const instructions = pilots.reduce((n, p) => n + p.instructions, 0);
  if (instructions > 0) say(`${instructions} instructions acknowledged`);
  await net.close();
  await server.stop();
  tmp.cleanup();
  return figures;
}

const figures = [];
if (only !== 'load') {
  const base = process.env.BENCH_BASE ?? execFileSync('git', ['merge-base', 'HEAD', 'main'], { cwd: ROOT, encoding: 'utf8' }).trim();
  const before = await buildBase(base);
  try {
    figures.push(...(await compareHeartbeats({ pilotCount: hbPilots, seconds: hbSeconds, rate, inFlight, rounds: hbRounds, base, baseBundle: before.bundle })));
  } finally {
    before.cleanup();
  }
}
if (only !== 'heartbeats') for (const n of sizes) figures.push(...(await run(n)));
for (const f of figures) f.part ??= 'load';
// one part run alone keeps the other part's figures of the last run
const kept = only && existsSync(RESULTS) ? (JSON.parse(readFileSync(RESULTS, 'utf8'))['server-load']?.figures ?? []).filter((f) => (f.part ?? 'load') !== (only === 'heartbeats' ? 'heartbeats compared' : 'load')) : [];
const ordered = [...figures, ...kept].sort((x, y) => (x.part === y.part ? 0 : x.part === 'heartbeats compared' ? -1 : 1));
record('server-load', ordered, { seconds, rate, inFlight, claimers, claimRounds, dbRounds, hbPilots, hbSeconds, hbRounds });
