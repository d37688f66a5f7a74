/**
 * A real PostgreSQL 15 from Debian's packages for the tests of the
 * PostgreSQL store: `startPostgres()` makes a cluster in a temporary
 * directory owned by `postgres` (root cannot run the server itself), starts
 * it with pg_ctl on a free loopback port with its socket in that directory,
 * and `stop()` stops it with pg_ctl (by its data directory's PID file, never
 * by name) and removes the directory. A test file starts one cluster and
 * takes a fresh database per test (`createDatabase()`), so tests stay
 * independent and cheap. When the package is missing it is installed
 * through the tests' one apt lock (test/systems/packages.sh), as the
 * Chromium test does; when it cannot be, the test fails with the reason.
 *
 * Settings stay small for shared 2-core machines: 32 MB of shared buffers,
 * a modest max_connections; fsync stays on.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePort } from './free-port.js';

const BIN = '/usr/lib/postgresql/15/bin';
const PACKAGES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'systems/packages.sh');

/** Make sure Debian's PostgreSQL 15 is installed; throws with apt's output when it cannot be. */
export function ensurePostgres(): void {
  if (existsSync(`${BIN}/initdb`)) return;
  try {
    execFileSync(PACKAGES, ['postgresql'], { stdio: 'pipe', timeout: 15 * 60_000 });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`cannot install Debian's postgresql: ${e.stderr?.toString().trim() || e.message}`);
  }
  if (!existsSync(`${BIN}/initdb`)) throw new Error(`${BIN}/initdb does not exist (not root, or apt-get did not install postgresql)`);
}


/** A running cluster. */
export interface PgCluster {
  port: number;
  /** The URL of database `db` as the server's --db takes it. */
  url(db: string): string;
  /** A new, empty database; its URL. */
  createDatabase(): Promise<string>;
  /** Stop the server (pg_ctl -m fast: every connection is cut) and start it again on the same port. */
  restart(): Promise<void>;
  /** Stop the server (pg_ctl -m fast) and keep its data: the database is down until `start()`. */
  halt(): Promise<void>;
  /** Start a halted server again, on the same port with the same data. */
  start(): Promise<void>;
  /** Stop the server (pg_ctl -m fast) and remove its directory. */
  stop(): Promise<void>;
}

const asPostgres = (args: string[]) => execFileSync('runuser', ['-u', 'postgres', '--', ...args], { stdio: 'pipe', timeout: 120_000 });

let databases = 0;

/** Start a new cluster (about 2 s). */
export async function startPostgres(): Promise<PgCluster> {
  ensurePostgres();
  const dir = mkdtempSync(path.join(tmpdir(), 'vmpilot-pg-'));
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  chownSync(dir, uid, gid);
  const data = path.join(dir, 'data');
  try {
    asPostgres([`${BIN}/initdb`, '-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${(err as { stderr?: Buffer }).stderr?.toString() ?? String(err)}`);
  }
  let port = 0;
  let opts = '';
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c shared_buffers=32MB -c max_connections=60 -c max_wal_size=256MB`;
    try {
      asPostgres([`${BIN}/pg_ctl`, '-D', data, '-o', opts, '-l', path.join(dir, 'log'), '-w', 'start']);
      break;
    } catch (err) {
      // another process took the port between freePort and the bind: try another
      if (attempt >= 3) {
        rmSync(dir, { recursive: true, force: true });
        throw new Error(`pg_ctl start failed: ${(err as { stderr?: Buffer }).stderr?.toString() ?? String(err)}`);
      }
    }
  }
  const url = (db: string) => `postgres://postgres@127.0.0.1:${port}/${db}`;
  let stopped = false;
  let halted = false;
  // a test process that ends without its afterAll (a crash, a timeout) still stops its server, by its data directory
  const atExit = () => {
    if (stopped) return;
    try {
      asPostgres([`${BIN}/pg_ctl`, '-D', data, '-m', 'immediate', '-w', 'stop']);
    } catch {
      // already gone
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', atExit);
  return {
    port,
    url,
    async createDatabase() {
      const name = `t${process.pid}_${++databases}`;
      const client = new pg.Client({ connectionString: url('postgres') });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return url(name);
    },
    async restart() {
      asPostgres([`${BIN}/pg_ctl`, '-D', data, '-m', 'fast', '-w', 'stop']);
      asPostgres([`${BIN}/pg_ctl`, '-D', data, '-o', opts, '-l', path.join(dir, 'log'), '-w', 'start']);
    },
    async halt() {
      asPostgres([`${BIN}/pg_ctl`, '-D', data, '-m', 'fast', '-w', 'stop']);
      halted = true;
    },
    async start() {
      asPostgres([`${BIN}/pg_ctl`, '-D', data, '-o', opts, '-l', path.join(dir, 'log'), '-w', 'start']);
      halted = false;
    },
    async stop() {
      stopped = true;
      process.off('exit', atExit);
      try {
        // a cluster a failed test left halted has nothing to stop
        if (!halted) asPostgres([`${BIN}/pg_ctl`, '-D', data, '-m', 'fast', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
