/**
 * Start the real built server and agents as child processes, on 127.0.0.1,
 * and talk to them as users do: HTTP for the server's records, exit statuses
 * and files for the agents. Every process started here is stopped by its PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { AccountingEntry, PayloadHistoryEntry, PayloadView, PilotView, SubmitRequest } from '../../src/protocol/index.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const AGENT = path.join(ROOT, 'dist/vmpilot.cjs');
export const SERVER = path.join(ROOT, 'dist/vmpilot-server.cjs');
export const FIXTURES = path.join(ROOT, 'test/fixtures');

export const ADMIN_TOKEN = 'test-admin-token-0123456789';
export const PILOT_TOKEN = 'test-pilot-token-0123456789';

const children = new Set<ChildProcess>();

/** Kill one child with SIGKILL, by its PID, if it is still running. */
export function kill(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null && child.pid) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Kill every child still running (by PID), or only those `which` selects; call from afterEach/afterAll. */
export function killAll(which: (child: ChildProcess) => boolean = () => true): void {
  for (const child of children) {
    if (!which(child)) continue;
    kill(child);
    children.delete(child);
  }
}

/** The processes whose command line holds `text`, from /proc (what a test left running). */
export function processesWith(text: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(text)) out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** SIGKILL every process whose command line holds `text` (what a failed test left running that is not the harness's child, e.g. agents a director started). */
export function killProcessesWith(text: string): void {
  for (const pid of processesWith(text)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}

/** A fresh temporary directory, removed by `cleanup()`. */
export function tempDir(prefix = 'vmpilot-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Proc {
  child: ChildProcess;
  /** Everything written to stderr so far. */
  stderr: () => string;
  stdout: () => string;
  exited: Promise<Exit>;
}

function track(child: ChildProcess): Proc {
  children.add(child);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<Exit>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, stderr: () => err, stdout: () => out, exited };
}

export interface Server extends Proc {
  url: string;
  stop: () => Promise<Exit>;
}

/** How `startServer` starts the server. */
export interface ServerOptions {
  /** `--listen` (default 127.0.0.1:0); a fixed port lets a restarted server keep its agents. */
  listen?: string;
  /** The tokens in VMPILOT_ADMIN_TOKEN / VMPILOT_PILOT_TOKEN, not on the command line (where `ps` shows them). */
  tokensInEnv?: boolean;
  /** More environment variables of the server (e.g. the AWS credentials its ec2 driver reads). */
  env?: Record<string, string>;
  /** The database in VMPILOT_DB, not in --db. */
  dbInEnv?: boolean;
}

/** Start `vmpilot-server serve` on 127.0.0.1:0; resolves once it says where it listens. */
export async function startServer(db: string, extra: string[] = [], options: ServerOptions = {}): Promise<Server> {
  const tokens = options.tokensInEnv ? [] : ['--admin-token', ADMIN_TOKEN, '--pilot-token', PILOT_TOKEN];
  const env = {
    ...process.env,
    ...(options.tokensInEnv ? { VMPILOT_ADMIN_TOKEN: ADMIN_TOKEN, VMPILOT_PILOT_TOKEN: PILOT_TOKEN } : {}),
    ...(options.dbInEnv ? { VMPILOT_DB: db } : {}),
    ...options.env,
  };
  const child = spawn(
    process.execPath,
    [SERVER, 'serve', '--listen', options.listen ?? '127.0.0.1:0', ...(options.dbInEnv ? [] : ['--db', db]), ...tokens, ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'], env },
  );
  const proc = track(child);
  const lines = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    lines.on('line', (line) => {
      const m = /^vmpilot-server listening on (https?:\/\/\S+)$/.exec(line);
      if (m) resolve(m[1]!);
    });
    void proc.exited.then((e) => reject(new Error(`server exited (${e.code ?? e.signal}) before listening:\n${proc.stderr()}`)));
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    return proc.exited;
  };
  return { ...proc, url, stop };
}

export interface AgentOptions {
  cores?: number;
  idleTimeoutSec?: number;
  stateDir: string;
  extra?: string[];
  /** Extra environment variables of the agent (added to this process's). */
  env?: Record<string, string>;
  /**
   * `--isolation`: `none` unless given, so the payloads of tests that are not
   * about isolation can write their run logs into the test's own directory;
   * `auto` is the agent's default (test/security/ runs it).
   */
  isolation?: 'auto' | 'bwrap' | 'unshare' | 'none';
  /** Run the agent as this user and group (a non-root agent). */
  uid?: number;
  gid?: number;
  /** The agent bundle to run (default dist/vmpilot.cjs). */
  agent?: string;
}

/** Start `vmpilot run` against the server, with the halt action `exit` (the token in VMPILOT_PILOT_TOKEN). */
export function startAgent(server: string, options: AgentOptions): Proc {
  const args = [options.agent ?? AGENT, 'run', '--server', server, '--halt', 'exit', '--state-dir', options.stateDir, '--isolation', options.isolation ?? 'none'];
  if (options.cores !== undefined) args.push('--cores', String(options.cores));
  if (options.idleTimeoutSec !== undefined) args.push('--idle-timeout', String(options.idleTimeoutSec));
  args.push(...(options.extra ?? []));
  const env = { ...process.env, VMPILOT_PILOT_TOKEN: PILOT_TOKEN, ...options.env };
  const ids = { ...(options.uid === undefined ? {} : { uid: options.uid }), ...(options.gid === undefined ? {} : { gid: options.gid }) };
  return track(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env, ...ids }));
}

