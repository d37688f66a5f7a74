#!/usr/bin/env node
// The demo: one server on an embedded SQLite database in a temporary
// directory, with one director endpoint whose `process` driver starts pilots
// as local processes (as if each were a 4-core VM). A small mixed workload is
// submitted; the director starts the machines the queue needs (none by hand),
// the pilots run the payloads side by side, halt when idle, and the director
// discards them. Shows progress while it runs and ends with a summary:
// payloads by group, the instances with the time each was bought, used and
// idle. Exits non-zero if any payload was lost or left unfinished, or any
// instance was left undeleted.
//
// Usage: npm run demo [-- --keep]   (--keep leaves the temporary directory)
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
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
  // the director's local machines run in process groups of their own (they outlive a server restart): end them too
  let dirs = [];
  try {
    dirs = readdirSync(path.join(work, 'instances'));
  } catch {}
  for (const d of dirs) {
    try {
      process.kill(-Number(readFileSync(path.join(work, 'instances', d, 'pid'), 'utf8').trim()), 'SIGKILL');
    } catch {}
  }
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

// -- the server, with a director endpoint: at most 2 machines of 4 cores, started as local processes
const config = path.join(work, 'server.yaml');
writeFileSync(
  config,
  [
    'groups: { atlas: { share: 50 }, lhcb: { share: 30 }, cms: { share: 20 } }',
    'endpoints:',
    '  local:',
    '    driver: process',
    `    process: { workDir: ${JSON.stringify(path.join(work, 'instances'))} }`,
    '    shapes:',
    '      vm4: { cores: 4, memoryMb: 4000, lifetimeSec: 3600, costPerHour: 0.2 }',
    '    limits: { instances: 2, startsPerCycle: 2 }',
    '    timeouts: { idleSec: 3, payloadGraceSec: 5 }',
    'directorCycleSec: 1',
    '',
  ].join('\n'),
);
const serverLog = openSync(path.join(work, 'server.log'), 'a');
const server = spawn(
  process.execPath,
  [SERVER, 'serve', '--listen', '127.0.0.1:0', '--db', path.join(work, 'server.db'), '--config', config],
  { stdio: ['ignore', 'pipe', serverLog], env: { ...process.env, VMPILOT_ADMIN_TOKEN: adminToken, VMPILOT_PILOT_TOKEN: pilotToken } },
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
say('director endpoint "local": up to 2 machines of 4 cores, started as local processes when work is queued');

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
// one jobs file, queued all or none in one call, so the director sees the whole queue at once
const jobsFile = path.join(work, 'jobs.yaml');
writeFileSync(jobsFile, JSON.stringify({ payloads: workload.map(({ cores, ...j }) => ({ ...j, cores: cores === 'whole' ? 'whole' : cores })) }, null, 2));
const ids = JSON.parse(execFileSync(process.execPath, [SERVER, 'submit', '--file', jobsFile, '--json'], { env, encoding: 'utf8' }));
workload.forEach((job, k) => say(`  submitted ${job.name.padEnd(12)} ${`${job.cores} core(s)`.padEnd(14)} group ${job.group.padEnd(6)} → payload ${ids[k]}`));

const api = async (route) => {
  const res = await fetch(url + route, { headers: { authorization: `Bearer ${adminToken}` } });
  if (!res.ok) throw new Error(`GET ${route}: ${res.status} ${await res.text()}`);
  return res.json();
};
// listings come newest first, a page of 100 at most (the demo has fewer): shown oldest first
const oldestFirst = async (route) => (await api(route)).sort((a, b) => a.id - b.id);
const final = (j) => j.state === 'done' || j.state === 'failed' || j.state === 'cancelled';
const byState = (list) => {
  const n = new Map();
  for (const x of list) n.set(x.state, (n.get(x.state) ?? 0) + 1);
  return [...n].map(([state, count]) => `${count} ${state}`).join(', ') || 'none';
};

// -- progress until every payload has ended and the director has discarded every machine
const started = Date.now();
let lastLine = '';
let jobs = [];
let instances = [];
const seen = new Map();
for (;;) {
  if (Date.now() - started > 180_000) {
    stopAll();
    say(`\nthe demo took longer than 3 minutes; logs are in ${work}`);
    process.exit(1);
  }
  [jobs, instances] = await Promise.all([oldestFirst('/v1/payloads'), oldestFirst('/v1/instances')]);
  // each instance's changes as they happen: requested, started, its pilot registered, halted, deleted
  for (const i of instances) {
    if (seen.get(i.id) === i.state) continue;
    seen.set(i.id, i.state);
    if (tty && lastLine) process.stdout.write(`\r${' '.repeat(lastLine.length)}\r`);
    say(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] instance ${i.id} ${i.state}: ${i.reason}`);
    lastLine = '';
  }
  if (jobs.every(final) && instances.length > 0 && instances.every((i) => i.state === 'deleted')) break;
  const count = (s) => jobs.filter((j) => j.state === s).length;
  const cores = jobs.filter((j) => j.state === 'running').reduce((n, j) => n + (j.allocatedCores ?? 0), 0);
  const line =
    `[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ` +
    `queued ${count('queued') + count('assigned')} · running ${count('running')} on ${cores} cores · ` +
    `done ${count('done')} · failed ${count('failed')} · instances: ${byState(instances)}`;
  if (tty) process.stdout.write(`\r${line.padEnd(lastLine.length)}`);
  else if (line.replace(/^\[[^\]]*\] /, '') !== lastLine.replace(/^\[[^\]]*\] /, '')) say(line);
  lastLine = line;
  await new Promise((r) => setTimeout(r, tty ? 200 : 500));
}
if (tty) process.stdout.write('\n');

// -- summary
const pilots = await oldestFirst('/v1/pilots');
say('\nPayloads by group');
say(`  ${'group'.padEnd(8)} ${'done'.padStart(5)} ${'failed'.padStart(7)} ${'core-seconds'.padStart(13)}`);
const coreSecOf = (j) => (j.startedAt && j.endedAt ? ((j.endedAt - j.startedAt) / 1000) * (j.allocatedCores ?? 0) : 0);
for (const g of [...new Set(jobs.map((j) => j.group))]) {
  const mine = jobs.filter((j) => j.group === g);
  const coreSec = mine.reduce((s, j) => s + coreSecOf(j), 0);
  say(`  ${g.padEnd(8)} ${String(mine.filter((j) => j.state === 'done').length).padStart(5)} ${String(mine.filter((j) => j.state === 'failed').length).padStart(7)} ${coreSec.toFixed(1).padStart(13)}`);
}
say('\nInstances (started by the director for the queue, discarded when their pilot halted)');
let bought = 0;
let used = 0;
for (const i of instances) {
  const from = i.startedAt ?? i.requestedAt;
  const to = i.deletedAt ?? i.endedAt ?? Date.now();
  const lived = (to - from) / 1000;
  const pilot = pilots.find((p) => p.id === i.pilotId);
  // the machine's time its payloads filled: their core-seconds over its cores
  const busy = jobs.filter((j) => i.pilotId !== null && j.pilotId === i.pilotId).reduce((s, j) => s + coreSecOf(j), 0) / i.cores;
  bought += lived;
  used += Math.min(busy, lived);
  say(
    `  instance ${i.id}: ${i.shape} (${i.cores} cores), pilot ${i.pilotId ?? '-'}, ${lived.toFixed(1)} s from create to delete, ${busy.toFixed(1)} s of it used; ` +
      `pilot ${pilot ? `${pilot.state}, shutdown ${pilot.shutdownCode ?? '?'} (${pilot.shutdownMessage ?? 'no message'})` : 'never registered'}`,
  );
}
say(`  instance-hours: ${(bought / 3600).toFixed(4)} bought, ${(used / 3600).toFixed(4)} used, ${((bought - used) / 3600).toFixed(4)} idle (${bought.toFixed(1)} s, ${used.toFixed(1)} s, ${(bought - used).toFixed(1)} s)`);
for (const failed of jobs.filter((j) => j.state === 'failed')) {
  const j = await api(`/v1/payloads/${failed.id}`);
  say(`\nfailed: payload ${j.id} (${j.name}), exit ${j.exitCode ?? j.signal}: ${(j.outputTail || j.message || '').replace('--- stderr ---', '').trim()}`);
}
const left = readdirSync(path.join(work, 'instances')).filter((f) => !f.startsWith('.'));
const unfinished = jobs.filter((j) => !final(j));
server.kill('SIGTERM');
await new Promise((r) => server.on('exit', r));
if (unfinished.length > 0) {
  say(`\n${unfinished.length} payload(s) lost or unfinished: ${unfinished.map((j) => `${j.id} (${j.state})`).join(', ')}; logs in ${work}`);
  process.exit(1);
}
if (left.length > 0) {
  say(`\n${left.length} instance directory(ies) left behind in ${path.join(work, 'instances')}: ${left.join(', ')}`);
  process.exit(1);
}
say(`\nAll ${jobs.length} payloads finished on ${instances.length} instance(s) the director started and discarded; nothing lost, nothing left running.`);
if (keep) say(`Logs and database kept in ${work}`);
else rmSync(work, { recursive: true, force: true });
