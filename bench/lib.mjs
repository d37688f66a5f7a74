// Shared pieces of the benchmarks: start the built server and agents, read
// process figures from /proc, percentiles, and the results file.
// Benchmarks are not tests: they measure and print, they assert nothing.
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const AGENT = path.join(ROOT, 'dist/vmpilot.cjs');
export const AGENT_BINARY = path.join(ROOT, 'dist/vmpilot-linux-x64');
export const SERVER = path.join(ROOT, 'dist/vmpilot-server.cjs');
export const RESULTS = path.join(ROOT, 'bench/results.json');
const TICKS_PER_SEC = 100; // USER_HZ on Linux

const children = new Set();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
// a benchmark stopped by a signal still stops what it started (its servers, a PostgreSQL cluster): through the exit handlers
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(130));

/** Build dist/ (quietly) unless BENCH_NO_BUILD=1. */
export function build() {
  if (process.env.BENCH_NO_BUILD === '1') return;
  execFileSync(process.execPath, [path.join(ROOT, 'scripts/build.mjs'), '--quiet'], { stdio: 'inherit' });
}

export function tempDir(prefix = 'vmpilot-bench-') {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  // agents keep their state dirs in here, and their payloads run as slot accounts (the default
  // isolation), which must pass through to them: an agent refuses a state dir they cannot reach
  chmodSync(dir, 0o711);
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export const tokens = () => ({ admin: randomBytes(16).toString('hex'), pilot: randomBytes(16).toString('hex') });

/** Start the real server (`bundle`: another build of it) on 127.0.0.1:0; resolves with its URL once it listens. */
export async function startServer(db, tok, extra = [], bundle = SERVER) {
  const child = spawn(
    process.execPath,
    [bundle, 'serve', '--listen', '127.0.0.1:0', '--db', db, '--log-level', 'warn', ...extra],
    // the tokens in the environment, never on a command line (where `ps` shows them)
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, VMPILOT_ADMIN_TOKEN: tok.admin, VMPILOT_PILOT_TOKEN: tok.pilot } },
  );
  children.add(child);
  const url = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /^vmpilot-server listening on (\S+)$/.exec(line);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  const exited = new Promise((r) => child.on('exit', r));
  return { child, url, stop: async () => (child.kill('SIGTERM'), exited) };
}

/**
 * Start an agent (the bundle, or `binary` when given). `onLine` sees every
 * parsed log line; resolves `registered` when it says so.
 */
export function startAgent(url, tok, { stateDir, cores = 4, idleTimeoutSec = 3600, binary = null, extra = [], onLine } = {}) {
  const cmd = binary ?? process.execPath;
  // payloads as the agent's own account unless a benchmark says otherwise: they write their marks
  // into the benchmark's directory, and the figures stay comparable with those measured before slot
  // accounts became the default (the isolation's own cost is the sandbox tests' and docs/security.md's)
  const isolation = extra.includes('--isolation') ? [] : ['--isolation', 'none'];
  const args = [...(binary ? [] : [AGENT]), 'run', '--server', url, '--halt', 'exit', '--state-dir', stateDir, '--cores', String(cores), '--idle-timeout', String(idleTimeoutSec), ...isolation, ...extra];
  const spawnedAt = performance.now();
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, VMPILOT_PILOT_TOKEN: tok.pilot } });
  children.add(child);
  let registeredAt = null;
  let said = '';
  const registered = new Promise((resolve, reject) => {
    // an agent that ends before it registers fails the benchmark with its last words (it hung before)
    child.on('exit', (code, signal) => registeredAt === null && reject(new Error(`the agent exited (${code ?? signal}) before it registered: ${said.slice(-1500)}`)));
    createInterface({ input: child.stderr }).on('line', (line) => {
      said = (said + line + '\n').slice(-4000);
      let entry;
      try {
        entry = JSON.parse(line);
      } catch {
        return;
      }
      if (entry.msg === 'registered' && registeredAt === null) {
        registeredAt = performance.now();
        resolve(registeredAt - spawnedAt);
      }
      onLine?.(entry);
    });
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, at: performance.now(), wall: Date.now() })));
  return { child, spawnedAt, registered, exited };
}

/**
 * Start `vmpilot relay ARGS` (the bundle); resolves once it printed its ready
 * lines, with its HTTP URL when it listens.
 */
