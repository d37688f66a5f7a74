#!/usr/bin/env node
// The demo: one server on an embedded SQLite database in a temporary
// directory, a small mixed workload, and two pilots as if on two 4-core VMs.
// Shows progress while it runs and ends with a summary. Exits non-zero if any
// payload was lost or left unfinished.
//
// Usage: npm run demo [-- --keep]   (--keep leaves the temporary directory)
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const AGENT = path.join(root, 'dist/vmpilot.cjs');
const SERVER = path.join(root, 'dist/vmpilot-server.cjs');
const keep = process.argv.includes('--keep');
const tty = process.stdout.isTTY;
const say = (line) => process.stdout.write(`${line}\n`);
const children = [];

function stopAll() {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}
process.on('SIGINT', () => {
  stopAll();
  process.exit(130);
});

// --no-build: dist/ is built already (the test suite builds it once, and a rebuild would rewrite it under running tests)
if (!process.argv.includes('--no-build')) {
  say('vmpilot demo: building…');
  execFileSync(process.execPath, [path.join(root, 'scripts/build.mjs'), '--quiet'], { stdio: 'inherit' });
}

const work = mkdtempSync(path.join(tmpdir(), 'vmpilot-demo-'));
// run as root, the agents run payloads as slot accounts, which must pass through to the agents' state dirs
chmodSync(work, 0o711);
const adminToken = randomBytes(18).toString('base64url');
const pilotToken = randomBytes(18).toString('base64url');

// -- the server
const serverLog = openSync(path.join(work, 'server.log'), 'a');
const server = spawn(
  process.execPath,
  [SERVER, 'serve', '--listen', '127.0.0.1:0', '--db', path.join(work, 'server.db'), '--admin-token', adminToken, '--pilot-token', pilotToken],
  { stdio: ['ignore', 'pipe', serverLog] },
);
children.push(server);
const url = await new Promise((resolve, reject) => {
  createInterface({ input: server.stdout }).on('line', (line) => {
    const m = /^vmpilot-server listening on (\S+)$/.exec(line);
    if (m) resolve(m[1]);
  });
  server.on('exit', (code) => reject(new Error(`the server exited (${code}); see ${work}/server.log`)));
});
say(`server listening on ${url} (database ${path.join(work, 'server.db')})`);

const env = { ...process.env, VMPILOT_SERVER: url, VMPILOT_TOKEN: adminToken };
const sh = (seconds, text) => ['sh', '-c', `sleep ${seconds}; echo "${text} on $VMPILOT_CORES core(s)"`];

// -- the workload, submitted with the admin command line as a user would
const workload = [
  ...Array.from({ length: 6 }, (_, i) => ({ group: 'atlas', name: `evgen-${i + 1}`, cores: '1', command: sh(1.5, 'generated 1000 events') })),
  { group: 'lhcb', name: 'reco-a', cores: '2', command: sh(2, 'reconstructed run A') },
  { group: 'lhcb', name: 'reco-b', cores: '2', command: sh(2, 'reconstructed run B') },
  { group: 'lhcb', name: 'merge', cores: '2-4', command: sh(2, 'merged outputs') },
  { group: 'cms', name: 'calibration', cores: 'whole', command: sh(2, 'calibrated the detector') },
  { group: 'cms', name: 'broken-job', cores: '1', command: ['sh', '-c', 'echo "missing input file" >&2; exit 2'] },
];
for (const job of workload) {
  const coreArgs = job.cores === 'whole' ? ['--whole-node'] : ['--cores', job.cores];
  const args = ['submit', ...coreArgs, '--group', job.group, '--name', job.name, '--', ...job.command];
  const id = execFileSync(process.execPath, [SERVER, ...args], { env, encoding: 'utf8' }).trim();
  say(`  submitted ${job.name.padEnd(12)} ${`${job.cores} core(s)`.padEnd(14)} group ${job.group.padEnd(6)} → payload ${id}`);
}

// -- two pilots, as if on two 4-core VMs; halt action exit
const agents = [1, 2].map((n) => {
  const log = openSync(path.join(work, `agent${n}.log`), 'a');
  const child = spawn(
    process.execPath,
    [AGENT, 'run', '--server', url, '--cores', '4', '--idle-timeout', '3', '--halt', 'exit', '--state-dir', path.join(work, `agent${n}`)],
    { stdio: ['ignore', log, log], env: { ...process.env, VMPILOT_PILOT_TOKEN: pilotToken } },
  );
  children.push(child);
  return { n, child, exited: new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal))) };
});
say('started 2 pilots with 4 cores each (idle timeout 3 s)');

