/**
 * A FAKE cloud machine for the fake clouds: it "boots" a server's user-data
 * by running the real built agent (dist/vmpilot.cjs) as a local process with
 * what the user-data holds: the credential cloud-init would write to
 * /etc/vmpilot/agent.env and the agent config it would write to
 * /etc/vmpilot/vmpilot.yaml (server URL, cores, timeouts, lifetime, spot
 * notice), with the state directory and halt action of a test (`exit`:
 * the process ending is the machine powering off). What it does not do:
 * run cloud-init, fetch and verify the agent executable, or systemd.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { AGENT } from '../integration/harness.js';

/** What a user-data says, as far as a fake machine needs it. */
export interface BootFacts {
  credential: string;
  /** The agent config file's text, as cloud-init would write it. */
  config: string;
  configDoc: Record<string, unknown>;
}

/** Read the credential and the agent config out of a #cloud-config user-data. */
export function bootFacts(userData: string): BootFacts {
  if (!userData.startsWith('#cloud-config\n')) throw new Error('fake machine: the user-data is not a #cloud-config');
  const doc = parse(userData) as { write_files?: { path: string; content: string }[] };
  const file = (p: string) => {
    const f = doc.write_files?.find((w) => w.path === p);
    if (!f) throw new Error(`fake machine: the user-data writes no ${p}`);
    return f.content;
  };
  const env = file('/etc/vmpilot/agent.env');
  const m = /^VMPILOT_PILOT_TOKEN='([^']*)'\n$/.exec(env);
  if (!m) throw new Error(`fake machine: /etc/vmpilot/agent.env is not one quoted VMPILOT_PILOT_TOKEN line: ${env}`);
  const config = file('/etc/vmpilot/vmpilot.yaml');
  return { credential: m[1]!, config, configDoc: parse(config) as Record<string, unknown> };
}

/** One fake machine: the agent process of one server. */
export class FakeMachine {
  readonly child: ChildProcess;
  readonly facts: BootFacts;
  log = '';
  exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  readonly exited: Promise<void>;

  /** Boot `userData` in `dir` (created), with more agent flags in `extra` (e.g. --metadata-url for a fake IMDS). */
  constructor(userData: string, dir: string, extra: string[] = []) {
    this.facts = bootFacts(userData);
    mkdirSync(dir, { recursive: true });
    const configFile = path.join(dir, 'vmpilot.yaml');
    writeFileSync(configFile, this.facts.config, { mode: 0o600 });
    const args = [AGENT, 'run', '--config', configFile, '--state-dir', path.join(dir, 'state'), '--drain-file', path.join(dir, 'drain'), '--halt', 'exit', '--isolation', 'none', ...extra];
    this.child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', VMPILOT_PILOT_TOKEN: this.facts.credential } });
    this.child.stdout?.on('data', (d: Buffer) => (this.log += d.toString()));
    this.child.stderr?.on('data', (d: Buffer) => (this.log += d.toString()));
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve();
      }),
    );
  }

  get running(): boolean {
    return this.exit === null;
  }

  /** Power it off hard, as a cloud deleting a server does: SIGTERM, then SIGKILL after `graceMs`; by PID. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running || !this.child.pid) return;
    const pid = this.child.pid;
    const signal = (s: NodeJS.Signals) => {
      try {
        process.kill(pid, s);
      } catch {
        // gone
      }
    };
    signal('SIGTERM');
    const timer = setTimeout(() => signal('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