export async function startRelay(args) {
  const child = spawn(process.execPath, [AGENT, 'relay', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  const wantListen = args.includes('--listen');
  const wantSpool = args.includes('--spool');
  const url = await new Promise((resolve, reject) => {
    let listening = null;
    let moving = false;
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /^vmpilot relay listening on (\S+)$/.exec(line);
      if (m) listening = m[1];
      if (line.startsWith('vmpilot relay moving mailboxes in ')) moving = true;
      if ((!wantListen || listening) && (!wantSpool || moving)) resolve(listening);
    });
    child.on('exit', (code) => reject(new Error(`relay exited with ${code}`)));
  });
  const exited = new Promise((r) => child.on('exit', r));
  return { child, url, exited };
}

/** The admin API as plain HTTP calls (`ca`: a PEM file to trust, for an https server). */
export function admin(url, token, ca = null) {
  let dispatcher;
  let call = fetch;
  return async (method, route, body) => {
    if (ca && !dispatcher) {
      const undici = await import('undici');
      dispatcher = new undici.Agent({ connect: { ca: readFileSync(ca) } });
      call = undici.fetch;
    }
    const res = await call(url + route, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      ...(dispatcher ? { dispatcher } : {}),
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${route}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
}

/** CPU seconds (user + system) and RSS in MB of one process, from /proc. */
export function procStats(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuSec = (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SEC;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { cpuSec, rssMb: rssKb / 1024 };
}

export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export const mean = (values) => values.reduce((s, v) => s + v, 0) / values.length;
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Wait until `check()` is truthy, polling; throws after `timeoutMs`. */
export async function waitFor(what, check, timeoutMs = 60_000, everyMs = 5) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Time a command `runs` times; the median and p90 wall time in ms. */
export function timeCommand(cmd, args, runs) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    execFileSync(cmd, args, { stdio: 'ignore' });
    times.push(performance.now() - t0);
  }
  return { p50: percentile(times, 50), p90: percentile(times, 90), runs };
}

/**
 * Merge one benchmark's figures into bench/results.json. Each figure:
 * { name, value, unit, goal?: { op: '<=' | '>=', value }, compare?: string }.
 */
export function record(bench, figures, notes = {}) {
  const all = existsSync(RESULTS) ? JSON.parse(readFileSync(RESULTS, 'utf8')) : {};
  all.machine = { cpus: (process.env.BENCH_CPUS ?? '') || undefined, node: process.version, date: new Date().toISOString() };
  // how busy the machine was meanwhile (other work on it makes every figure worse and noisier)
  const load = `${loadavg()[2].toFixed(1)} on ${availableParallelism()} cores`;
  all[bench] = { figures, notes: { ...notes, 'load average (15 min)': load }, at: new Date().toISOString() };
  writeFileSync(RESULTS, `${JSON.stringify(all, null, 2)}\n`);
  printTable(bench, figures);
}

export function meets(figure) {
  if (!figure.goal || !Number.isFinite(figure.value)) return '';
  const ok = figure.goal.op === '<=' ? figure.value <= figure.goal.value : figure.value >= figure.goal.value;
  return `${ok ? 'met' : 'MISSED'} (goal ${figure.goal.op} ${figure.goal.value} ${figure.unit})`;
}

export function printTable(bench, figures) {
  const fmt = (v) => (Number.isFinite(v) ? (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2)) : String(v));
  console.log(`\n${bench}`);
  const width = Math.max(...figures.map((f) => f.name.length));
  for (const f of figures) {
    const extra = [meets(f), f.compare ? `vs ${f.compare}` : ''].filter(Boolean).join('; ');
    console.log(`  ${f.name.padEnd(width)}  ${fmt(f.value).padStart(10)} ${f.unit.padEnd(6)} ${extra}`);
  }
}

