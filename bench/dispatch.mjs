#!/usr/bin/env node
// Dispatch latency: from submit to the payload's process start, with an idle
// agent waiting in its match request (p50, p99 over N payloads, default 200).
// Each payload writes the wall-clock time at which it started; the submitter
// notes the time just before it submits.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { admin, build, percentile, record, startAgent, startServer, tempDir, tokens, waitFor } from './lib.mjs';

build();
const n = Number(process.env.BENCH_PAYLOADS ?? 200);
const tmp = tempDir();
const tok = tokens();
const server = await startServer(path.join(tmp.dir, 'server.db'), tok);
const api = admin(server.url, tok.admin);
const agent = startAgent(server.url, tok, { stateDir: path.join(tmp.dir, 'agent'), cores: 4 });
await agent.registered;

const latencies = [];
for (let i = 0; i < n; i++) {
  const mark = path.join(tmp.dir, `start-${i}`);
  // let the agent settle into its open match request before the next submit
  await new Promise((r) => setTimeout(r, 20));
  const submittedAt = Date.now();
  const { id } = await api('POST', '/v1/payloads', { command: ['/bin/sh', '-c', `date +%s%N > ${mark}`], group: 'bench' });
  await waitFor(`payload ${id} to end`, async () => ['done', 'failed'].includes((await api('GET', `/v1/payloads/${id}`)).state), 30_000, 2);
  const startedNs = BigInt(readFileSync(mark, 'utf8').trim());
  latencies.push(Number(startedNs / 1000n) / 1000 - submittedAt);
}
agent.child.kill('SIGKILL');
await agent.exited;
await server.stop();
tmp.cleanup();

record(
  'dispatch',
  [
    { name: 'submit → payload start, idle agent (p50)', value: percentile(latencies, 50), unit: 'ms', compare: 'DIRAC JobAgent: next polling cycle, up to minutes' },
    { name: 'submit → payload start, idle agent (p99)', value: percentile(latencies, 99), unit: 'ms', goal: { op: '<=', value: 100 } },
  ],
  { payloads: n },
);