/** Run a command to completion (e.g. the admin CLI), as `ids` when given, and return its output. */
export function runCommand(args: string[], env: Record<string, string> = {}, ids: { uid?: number; gid?: number } = {}): Promise<Exit & { stdout: string; stderr: string }> {
  const proc = track(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, ...ids }));
  return proc.exited.then((e) => ({ ...e, stdout: proc.stdout(), stderr: proc.stderr() }));
}

/** The admin API of a running server, as plain HTTP calls. */
export function admin(url: string, token = ADMIN_TOKEN) {
  const call = async <T>(method: string, route: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await fetch(url + route, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
  };
  const ok = async <T>(method: string, route: string, body?: unknown): Promise<T> => {
    const r = await call<T>(method, route, body);
    if (r.status >= 300) throw new Error(`${method} ${route} → ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  /** Every row of a listing, page by page (the server lists newest first), oldest first. */
  const all = async <T extends { id: number }>(route: string): Promise<T[]> => {
    const rows: T[] = [];
    for (let next: string | null = `${route}?limit=500`; next !== null; ) {
      const res = await fetch(url + next, { headers: { authorization: `Bearer ${token}` } });
      if (res.status >= 300) throw new Error(`GET ${next} → ${res.status} ${await res.text()}`);
      rows.push(...((await res.json()) as T[]));
      next = /<([^>]+)>;\s*rel="next"/.exec(res.headers.get('link') ?? '')?.[1] ?? null;
    }
    return rows.sort((a, b) => a.id - b.id);
  };
  return {
    call,
    submit: async (req: SubmitRequest) => (await ok<{ id: number }>('POST', '/v1/payloads', req)).id,
    jobs: () => all<PayloadView>('/v1/payloads'),
    job: (id: number) => ok<PayloadView>('GET', `/v1/payloads/${id}`),
    history: (id: number) => ok<PayloadHistoryEntry[]>('GET', `/v1/payloads/${id}/history`),
    accounting: () => ok<AccountingEntry[]>('GET', '/v1/accounting'),
    pilots: () => all<PilotView>('/v1/pilots'),
    instruct: (pilotId: number, body: unknown) => ok<unknown>('POST', `/v1/pilots/${pilotId}/instructions`, body),
  };
}

/** Wait until `check` returns a value that is not undefined/false, polling the real system. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A payload that records when it started and ended, with its cores, into `log`. */
export function recorded(log: string, seconds: number, exitCode = 0): string[] {
  return [path.join(FIXTURES, 'record.sh'), log, String(seconds), String(exitCode)];
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for a server that must come back on the same port). */
export { freePort } from '../free-port.js';