const api = async (route) => {
  const res = await fetch(url + route, { headers: { authorization: `Bearer ${adminToken}` } });
  if (!res.ok) throw new Error(`GET ${route}: ${res.status} ${await res.text()}`);
  return res.json();
};
// listings come newest first, a page of 100 at most (the demo has fewer): shown oldest first
const oldestFirst = async (route) => (await api(route)).sort((a, b) => a.id - b.id);

// -- progress until both pilots have halted
let done = false;
const statuses = Promise.all(agents.map((a) => a.exited)).then((s) => {
  done = true;
  return s;
});
const started = Date.now();
let lastLine = '';
while (!done) {
  if (Date.now() - started > 120_000) {
    stopAll();
    say(`\nthe demo took longer than 2 minutes; logs are in ${work}`);
    process.exit(1);
  }
  const [jobs, pilots] = await Promise.all([oldestFirst('/v1/payloads'), oldestFirst('/v1/pilots')]);
  const count = (s) => jobs.filter((j) => j.state === s).length;
  const cores = jobs.filter((j) => j.state === 'running').reduce((n, j) => n + (j.allocatedCores ?? 0), 0);
  const line =
    `[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ` +
    `queued ${count('queued') + count('assigned')} · running ${count('running')} on ${cores}/8 cores · ` +
    `done ${count('done')} · failed ${count('failed')} · pilots ${pilots.map((p) => p.state).join(', ') || '-'}`;
  if (tty) process.stdout.write(`\r${line.padEnd(lastLine.length)}`);
  else if (line.replace(/^\[[^\]]*\] /, '') !== lastLine.replace(/^\[[^\]]*\] /, '')) say(line);
  lastLine = line;
  await new Promise((r) => setTimeout(r, tty ? 200 : 500));
}
if (tty) process.stdout.write('\n');
const exitStatuses = await statuses;

// -- summary
const [jobs, pilots] = await Promise.all([oldestFirst('/v1/payloads'), oldestFirst('/v1/pilots')]);
say('\nPayloads by group');
say(`  ${'group'.padEnd(8)} ${'done'.padStart(5)} ${'failed'.padStart(7)} ${'core-seconds'.padStart(13)}`);
const groups = [...new Set(jobs.map((j) => j.group))];
for (const g of groups) {
  const mine = jobs.filter((j) => j.group === g);
  const coreSec = mine.reduce((s, j) => s + (j.startedAt && j.endedAt ? ((j.endedAt - j.startedAt) / 1000) * (j.allocatedCores ?? 0) : 0), 0);
  say(`  ${g.padEnd(8)} ${String(mine.filter((j) => j.state === 'done').length).padStart(5)} ${String(mine.filter((j) => j.state === 'failed').length).padStart(7)} ${coreSec.toFixed(1).padStart(13)}`);
}
say('\nPilots');
for (const p of pilots) {
  const agent = agents[p.id - 1];
  say(`  pilot ${p.id}: ${p.state}, ${p.cores} cores, shutdown ${p.shutdownCode ?? '?'} (${p.shutdownMessage ?? 'no message'}); agent exit status ${agent ? exitStatuses[agent.n - 1] : '?'}`);
}
for (const failed of jobs.filter((j) => j.state === 'failed')) {
  const j = await api(`/v1/payloads/${failed.id}`);
  say(`\nfailed: payload ${j.id} (${j.name}), exit ${j.exitCode ?? j.signal}: ${(j.outputTail || j.message || '').replace('--- stderr ---', '').trim()}`);
}

// an agent that could not start says why in one line of its log
for (const a of agents) {
  if (exitStatuses[a.n - 1] === 0) continue;
  const why = readFileSync(path.join(work, `agent${a.n}.log`), 'utf8').split('\n').filter((l) => l.startsWith('vmpilot: error:')).at(-1);
  if (why) say(`\nagent ${a.n} exited ${exitStatuses[a.n - 1]}: ${why}`);
}
const unfinished = jobs.filter((j) => j.state !== 'done' && j.state !== 'failed');
server.kill('SIGTERM');
await new Promise((r) => server.on('exit', r));
if (unfinished.length > 0) {
  say(`\n${unfinished.length} payload(s) lost or unfinished: ${unfinished.map((j) => `${j.id} (${j.state})`).join(', ')}; logs in ${work}`);
  process.exit(1);
}
say(`\nAll ${jobs.length} payloads finished; nothing lost.`);
if (keep) say(`Logs and database kept in ${work}`);
else rmSync(work, { recursive: true, force: true });
