#!/usr/bin/env node
// The relay's cost (docs/hpc.md), paired with the direct path in the same run:
//
// - dispatch: submit → payload start for an idle agent that reaches the server
//   directly, through `vmpilot relay --listen`, and through a mailbox carried
//   by `vmpilot relay --spool` (the agent's and the relay's default poll
//   intervals); the three take turns in rounds (BENCH_RELAY_ROUNDS, default 4)
//   of BENCH_RELAY_PAYLOADS payloads each (default 25), one agent at a time,
//   so the machine's load falls on all three alike; in mailbox mode also
//   BENCH_RELAY_IDLE payloads per round (default 2) submitted after the agent
//   has waited 8 s in its held match (the agent then looks for its reply
//   less often: a tenth of the wait, at most every second);
// - heartbeats/s: simulated pilots (bench/sim-pilots.mjs; BENCH_RELAY_PILOTS,
//   default 1000, registered through the relay) beat closed-loop with 64 in
//   flight over 64 connections, in windows of BENCH_RELAY_SEC seconds
//   (default 8) that alternate direct and through the relay (which reaches the
//   server over its default 16 connections), twice each, after a warm-up
//   window each way that is not counted; the relay's CPU over its windows is
//   read from /proc.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { each, connect, SimPilot } from './sim-pilots.mjs';
import { admin, build, percentile, procStats, record, startAgent, startRelay, startServer, tempDir, tokens, waitFor } from './lib.mjs';

build();
const rounds = Number(process.env.BENCH_RELAY_ROUNDS ?? 4);
const perBlock = Number(process.env.BENCH_RELAY_PAYLOADS ?? 25);
const pilotCount = Number(process.env.BENCH_RELAY_PILOTS ?? 1000);
const seconds = Number(process.env.BENCH_RELAY_SEC ?? 8);
const inFlight = 64;
const idlePerRound = Number(process.env.BENCH_RELAY_IDLE ?? 2);
const IDLE_MS = 8_000;

const tmp = tempDir();
const tok = tokens();
const server = await startServer(path.join(tmp.dir, 'server.db'), tok, ['--heartbeat-interval', '60']);
const api = admin(server.url, tok.admin);
const spool = path.join(tmp.dir, 'spool');
const relay = await startRelay(['--listen', '127.0.0.1:0', '--spool', spool, '--server', server.url, '--cache-dir', path.join(tmp.dir, 'relay-cache'), '--log-level', 'warn']);

// -- dispatch, the three ways in turn
const modes = {
  direct: () => server.url,
  relay: () => relay.url,
  mailbox: (n) => `file://${spool}/bench-${n}`,
};
const latencies = { direct: [], relay: [], mailbox: [], mailboxIdle: [] };
let agentNo = 0;
for (let round = 0; round < rounds; round++) {
  for (const [mode, url] of Object.entries(modes)) {
    const n = agentNo++;
    const agent = startAgent(url(n), tok, { stateDir: path.join(tmp.dir, `agent-${n}`), cores: 4, extra: ['--isolation', 'none'] });
    await agent.registered;
    const idle = mode === 'mailbox' ? idlePerRound : 0;
    for (let i = 0; i < perBlock + idle; i++) {
      const mark = path.join(tmp.dir, `start-${n}-${i}`);
      // let the agent settle into its open match request before the next submit (the last
      // ones of a mailbox block: let it wait in that match for a while)
      await new Promise((r) => setTimeout(r, i < perBlock ? 20 : IDLE_MS));
      const submittedAt = Date.now();
      const { id } = await api('POST', '/v1/payloads', { command: ['/bin/sh', '-c', `date +%s%N > ${mark}`], group: 'bench' });
      await waitFor(`payload ${id} to end`, async () => ['done', 'failed'].includes((await api('GET', `/v1/payloads/${id}`)).state), 60_000, 2);
      latencies[i < perBlock ? mode : 'mailboxIdle'].push(Number(BigInt(readFileSync(mark, 'utf8').trim()) / 1000n) / 1000 - submittedAt);
    }
    agent.child.kill('SIGTERM');
    await agent.exited;
  }
  console.log(`round ${round + 1}/${rounds}: p50 direct ${percentile(latencies.direct, 50).toFixed(1)} ms, relay ${percentile(latencies.relay, 50).toFixed(1)} ms, mailbox ${percentile(latencies.mailbox, 50).toFixed(1)} ms`);
}

