/**
 * A real HAProxy 2.6 from Debian's packages in front of server replicas, for
 * the tests of the scale-out mode: `startHaproxy(replicas)` runs the shipped
 * packaging/haproxy.cfg, with only its addresses replaced (the frontend on a
 * free loopback port, one `server` line per replica), as
 * `/usr/sbin/haproxy -f CFG -db` in the foreground, and `stop()` stops it by
 * its PID. When the package is missing it is installed through the tests'
 * one apt lock (test/systems/packages.sh), as test/postgres.ts does for
 * PostgreSQL; when it cannot be, the test fails with the reason.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './free-port.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const HAPROXY = '/usr/sbin/haproxy';
const PACKAGES = path.join(HERE, 'systems/packages.sh');
/** The config the project ships, which the tests run. */
export const HAPROXY_CFG = path.resolve(HERE, '../packaging/haproxy.cfg');

/** Make sure Debian's haproxy is installed; throws with apt's output when it cannot be. */
export function ensureHaproxy(): void {
  if (existsSync(HAPROXY)) return;
  try {
    execFileSync(PACKAGES, ['haproxy'], { stdio: 'pipe', timeout: 15 * 60_000 });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`cannot install Debian's haproxy: ${e.stderr?.toString().trim() || e.message}`);
  }
  if (!existsSync(HAPROXY)) throw new Error(`${HAPROXY} does not exist (not root, or apt-get did not install haproxy)`);
}


/**
 * The shipped config with the frontend on 127.0.0.1:`port` and one server
 * line per replica (`host:port`, named replica1, replica2, ...) in place of
 * the example ones; everything else as shipped. Throws when the shipped file
 * no longer has the lines it replaces.
 */
export function haproxyConfig(port: number, replicas: readonly string[]): string {
  const shipped = readFileSync(HAPROXY_CFG, 'utf8');
  const bind = /^(\s*)bind \*:8080$/m;
  const servers = /^(\s*)server replica1 \S+\n\s*server replica2 \S+$/m;
  if (!bind.test(shipped) || !servers.test(shipped)) throw new Error(`${HAPROXY_CFG} lost its "bind *:8080" or "server replica1/replica2" lines that the test replaces`);
  return shipped
    .replace(bind, `$1bind 127.0.0.1:${port}`)
    .replace(servers, (_all, indent: string) => replicas.map((r, i) => `${indent}server replica${i + 1} ${r}`).join('\n'));
}

/** A running HAProxy. */
export interface Haproxy {
  /** The URL agents and the admin client use: http://127.0.0.1:PORT */
  url: string;
  child: ChildProcess;
  /** What HAProxy logged so far (its request log and server state changes, on stdout and stderr). */
  log: () => string;
  /** Stop it by its PID (SIGTERM: a hard stop) and remove its directory. */
  stop: () => Promise<void>;
}

/** Run HAProxy with the shipped config in front of `replicas` (`host:port` each); resolves once it accepts connections. */
export async function startHaproxy(replicas: readonly string[]): Promise<Haproxy> {
  ensureHaproxy();
  const dir = mkdtempSync(path.join(tmpdir(), 'vmpilot-haproxy-'));
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const cfg = path.join(dir, 'haproxy.cfg');
    writeFileSync(cfg, haproxyConfig(port, replicas));
    const child = spawn(HAPROXY, ['-f', cfg, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, 'SIGTERM');
    };
    // a test process that ends without its afterAll still stops its HAProxy
    process.once('exit', kill);
    const up = await Promise.race([exited.then(() => false), waitForPort(port).then(() => true)]);
    if (!up) {
      process.off('exit', kill);
      // another process took the port between freePort and the bind: try another
      if (attempt < 3 && /cannot bind|Address already in use/i.test(out)) continue;
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`haproxy exited before listening:\n${out}`);
    }
    return {
      url: `http://127.0.0.1:${port}`,
      child,
      log: () => out,
      async stop() {
        process.off('exit', kill);
        kill();
        await exited;
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
}

/** Resolves once 127.0.0.1:`port` accepts a connection (HAProxy has bound it). */
async function waitForPort(port: number): Promise<void> {
  const { connect } = await import('node:net');
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}
