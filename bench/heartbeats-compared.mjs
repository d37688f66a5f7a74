// Heartbeats compared, the part of bench/server-load.mjs that puts side by
// side, in the same run and with the same load generator (bench/loops.mjs,
// the same undici pool and the same heartbeat bodies of bench/sim-pilots.mjs):
//
// - a bare fastify route (bench/bare-server.mjs): JSON parsed, a reply, nothing else;
// - the heartbeat on SQLite of the base commit (before; BENCH_BASE, default
//   the merge base with main, built into a temporary directory) and of this
//   one (after);
// - the heartbeat on PostgreSQL with one replica (a real PostgreSQL 15 in a
//   temporary directory, as the tests start one).
//
// Each, in rounds that alternate them (BENCH_HB_ROUNDS, default 2; medians):
// closed loop (64 in flight), open loop at 3,000/s, and the open loop again
// while another process spins one core (`node -e 'for(;;){}'`, stopped by its
// PID). The server's CPU (and PostgreSQL's: the postmaster and its children)
// from /proc over the closed and open loops, per 1,000 heartbeats.
//
// Two replicas behind HAProxy are another target of the same shape
// ({ name, url, pids, cpuParts, stop }): add it to `targets` below.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT, SERVER, busyCore, cpuOf, percentile, startPostgres, startServer, tempDir, tokens } from './lib.mjs';
import { closedLoop, openLoop } from './loops.mjs';
import { SimPilot, connect, each } from './sim-pilots.mjs';