/** Build the server of commit `base` into a temporary directory; its bundle's path. */
export async function buildBase(base) {
  const tmp = tempDir('vmpilot-bench-base-');
  const tar = execFileSync('git', ['archive', base, 'src', 'scripts', 'package.json'], { cwd: ROOT, maxBuffer: 1 << 28 });
  execFileSync('tar', ['-x', '-C', tmp.dir], { input: tar });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(tmp.dir, 'node_modules'));
  const { build: esbuild } = await import('esbuild');
  const { readFile } = await import('node:fs/promises');
  const rawText = {
    name: 'raw-text',
    setup(b) {
      b.onResolve({ filter: /\?raw$/ }, (a) => ({ path: path.resolve(a.resolveDir, a.path.slice(0, -'?raw'.length)), namespace: 'raw-text' }));
      b.onLoad({ filter: /.*/, namespace: 'raw-text' }, async (a) => ({ contents: await readFile(a.path, 'utf8'), loader: 'text' }));
    },
  };
  mkdirSync(path.join(tmp.dir, 'dist'));
  await esbuild({
    absWorkingDir: tmp.dir,
    entryPoints: ['src/cli/vmpilot-server.ts'],
    outfile: 'dist/vmpilot-server.cjs',
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: true,
    keepNames: true,
    logLevel: 'error',
    external: ['better-sqlite3'],
    plugins: [rawText],
    inject: [path.join(tmp.dir, 'scripts/import-meta-url.js')],
    define: { __VMPILOT_VERSION__: '"0.1.0"', 'import.meta.url': '__import_meta_url' },
  });
  return { bundle: path.join(tmp.dir, 'dist/vmpilot-server.cjs'), cleanup: tmp.cleanup };
}


const PG_BIN = '/usr/lib/postgresql/15/bin';
const asPostgres = (args) => execFileSync('runuser', ['-u', 'postgres', '--', ...args], { stdio: 'pipe', timeout: 120_000 });

/** A free TCP port on 127.0.0.1 (closed again at once). */
async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * A real PostgreSQL 15 (Debian's package, as test/postgres.ts starts it for
 * the tests, with the same small settings and fsync on): a cluster in a
 * temporary directory owned by `postgres`, on a free loopback port. Resolves
 * with `url(db)`, `createDatabase(name)`, `pids()` (the postmaster and its
 * children now, for their CPU) and `stop()` (pg_ctl by its data directory).
 * Throws when the package is missing (`npm test` installs it for the tests).
 */
export async function startPostgres() {
  if (!existsSync(`${PG_BIN}/initdb`)) throw new Error(`${PG_BIN}/initdb does not exist: install Debian's postgresql (the PostgreSQL store tests do: test/systems/packages.sh postgresql)`);
  const dir = mkdtempSync(path.join(tmpdir(), 'vmpilot-bench-pg-'));
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  chownSync(dir, uid, gid);
  const data = path.join(dir, 'data');
  asPostgres([`${PG_BIN}/initdb`, '-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const port = await freePort();
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c shared_buffers=32MB -c max_connections=60 -c max_wal_size=256MB`;
  asPostgres([`${PG_BIN}/pg_ctl`, '-D', data, '-o', opts, '-l', path.join(dir, 'log'), '-w', 'start']);
  const url = (db) => `postgres://postgres@127.0.0.1:${port}/${db}`;
  const stop = () => {
    try {
      asPostgres([`${PG_BIN}/pg_ctl`, '-D', data, '-m', 'fast', '-w', 'stop']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  let stopped = false;
  process.once('exit', () => stopped || stop());
  return {
    url,
    createDatabase(name) {
      asPostgres([`${PG_BIN}/psql`, '-h', dir, '-p', String(port), '-U', 'postgres', '-c', `CREATE DATABASE ${name}`]);
      return url(name);
    },
    /** The postmaster (first line of postmaster.pid) and every process whose parent it is. */
    pids() {
      const main = Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return [main, ...childrenOf(main)];
    },
    stop() {
      stopped = true;
      stop();
    },
  };
}

/** The PIDs whose parent is `pid`, from /proc. */
export function childrenOf(pid) {
  const found = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) found.push(Number(name));
    } catch {
      // ended meanwhile
    }
  }
  return found;
}

/** CPU seconds (user + system) of the processes `pids` (one that has ended counts 0). */
export function cpuOf(pids) {
  let sec = 0;
  for (const pid of pids) {
    try {
      sec += procStats(pid).cpuSec;
    } catch {
      // ended meanwhile
    }
  }
  return sec;
}

/** Another process spinning one core (`node -e 'for(;;){}'`) until `stop()`, which ends it by its PID. */
export function busyCore() {
  const child = spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' });
  children.add(child);
  const exited = new Promise((r) => child.on('exit', r));
  return { pid: child.pid, stop: async () => (process.kill(child.pid, 'SIGKILL'), exited) };
}
