#!/usr/bin/env node
// How exactly the agent halts: time from an admin's halt instruction to the
// halt action (the agent's exit, halt action `exit`) for an idle agent, and
// for a draining agent with a running payload (SIGTERM, the payload's end,
// the last reports; heartbeats a day apart, so only the open match carries
// the halt); and how far after its idle timeout an idle agent halts (goal:
// within 1 s). test/integration/monitor/halt.test.ts checks that each
// happens; the figures are measured here.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { admin, build, mean, percentile, record, startAgent, startServer, tempDir, tokens, waitFor } from './lib.mjs';

build();
const runs = Number(process.env.BENCH_RUNS ?? 20);
const tmp = tempDir();
const tok = tokens();
const server = await startServer(path.join(tmp.dir, 'server.db'), tok);
const api = admin(server.url, tok.admin);
// the server lists pilots newest first: the newest id, and the pilot registered after it
const newestId = async (call) => (await call('GET', '/v1/pilots?limit=1'))[0]?.id ?? 0;
const newerThan = async (call, id) => (await call('GET', '/v1/pilots?limit=1')).find((p) => p.id > id);

// -- halt reaction
const reactions = [];
for (let i = 0; i < runs; i++) {
  const known = await newestId(api);
  const agent = startAgent(server.url, tok, { stateDir: path.join(tmp.dir, `h${i}`), cores: 2 });
  await agent.registered;
  const pilot = await waitFor('the pilot', () => newerThan(api, known));
  await new Promise((r) => setTimeout(r, 100)); // it is in its match request now
  const t0 = performance.now();
  await api('POST', `/v1/pilots/${pilot.id}/instructions`, { type: 'halt' });
  const exit = await agent.exited;
  reactions.push(exit.at - t0);
}

// -- halt of a draining agent with a running payload, through its open match
const graceSec = 1;
const busy = [];
const busyServer = await startServer(path.join(tmp.dir, 'busy.db'), tok, ['--heartbeat-interval', '86400']);
const busyApi = admin(busyServer.url, tok.admin);
for (let i = 0; i < Math.max(3, Math.round(runs / 4)); i++) {
  const known = await newestId(busyApi);
  // not queued again when the halt stops it (an evicted payload is, by default): the next round's payload would wait behind it
  const { id } = await busyApi('POST', '/v1/payloads', { command: ['sleep', '600'], group: 'bench', requeue: false });
  const agent = startAgent(busyServer.url, tok, { stateDir: path.join(tmp.dir, `b${i}`), cores: 1, extra: ['--grace', String(graceSec)] });
  await waitFor('the payload to run', async () => (await busyApi('GET', `/v1/payloads/${id}`)).state === 'running');
  const pilot = await newerThan(busyApi, known);
  await busyApi('POST', `/v1/pilots/${pilot.id}/instructions`, { type: 'drain' });
  await waitFor('the pilot to drain', async () => (await busyApi('GET', `/v1/pilots/${pilot.id}`)).state === 'draining');
  const t0 = performance.now();
  await busyApi('POST', `/v1/pilots/${pilot.id}/instructions`, { type: 'halt' });
  const exit = await agent.exited;
  busy.push(exit.at - t0);
}
await busyServer.stop();

// -- idle-timeout accuracy: one short payload, then idle for T seconds
const idleSec = Number(process.env.BENCH_IDLE_TIMEOUT ?? 2);
const errors = [];
for (let i = 0; i < Math.max(3, Math.round(runs / 4)); i++) {
  const mark = path.join(tmp.dir, `end-${i}`);
  await api('POST', '/v1/payloads', { command: ['/bin/sh', '-c', `date +%s%N > ${mark}`], group: 'bench' });
  const agent = startAgent(server.url, tok, { stateDir: path.join(tmp.dir, `i${i}`), cores: 1, idleTimeoutSec: idleSec });
  const exit = await agent.exited;
  const endedMs = Number(BigInt(readFileSync(mark, 'utf8').trim()) / 1_000_000n);
  errors.push(exit.wall - endedMs - idleSec * 1000);
}
await server.stop();
tmp.cleanup();

record(
  'halt',
  [
    { name: 'halt instruction → halt action (p50)', value: percentile(reactions, 50), unit: 'ms' },
    { name: 'halt instruction → halt action (p99)', value: percentile(reactions, 99), unit: 'ms', goal: { op: '<=', value: 1000 }, compare: 'VMDIRAC: next monitor cycle, minutes' },
    { name: 'halt instruction → halt action, draining with a running payload (p50)', value: percentile(busy, 50), unit: 'ms' },
    {
      name: 'halt instruction → halt action, draining with a running payload (worst)',
      value: Math.max(...busy),
      unit: 'ms',
      goal: { op: '<=', value: graceSec * 1000 + 1000 },
      compare: `grace ${graceSec} s + 1 s; VMDIRAC: next monitor cycle, minutes`,
    },
    { name: `idle halt after T=${idleSec} s: mean lateness`, value: mean(errors), unit: 'ms' },
    { name: `idle halt after T=${idleSec} s: worst lateness`, value: Math.max(...errors), unit: 'ms', goal: { op: '<=', value: 1000 }, compare: 'VMDIRAC: load-average windows' },
  ],
  { runs, idleTimeoutSec: idleSec, graceSec },
);
