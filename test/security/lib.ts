/**
 * What the security tests share: the ways an agent can run (as root, with a
 * slot account per payload; not root, in an unshare or a bwrap sandbox),
 * directories every payload account may write (the hostile payload's loot,
 * the audit's run log), and the installation of bubblewrap through the
 * project's one package lock (test/systems/lib.sh).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { AGENT, FIXTURES, PILOT_TOKEN, ROOT, startAgent, type AgentOptions, type Proc } from '../integration/harness.js';

export const SECURITY_FIXTURES = path.join(ROOT, 'test/fixtures/security');
export const NOBODY = { uid: 65534, gid: 65534 };

/** One way the agent runs, and what it must say about its isolation. */
export interface AgentMode {
  name: string;
  isolation: 'auto' | 'bwrap' | 'unshare';
  /** Runs as nobody (a batch job's agent) when set; as root (a VM's agent) otherwise. */
  user: typeof NOBODY | null;
  expected: 'slot-users' | 'bwrap' | 'unshare';
  containment: 'cgroup-v1' | 'cgroup-v2' | 'pid-namespace';
  /** Makes the node able to run it (installs bwrap). */
  prepare?: () => void;
}

/** Install Debian's bubblewrap when it is missing, through test/systems/lib.sh's lock; throws with apt's reason. */
export function ensureBwrap(): void {
  if (existsSync('/usr/bin/bwrap')) return;
  try {
    execFileSync('bash', ['-c', `fail() { echo "$*" >&2; exit 1; }; . ${path.join(ROOT, 'test/systems/lib.sh')}; apt_install bubblewrap`], { stdio: 'pipe', timeout: 15 * 60_000 });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`cannot install bubblewrap: ${e.stderr?.toString().trim() || e.message}`);
  }
}

export const MODES: readonly AgentMode[] = [
  { name: 'agent as root: one account per payload', isolation: 'auto', user: null, expected: 'slot-users', containment: process.getuid?.() === 0 && existsSync('/sys/fs/cgroup/cgroup.controllers') ? 'cgroup-v2' : 'cgroup-v1' },
  { name: 'agent not root: unshare sandbox', isolation: 'unshare', user: NOBODY, expected: 'unshare', containment: 'pid-namespace' },
  { name: 'agent not root: bwrap sandbox', isolation: 'bwrap', user: NOBODY, expected: 'bwrap', containment: 'pid-namespace', prepare: ensureBwrap },
];

/**
 * The places of one test: `base` (0755), the agent's state dir and home
 * inside it (its user's), `drop` (1777: every payload account may write
 * there) with the audit's run log, writable by all, and copies of the agent
 * bundle and of the fixtures every account can reach (the checkout may be
 * closed to them, e.g. under /root).
 */
export function places(base: string, mode: AgentMode) {
  chmodSync(base, 0o755);
  if (mode.user) {
    const r = spawnSync(process.execPath, ['-e', '0'], { uid: mode.user.uid, gid: mode.user.gid });
    if (r.status !== 0) throw new Error(`${process.execPath} cannot be run by uid ${mode.user.uid}: ${r.error?.message ?? r.stderr.toString()}; the non-root tests need a node every user can run`);
  }
  const fixtures = path.join(base, 'fixtures');
  mkdirSync(fixtures, { recursive: true });
  const copy = (from: string, name: string, mode = 0o755) => {
    const to = path.join(fixtures, name);
    copyFileSync(from, to);
    chmodSync(to, mode);
    return to;
  };
  const agent = copy(AGENT, 'vmpilot.cjs', 0o644);
  const fixture = { hostile: copy(path.join(SECURITY_FIXTURES, 'hostile.sh'), 'hostile.sh'), neighbour: copy(path.join(SECURITY_FIXTURES, 'neighbour.sh'), 'neighbour.sh') };
  const runSh = copy(path.join(FIXTURES, 'faults/run.sh'), 'run.sh');
  const drop = path.join(base, 'drop');
  mkdirSync(drop, { recursive: true });
  chmodSync(drop, 0o1777);
  const log = path.join(drop, 'runs.log');
  writeFileSync(log, '');
  chmodSync(log, 0o666);
  const home = path.join(base, 'home');
  mkdirSync(home, { recursive: true });
  if (mode.user) chownSync(home, mode.user.uid, mode.user.gid);
  return { drop, log, home, stateDir: path.join(home, 'state'), agent, fixture, runSh };
}

/** Start the agent (the copy in `agent`) the way `mode` says (its token in a file of its user's when it is not root). */
export function startModeAgent(server: string, mode: AgentMode, p: { home: string; stateDir: string; agent: string }, o: Partial<AgentOptions> = {}): Proc {
  const { home, stateDir } = p;
  const extra = [...(o.extra ?? [])];
  const env: Record<string, string> = { HOME: home, ...o.env };
  if (mode.user) {
    const tokenFile = path.join(home, 'token');
    writeFileSync(tokenFile, `${PILOT_TOKEN}\n`, { mode: 0o600 });
    chownSync(tokenFile, mode.user.uid, mode.user.gid);
    extra.push('--token-file', tokenFile);
  }
  return startAgent(server, {
    ...o,
    agent: p.agent,
    stateDir,
    isolation: mode.isolation,
    extra,
    env,
    ...(mode.user ? { uid: mode.user.uid, gid: mode.user.gid } : {}),
  });
}

/** Pids of live processes whose command line has `arg` as one of its words (or, with `anywhere`, anywhere in it). */
export function pidsWithArg(arg: string, anywhere = false): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') continue;
      const words = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (anywhere ? words.some((w) => w.includes(arg)) : words.includes(arg)) out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}
