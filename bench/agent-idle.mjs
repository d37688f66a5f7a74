#!/usr/bin/env node
// What an idle agent costs its node: RSS and CPU over a window (default 60 s)
// at the default 60 s heartbeat, with no payload and with 16 running ones
// (each `sleep`, so the agent's own cost is what is measured).
import path from 'node:path';
import { admin, build, procStats, record, sleep, startAgent, startServer, tempDir, tokens, waitFor } from './lib.mjs';

build();
const windowSec = Number(process.env.BENCH_IDLE_SEC ?? 60);
const tmp = tempDir();
const tok = tokens();
const server = await startServer(path.join(tmp.dir, 'server.db'), tok, ['--heartbeat-interval', '60']);
const api = admin(server.url, tok.admin);

async function measure(payloads) {
  const before = await api('GET', '/v1/payloads');
  for (let i = 0; i < payloads; i++) await api('POST', '/v1/payloads', { command: ['sleep', String(windowSec + 30)], group: 'idle' });
  const agent = startAgent(server.url, tok, { stateDir: path.join(tmp.dir, `agent${payloads}`), cores: 16 });
  await agent.registered;
  await waitFor(`${payloads} payloads running`, async () => (await api('GET', '/v1/payloads?state=running')).length === payloads);
  await sleep(2000); // let start-up work settle
  const start = procStats(agent.child.pid);
  let peakRss = start.rssMb;
  const t0 = performance.now();
  while (performance.now() - t0 < windowSec * 1000) {
    await sleep(1000);
    peakRss = Math.max(peakRss, procStats(agent.child.pid).rssMb);
  }
  const end = procStats(agent.child.pid);
  const elapsed = (performance.now() - t0) / 1000;
  agent.child.kill('SIGKILL');
  await agent.exited;
  void before;
  return { rss: peakRss, cpuPct: ((end.cpuSec - start.cpuSec) / elapsed) * 100 };
}

const idle = await measure(0);
const busy = await measure(16);
await server.stop();
tmp.cleanup();

record(
  'agent-idle',
  [
    { name: 'idle agent RSS, 0 payloads (peak)', value: idle.rss, unit: 'MB', goal: { op: '<=', value: 60 }, compare: 'bare node ~41 MB' },
    { name: 'idle agent CPU, 0 payloads', value: idle.cpuPct, unit: '%', goal: { op: '<=', value: 0.5 }, compare: 'VMDIRAC monitor: a Python DIRAC agent process' },
    { name: 'agent RSS, 16 payloads (peak)', value: busy.rss, unit: 'MB', goal: { op: '<=', value: 60 } },
    { name: 'agent CPU, 16 payloads', value: busy.cpuPct, unit: '%', goal: { op: '<=', value: 0.5 } },
  ],
  { windowSec, heartbeatSec: 60 },
);