/** Start the bare fastify route; its URL and how to stop it. */
async function startBare() {
  const child = spawn(process.execPath, [path.join(ROOT, 'bench/bare-server.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /^bare fastify listening on (\S+)$/.exec(line);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`the bare fastify server exited with ${code}`)));
  });
  const exited = new Promise((r) => child.on('exit', r));
  return { url, pid: child.pid, stop: async () => (process.kill(child.pid, 'SIGTERM'), exited) };
}

/**
 * The figures of the comparison: `pilotCount` pilots on each server,
 * `seconds` per loop, `rate` for the open loops, `inFlight` connections.
 */
export async function compareHeartbeats({ pilotCount, seconds, rate, inFlight, rounds, base, baseBundle }) {
  const tmp = tempDir();
  const tok = tokens();
  const limits = path.join(tmp.dir, 'limits.yaml');
  writeFileSync(limits, 'limits: { registerBurstPerToken: 0, registerBurstPerAddress: 0 }\n');
  const args = ['--heartbeat-interval', '60', '--match-wait-max', '0'];
  const say = (what) => console.error(`  heartbeats compared: ${what}`);
  const pg = await startPostgres();

  /** A vmpilot server on `db` with `pilotCount` registered pilots, each of which sent its first heartbeat. */
  const vmpilot = async (name, db, bundle, cpuParts) => {
    const server = await startServer(db, tok, [...args, '--config', limits], bundle);
    const net = connect(server.url, inFlight);
    const pilots = new Array(pilotCount);
    say(`${name}: registering ${pilotCount} pilots`);
    await each(pilotCount, inFlight, async (i) => {
      pilots[i] = await SimPilot.register(net, tok.pilot, `sim-${i}`);
    });
    await each(pilotCount, inFlight, (i) => pilots[i].beat());
    return { name, net, pilots, cpuParts: cpuParts(server.child.pid), stop: async () => (await net.close(), await server.stop()) };
  };

  const bare = await startBare();
  const bareNet = connect(bare.url, inFlight);
  const targets = [
    // the same bodies to the same path; the reply has no instructions, so the simulated pilot only reads it
    { name: 'bare fastify', net: bareNet, pilots: Array.from({ length: pilotCount }, (_, i) => new SimPilot(bareNet, i + 1, 'bare', 8)), cpuParts: { server: () => cpuOf([bare.pid]) }, stop: async () => (await bareNet.close(), await bare.stop()) },
    await vmpilot(`SQLite, before (${base.slice(0, 7)})`, path.join(tmp.dir, 'before.db'), baseBundle, (pid) => ({ server: () => cpuOf([pid]) })),
    await vmpilot('SQLite, after', path.join(tmp.dir, 'after.db'), SERVER, (pid) => ({ server: () => cpuOf([pid]) })),
    await vmpilot('PostgreSQL, 1 replica', pg.createDatabase('bench_heartbeats'), SERVER, (pid) => ({ server: () => cpuOf([pid]), postgres: () => cpuOf(pg.pids()) })),
  ];

  const runs = new Map(targets.map((t) => [t.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const t of targets) {
      say(`round ${r + 1} of ${rounds}: ${t.name}`);
      const beat = (i) => t.pilots[i % pilotCount].beat();
      const cpu0 = Object.fromEntries(Object.entries(t.cpuParts).map(([k, f]) => [k, f()]));
      const closed = await closedLoop(performance.now() + seconds * 1000, beat, inFlight);
      const open = await openLoop(rate, seconds * 1000, beat);
      const beats = closed.length + open.latencies.length;
      const cpuPer1000 = Object.fromEntries(Object.entries(t.cpuParts).map(([k, f]) => [k, ((f() - cpu0[k]) / beats) * 1000]));
      const spinner = busyCore();
      let busy;
      try {
        busy = await openLoop(rate, seconds * 1000, beat);
      } finally {
        await spinner.stop();
      }
      runs.get(t.name).push({
        closedRate: closed.length / seconds,
        closedP99: percentile(closed, 99),
        openRate: open.achieved,
        openP99: percentile(open.latencies, 99),
        busyRate: busy.achieved,
        busyP99: percentile(busy.latencies, 99),
        ...Object.fromEntries(Object.entries(cpuPer1000).map(([k, v]) => [`cpu_${k}`, v])),
      });
    }
  }
  for (const t of targets) await t.stop();
  pg.stop();
  tmp.cleanup();

  const label = pilotCount >= 1000 ? `${pilotCount / 1000}k` : String(pilotCount);
  const med = (name, k) => percentile(runs.get(name).map((x) => x[k]), 50);
  const figures = [];
  const add = (name, value, unit, extra = {}) => figures.push({ part: 'heartbeats compared', name: `${label} pilots: ${name}`, value, unit, ...extra });
  const bareRate = med('bare fastify', 'closedRate');
  for (const t of targets) {
    const sqliteAfter = t.name === 'SQLite, after';
    add(`${t.name}: closed loop (${inFlight} in flight)`, med(t.name, 'closedRate'), '/s', t.name === 'bare fastify' ? { compare: 'JSON parse and reply only: the ceiling' } : {});
    add(`${t.name}: p99, closed loop`, med(t.name, 'closedP99'), 'ms');
    add(`${t.name}: open loop at ${rate}/s`, med(t.name, 'openRate'), '/s');
    add(`${t.name}: p99, open loop at ${rate}/s`, med(t.name, 'openP99'), 'ms', sqliteAfter ? { goal: { op: '<=', value: 50 } } : {});
    add(`${t.name}: p99, open loop at ${rate}/s, another process spinning a core`, med(t.name, 'busyP99'), 'ms', sqliteAfter ? { goal: { op: '<=', value: 50 } } : {});
    add(`${t.name}: achieved, open loop with the busy core`, med(t.name, 'busyRate'), '/s');
    if (t.name !== 'bare fastify') {
      add(`${t.name}: share of the bare route's closed-loop rate`, (med(t.name, 'closedRate') / bareRate) * 100, '%', sqliteAfter ? { goal: { op: '>=', value: 60 } } : {});
      // on a 2-core machine the load generator takes a core too, and can be the ceiling of both: the server's CPU per heartbeat says what it could serve with a core of its own
      add(`${t.name}: share of the bare route's rate by CPU (bare CPU per heartbeat / this server's)`, (med('bare fastify', 'cpu_server') / med(t.name, 'cpu_server')) * 100, '%', {
        compare: 'the rate each would reach with one core of its own',
      });
    }
    for (const k of Object.keys(t.cpuParts)) {
      add(`${t.name}: CPU of ${k === 'server' ? 'the server process' : "PostgreSQL's processes"} per 1,000 heartbeats`, med(t.name, `cpu_${k}`), 's', { compare: 'utime + stime from /proc over the closed and open loops' });
    }
  }
  add('rounds (alternating the servers; each figure their median)', rounds, '');
  return figures;
}
