/**
 * What the real batch-system tests share: run a test/systems setup script
 * (it installs and starts the system, idempotently, or fails with the reason),
 * make a job script with the built `vmpilot-server batch-script`, and check
 * the server's records once the job is over.
 */
import { execFile, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import type { PayloadView, PilotView } from '../../../src/protocol/index.js';
import { ADMIN_TOKEN, PILOT_TOKEN, ROOT, SERVER, admin, recorded, runCommand } from '../harness.js';

const run = promisify(execFile);

/** Run a setup or teardown script under test/systems; its stdout lines KEY=VALUE become the result. */
export async function systemScript(rel: string, timeoutMs = 240_000, args: string[] = []): Promise<Record<string, string>> {
  const file = path.join(ROOT, 'test/systems', rel);
  try {
    // this test process holds what the script starts (a cluster several test files share): teardown.sh
    // stops it only when its last live holder is done (test/systems/slurm/setup.sh)
    const { stdout } = await run(file, args, { timeout: timeoutMs, maxBuffer: 16 << 20, env: { ...process.env, VMPILOT_HOLDER: String(process.pid) } });
    return Object.fromEntries(stdout.split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${rel} failed: ${e.stderr?.trim() || e.message}`);
  }
}

/** `vmpilot-server batch-script` output for `system`, against `server`. */
export async function makeBatchScript(system: string, server: string, args: string[], bin = SERVER): Promise<string> {
  const r = await runCommand([bin, 'batch-script', '--system', system, '--server', server, '--pilot-token', PILOT_TOKEN, ...args]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

/**
 * Queue `n` short recorded payloads; returns their ids. The log and its
 * directory are open to every account: an agent running as root (a batch
 * job of root's) runs each payload as an unprivileged account of its own.
 */
export async function queueWork(url: string, log: string, n: number, cores = 1): Promise<number[]> {
  const dir = path.dirname(log);
  chmodSync(dir, 0o755);
  writeFileSync(log, '', { flag: 'a' });
  chmodSync(log, 0o666);
  // a copy of the fixture beside the log: the checkout may be closed to the payload accounts
  const [fixture, ...args] = recorded(log, 1) as [string, ...string[]];
  const script = path.join(dir, 'record.sh');
  copyFileSync(fixture, script);
  chmodSync(script, 0o755);
  const api = admin(url);
  const ids: number[] = [];
  for (let i = 0; i < n; i++) ids.push(await api.submit({ command: [script, ...args], cores: { min: cores, max: cores, wholeNode: false }, group: 'batch', name: `w${i}` }));
  return ids;
}

/** The one pilot the server knows, once it has halted; with the payloads it ran. */
export async function haltedPilot(url: string): Promise<{ pilot: PilotView; jobs: PayloadView[] }> {
  const api = admin(url);
  const pilots = await api.pilots();
  expect(pilots).toHaveLength(1);
  return { pilot: pilots[0]!, jobs: await api.jobs() };
}

/** The lines the recorded payloads wrote: "start|end id cores time". */
export function recordLines(log: string): string[] {
  try {
    return readFileSync(log, 'utf8').trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * A private copy of dist/ (server, agent files, manifest) with a link to
 * node_modules: the agent a test hands out cannot change under it when
 * something rebuilds dist/ meanwhile (its pinned sha256 would no longer match).
 */
export function snapshotDist(dir: string): { server: string; manifest: string } {
  const dist = path.join(dir, 'dist');
  mkdirSync(dist, { recursive: true });
  for (const f of ['vmpilot-server.cjs', 'vmpilot.cjs', 'vmpilot-linux-x64', 'vmpilot-linux-x64.gz', 'agent-manifest.json']) {
    copyFileSync(path.join(ROOT, 'dist', f), path.join(dist, f));
  }
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  return { server: path.join(dist, 'vmpilot-server.cjs'), manifest: path.join(dist, 'agent-manifest.json') };
}

/**
 * Start `vmpilot-server serve` from `bin` on `listen` (default 127.0.0.1:0), with `extra` arguments
 * (e.g. `--config FILE`); stop() sends SIGTERM to its PID and waits.
 */
export async function startServerFrom(bin: string, db: string, listen = '127.0.0.1:0', extra: string[] = []): Promise<{ url: string; stop: () => Promise<void>; stderr: () => string }> {
  const child = spawn(process.execPath, [bin, 'serve', '--listen', listen, '--db', db, '--admin-token', ADMIN_TOKEN, '--pilot-token', PILOT_TOKEN, ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /^vmpilot-server listening on (http:\/\/\S+)$/.exec(line);
      if (m) resolve(m[1]!);
    });
    void exited.then(() => reject(new Error(`server exited before listening:\n${err}`)));
  });
  return {
    url,
    stderr: () => err,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