// -- heartbeats/s, direct and through the relay in turn
const viaRelay = connect(relay.url, inFlight);
const direct = connect(server.url, inFlight);
const pilots = [];
await each(pilotCount, inFlight, async (i) => void pilots.push(await SimPilot.register(viaRelay, tok.pilot, `cn${String(i).padStart(5, '0')}`)));
const beats = { direct: [], relay: [], warmup: [] };
const relayCpu = { sec: 0, wall: 0 };
// a window each way first, not counted: connections opened, code compiled
for (let w = -2; w < 4; w++) {
  const mode = w < 0 ? 'warmup' : w % 2 === 0 ? 'direct' : 'relay';
  const through = w === -1 || mode === 'relay' ? 'relay' : 'direct';
  const net = through === 'direct' ? direct : viaRelay;
  const cpu0 = procStats(relay.child.pid).cpuSec;
  const t0 = performance.now();
  const until = t0 + seconds * 1000;
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < until) {
        const p = pilots[next++ % pilots.length];
        const s = performance.now();
        const reply = await net.post(`/v1/pilots/${p.id}/heartbeat`, p.credential, p.heartbeatBody());
        if (reply.credential) p.credential = reply.credential;
        beats[mode].push(performance.now() - s);
      }
    }),
  );
  if (mode === 'relay') {
    relayCpu.sec += procStats(relay.child.pid).cpuSec - cpu0;
    relayCpu.wall += (performance.now() - t0) / 1000;
  }
  console.log(w < 0 ? `heartbeat warm-up window (${through})` : `heartbeat window ${w + 1}/4 (${mode}): ${beats[mode].length} so far`);
}
const window = seconds * 2;
await viaRelay.close();
await direct.close();
relay.child.kill('SIGTERM');
await relay.exited;
await server.stop();
tmp.cleanup();

const p = (mode, q) => percentile(latencies[mode], q);
record(
  'relay',
  [
    { name: 'submit → payload start, direct (p50)', value: p('direct', 50), unit: 'ms' },
    { name: 'submit → payload start, through the relay (p50)', value: p('relay', 50), unit: 'ms', compare: `direct ${p('direct', 50).toFixed(1)} ms in the same run` },
    { name: 'relay overhead on dispatch (p50)', value: p('relay', 50) - p('direct', 50), unit: 'ms', compare: 'relay p50 − direct p50' },
    { name: 'submit → payload start, through the relay (p99)', value: p('relay', 99), unit: 'ms', goal: { op: '<=', value: 100 }, compare: `direct ${p('direct', 99).toFixed(1)} ms; the dispatch goal` },
    { name: 'submit → payload start, mailbox mode (p50)', value: p('mailbox', 50), unit: 'ms', compare: 'agent looks for its reply every 100 ms at first; the relay holds the match at the server' },
    { name: 'submit → payload start, mailbox mode (p99)', value: p('mailbox', 99), unit: 'ms', compare: `direct ${p('direct', 99).toFixed(1)} ms` },
    { name: 'submit → payload start, mailbox mode after 8 s idle (median)', value: p('mailboxIdle', 50), unit: 'ms', compare: `${latencies.mailboxIdle.length} payloads; the agent then looks every 800 ms (a tenth of its wait)` },
    { name: 'submit → payload start, mailbox mode after 8 s idle (max)', value: Math.max(...latencies.mailboxIdle), unit: 'ms', compare: 'bound: the relay’s 200 ms look + the agent’s pause + the start' },
    { name: 'heartbeats/s, direct', value: beats.direct.length / window, unit: '/s', compare: `p99 ${percentile(beats.direct, 99).toFixed(1)} ms; ${inFlight} in flight, ${pilotCount} pilots` },
    { name: 'heartbeats/s, through one relay', value: beats.relay.length / window, unit: '/s', compare: `p99 ${percentile(beats.relay, 99).toFixed(1)} ms; 1,000 nodes at the default 60 s interval need 17/s` },
    { name: 'relay CPU while carrying them', value: (100 * relayCpu.sec) / relayCpu.wall, unit: '%', compare: 'of one core' },
  ],
  { rounds, payloadsPerRound: perBlock, idlePerRound, pilots: pilotCount, windowSec: seconds },
);
