#!/usr/bin/env node
// What an idle agent costs its node: RSS and CPU over a window (default 60 s)
// at the default 60 s heartbeat, with no payload and with 16 running ones
// (each `sleep`, so the agent's own cost is what is measured), over http and
// over https (TLS loads node's crypto: what a real deployment pays), beside a
// bare idle node process measured in the same run.
//
// The window starts once the agent is quiet: BENCH_SETTLE_SEC (default 10)
// after its last payload started. Start-up work grows the heap, and V8's
// memory reducer gives it back about 8 s after the process goes quiet; the
// high-water mark since start (VmHWM) is reported beside it, with no goal.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { admin, build, mean, procStats, record, sleep, startAgent, startServer, tempDir, tokens, waitFor } from './lib.mjs';

build();
const windowSec = Number(process.env.BENCH_IDLE_SEC ?? 60);
const settleSec = Number(process.env.BENCH_SETTLE_SEC ?? 10);
const tmp = tempDir();
const tok = tokens();

/** A CA and a certificate for 127.0.0.1 (openssl), for the https server. */
function certificates() {
  const f = (name) => path.join(tmp.dir, name);
  const ssl = (...args) => execFileSync('openssl', args, { stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=vmpilot bench CA');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1');
  writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  ssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', '2', '-extfile', f('ext.cnf'));
  return { ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key') };
}

const hwmMb = (pid) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

/** Sample RSS every second over the window; peak, mean and CPU share. */
async function watch(pid) {
  const start = procStats(pid);
  const rss = [start.rssMb];
  const t0 = performance.now();
  while (performance.now() - t0 < windowSec * 1000) {
    await sleep(1000);
    rss.push(procStats(pid).rssMb);
  }
  const end = procStats(pid);
  const elapsed = (performance.now() - t0) / 1000;
  return { peak: Math.max(...rss), mean: mean(rss), cpuPct: ((end.cpuSec - start.cpuSec) / elapsed) * 100 };
}

async function measure(server, api, label, payloads, extra = []) {
  // requeue: false: when the agent is stopped they end, and the next agent on this server starts idle
  for (let i = 0; i < payloads; i++) await api('POST', '/v1/payloads', { command: ['sleep', String(windowSec + settleSec + 60)], group: 'idle', requeue: false });
  const agent = startAgent(server.url, tok, { stateDir: path.join(tmp.dir, `agent-${label}-${payloads}`), cores: 16, extra });
  await agent.registered;
  await waitFor(`${payloads} payloads running`, async () => (await api('GET', '/v1/payloads?state=running')).length === payloads);
  await sleep(settleSec * 1000);
  const r = await watch(agent.child.pid);
  r.hwm = hwmMb(agent.child.pid);
  agent.child.kill('SIGKILL'); // its sleeps outlive it (by design) and end on their own
  await agent.exited;
  return r;
}

// bare node, idle (a timer keeps it alive), for comparison
const bareChild = spawn(process.execPath, ['-e', 'setInterval(() => {}, 60000)'], { stdio: 'ignore' });
await sleep(2000);
const bare = procStats(bareChild.pid).rssMb;
bareChild.kill('SIGKILL');

const plain = await startServer(path.join(tmp.dir, 'plain.db'), tok, ['--heartbeat-interval', '60']);
const plainApi = admin(plain.url, tok.admin);
const idle = await measure(plain, plainApi, 'http', 0);
const busy = await measure(plain, plainApi, 'http', 16);
await plain.stop();

const certs = certificates();
const secure = await startServer(path.join(tmp.dir, 'tls.db'), tok, ['--heartbeat-interval', '60', '--tls-cert', certs.cert, '--tls-key', certs.key]);
const secureApi = admin(secure.url, tok.admin, certs.ca);
const tlsIdle = await measure(secure, secureApi, 'https', 0, ['--ca-file', certs.ca]);
const tlsBusy = await measure(secure, secureApi, 'https', 16, ['--ca-file', certs.ca]);
await secure.stop();
tmp.cleanup();

const rssGoal = { op: '<=', value: 60 };
const cpuGoal = { op: '<=', value: 0.5 };
const rows = (label, r, n) => [
  { name: `agent RSS, ${n} payloads, ${label} (peak)`, value: r.peak, unit: 'MB', goal: rssGoal, compare: `bare node ${bare.toFixed(0)} MB; mean ${r.mean.toFixed(1)} MB` },
  { name: `agent CPU, ${n} payloads, ${label}`, value: r.cpuPct, unit: '%', goal: cpuGoal, compare: 'VMDIRAC monitor: a Python DIRAC agent process' },
  { name: `agent RSS high-water mark since start, ${n} payloads, ${label}`, value: r.hwm, unit: 'MB', compare: 'start-up included' },
];
record(
  'agent-idle',
  [
    { name: 'bare node, idle', value: bare, unit: 'MB' },
    ...rows('http', idle, 0),
    ...rows('http', busy, 16),
    ...rows('https', tlsIdle, 0),
    ...rows('https', tlsBusy, 16),
  ],
  { windowSec, settleSec, heartbeatSec: 60 },
);
