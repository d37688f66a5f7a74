/**
 * Reverse mode of the batch drivers: one `ssh -N -R` process per endpoint
 * that opens a port on the login node leading back to the server, for sites
 * whose login node may not open connections to the outside while the server
 * can reach it by ssh. The relay on the login node then uses
 * `--server http://127.0.0.1:PORT` and never needs a route of its own.
 *
 * The tunnel is kept: when ssh exits (the connection dropped, the login node
 * rebooted, the port was still taken) it is started again after a pause that
 * doubles from 1 s up to a minute, and falls back to 1 s once a tunnel has
 * stayed up for a minute. ssh's keep-alives (ServerAliveInterval) end a
 * tunnel whose connection died silently, so that it is started again too.
 * `ExitOnForwardFailure` makes a forward the login node refuses an exit,
 * not a connection that carries nothing. The tunnel has its own connection,
 * not the commands' shared one (ControlMaster): that one comes and goes with
 * ControlPersist.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { Clock } from '../../../shared/clock.js';
import type { Logger } from '../../../shared/log.js';
import type { ReverseTunnelSettings, SshSettings } from '../driver-settings.js';

/** The tunnel as the operator sees it. */
export interface TunnelState {
  /** ssh said the login node accepted the forward, and it still runs. */
  up: boolean;
  /** When it last came up (ms), or null. */
  upSince: number | null;
  /** How many times ssh was started. */
  starts: number;
  /** ssh's last words when it last ended, or null. */
  lastError: string | null;
  /** The pid of the ssh process now, or null. */
  pid: number | null;
}

/** Pauses between restarts: doubled from the first up to the last. */
const FIRST_PAUSE_MS = 1_000;
const LONGEST_PAUSE_MS = 60_000;
/** A tunnel up this long counts as healthy: the next restart comes quickly. */
const HEALTHY_MS = 60_000;

/** The options every ssh of an endpoint takes (port, key, user, the operator's own), before the host. */
export function sshLoginArgs(s: SshSettings): string[] {
  return [
    '-p', String(s.port),
    ...(s.key ? ['-i', s.key, '-o', 'IdentitiesOnly=yes'] : []),
    ...(s.user ? ['-l', s.user] : []),
    ...s.options.flatMap((o) => ['-o', o]),
  ];
}

/** `[host]` for an IPv6 address in a forward specification. */
const bracket = (host: string) => (host.includes(':') ? `[${host}]` : host);

/** The whole ssh command line of the tunnel (pure). */
export function tunnelArgv(s: SshSettings, r: ReverseTunnelSettings): string[] {
  return [
    // -v: ssh says when the forward is accepted ("remote forward success"); that is how `up` is known
    '-v', '-N',
    '-o', 'BatchMode=yes',
    '-o', 'ControlMaster=no',
    '-o', 'ControlPath=none',
    '-o', 'ExitOnForwardFailure=yes',
    '-o', 'ServerAliveInterval=15',
    '-o', 'ServerAliveCountMax=3',
    ...sshLoginArgs(s),
    '-R', `${bracket(r.listen.host)}:${r.listen.port}:${bracket(r.to.host)}:${r.to.port}`,
    s.host,
  ];
}

/** The next pause after a tunnel that ran `ranMs` ended, given the last pause. */
export function nextPause(lastPauseMs: number, ranMs: number): number {
  if (ranMs >= HEALTHY_MS) return FIRST_PAUSE_MS;
  return Math.min(LONGEST_PAUSE_MS, Math.max(FIRST_PAUSE_MS, lastPauseMs * 2));
}

/** One kept reverse tunnel. `start()` begins keeping it; `close()` ends it. */
export class ReverseTunnel {
  private running: Promise<void> | null = null;
  private readonly stop = new AbortController();
  private child: ChildProcess | null = null;
  private readonly s: TunnelState = { up: false, upSince: null, starts: 0, lastError: null, pid: null };

  constructor(
    private readonly ssh: SshSettings,
    private readonly reverse: ReverseTunnelSettings,
    private readonly clock: Clock,
    private readonly log: Logger | null = null,
    /** The ssh client. */
    private readonly binary = 'ssh',
  ) {}

  /** Where the tunnel opens and leads, for messages. */
  get description(): string {
    const r = this.reverse;
    return `${this.ssh.host}:${bracket(r.listen.host)}:${r.listen.port} → ${bracket(r.to.host)}:${r.to.port}`;
  }

  /** Begin keeping the tunnel (idempotent; nothing after `close`). */
  start(): void {
    if (this.running || this.stop.signal.aborted) return;
    this.running = this.keep();
  }

  /** The tunnel now. */
  state(): Readonly<TunnelState> {
    return { ...this.s };
  }

  /** Stop the ssh process and keep it stopped. */
  async close(): Promise<void> {
    this.stop.abort();
    this.child?.kill('SIGTERM');
    await this.running;
  }

  private async keep(): Promise<void> {
    let pause = FIRST_PAUSE_MS / 2;
    while (!this.stop.signal.aborted) {
      const startedAt = this.clock.now();
      await this.runOnce();
      if (this.stop.signal.aborted) break;
      pause = nextPause(pause, this.clock.now() - startedAt);
      this.log?.warn({ tunnel: this.description, why: this.s.lastError, retryInMs: pause }, 'reverse tunnel ended; starting it again');
      await this.clock.sleep(pause, this.stop.signal);
    }
  }

  /** One ssh process, from start to exit. */
  private runOnce(): Promise<void> {
    return new Promise((resolve) => {
      const child = spawn(this.binary, tunnelArgv(this.ssh, this.reverse), { stdio: ['ignore', 'ignore', 'pipe'] });
      this.child = child;
      this.s.starts += 1;
      this.s.pid = child.pid ?? null;
      // ssh's last lines, for the reason it ended (its debug chatter included: the last real error is near the end)
      const said: string[] = [];
      let partial = '';
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          if (!this.s.up && line.includes('remote forward success')) {
            this.s.up = true;
            this.s.upSince = this.clock.now();
            this.log?.info({ tunnel: this.description, pid: child.pid }, 'reverse tunnel up');
          }
          if (!line.startsWith('debug')) said.push(line.trim());
          if (said.length > 5) said.shift();
        }
      });
      const ended = (why: string) => {
        this.child = null;
        this.s.up = false;
        this.s.pid = null;
        this.s.lastError = said.filter(Boolean).slice(-2).join(' | ') || why;
        resolve();
      };
      child.on('error', (err) => ended(`cannot run ${this.binary}: ${err.message}`));
      child.on('exit', (code, signal) => ended(signal ? `ssh ended by ${signal}` : `ssh exited with ${code}`));
      // closed between the check and the spawn
      if (this.stop.signal.aborted) child.kill('SIGTERM');
    });
  }
}
