/**
 * The `process` driver: each instance is the agent bundle run as a local
 * child process (`node vmpilot.cjs run …`), for a single host, development
 * and the demo. Its directory under workDir (named by the key) holds the
 * agent's state directory, its log, the pid of a small sh wrapper and, once
 * it ended, its exit status. The wrapper runs in a process group of its own
 * and is not tied to the server: a restarted server finds its instances
 * running and adopts them by key. The credential reaches the agent in its
 * environment (VMPILOT_PILOT_TOKEN), never on a command line.
 *
 * `delete` sends SIGTERM (the agent halts: it stops its payloads within its
 * grace and reports), waits up to `stopGraceMs`, SIGKILLs what is left, and
 * removes the directory.
 */
import path from 'node:path';
import { open, readFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import type { Clock } from '../../../shared/clock.js';
import { VmpilotError, describeError } from '../../../shared/errors.js';
import type { ProcessSettings } from '../driver-settings.js';
import type { CreateRequest, Driver, DriverResource } from '../ports.js';
import { claim, describeDir, instanceDir, killStragglers, listKeys, readPid, removeDir, sendSignal, stopProcess, writePid } from './local-instances.js';

/** What the process driver is made of. */
export interface ProcessDriverOptions {
  settings: ProcessSettings;
  /** The prefix of this endpoint's keys (credential.ts resourcePrefix). */
  prefix: string;
  /** The agent bundle to run (settings.agent, else dist/vmpilot.cjs beside the server). */
  agent: string;
  /** The node binary (settings.node, else the server's own). */
  node: string;
  /** The environment agents start with (PATH, HOME, …: given by the server's wiring, never its secrets). */
  baseEnv: Readonly<Record<string, string>>;
  clock: Clock;
  /** How long an agent has to halt after SIGTERM before it is killed (default 45 s). */
  stopGraceMs?: number;
}

const PID_FILE = 'pid';
/** A directory still without a pid this long after it was made is stillborn. */
const STILLBORN_MS = 10_000;
const STILLBORN = 'stillborn';
const marker = (key: string) => `vmpilot-instance-${key}`;

/** Local agent processes as a driver. */
export class ProcessDriver implements Driver {
  readonly kind = 'process';

  constructor(private readonly o: ProcessDriverOptions) {}

  async create(request: CreateRequest): Promise<DriverResource> {
    if (!request.key.startsWith(this.o.prefix)) throw new VmpilotError('VMP_INTERNAL', `key ${request.key} is not this endpoint's (${this.o.prefix}…)`);
    const d = instanceDir(this.o.settings.workDir, request.key);
    if (!(await claim(d, this.o.clock.now()))) {
      const existing = await this.describe(request.key);
      if (existing && !existing.detail.startsWith(STILLBORN)) return existing;
    }
    const b = request.bootstrap;
    const args = [
      this.o.agent, 'run',
      '--server', b.serverUrl,
      '--halt', 'exit',
      '--state-dir', path.join(d.dir, 'state'),
      '--drain-file', path.join(d.dir, 'drain'),
      '--cores', String(request.cores),
      '--memory-mb', String(request.memoryMb),
      '--idle-timeout', String(b.idleTimeoutSec),
      '--grace', String(b.graceSec),
      '--lifetime', String(b.lifetimeSec),
      ...this.o.settings.extraArgs,
    ];
    // the wrapper's name carries the key (how a reused pid is told apart); it runs the agent and keeps its exit status
    const wrapper = '"$@"; echo $? > exit_status.tmp && mv exit_status.tmp exit_status';
    let pid: number | undefined;
    // the agent writes to files the server opens and closes at once: no pipe ties the server to it, so
    // the server exits when told to while its instances run on (a pipe kept the server alive until they ended)
    const out = await open(path.join(d.dir, 'agent.out'), 'a');
    const log = await open(path.join(d.dir, 'agent.log'), 'a');
    try {
      // node's own spawn: execa's types take no descriptor for stdout, and nothing here is awaited or piped
      const child = spawn('sh', ['-c', wrapper, marker(request.key), this.o.node, ...args], {
        cwd: d.dir,
        detached: true,
        env: { ...this.o.baseEnv, VMPILOT_PILOT_TOKEN: b.credential },
        stdio: ['ignore', out.fd, log.fd],
      });
      child.on('error', () => undefined);
      child.unref();
      pid = child.pid;
      if (pid === undefined) throw new Error('the wrapper did not start (no pid)');
      // the pid is on disk before the create returns: however long the wrapper takes to get going on a
      // loaded host, its directory is never mistaken for a stillborn one
      await writePid(path.join(d.dir, PID_FILE), pid);
    } catch (err) {
      if (pid !== undefined) sendSignal(pid, 'SIGKILL', true);
      await removeDir(d);
      throw new VmpilotError('VMP_DRIVER', `cannot start ${this.o.node} ${this.o.agent}: ${describeError(err)}`, { cause: err });
    } finally {
      await out.close();
      await log.close();
    }
    return { id: request.key, key: request.key, state: 'pending', createdAt: this.o.clock.now(), detail: 'started' };
  }

  async list(): Promise<DriverResource[]> {
    const out: DriverResource[] = [];
    for (const key of await listKeys(this.o.settings.workDir, this.o.prefix)) {
      const r = await this.describe(key);
      if (r) out.push(r);
    }
    return out;
  }

  async describe(id: string): Promise<DriverResource | null> {
    if (!id.startsWith(this.o.prefix)) return null;
    const r = await describeDir(instanceDir(this.o.settings.workDir, id), PID_FILE, marker(id), async (dir) => {
      const status = await readFile(path.join(dir, 'exit_status'), 'utf8').catch(() => null);
      return status === null ? 'ended without an exit status (killed)' : `agent exited ${status.trim()}`;
    });
    // a directory with no pid some seconds after it was made: the create that made it died (a server
    // crash) before it started the agent and wrote its pid, and nothing will ever start there: ended, so that its
    // instance is failed and discarded (a create again with its key starts it afresh)
    if (r?.state === 'pending' && this.o.clock.now() - (r.createdAt ?? 0) > STILLBORN_MS) {
      return { ...r, state: 'ended', detail: `${STILLBORN}: the create that made its directory ended before it started the agent` };
    }
    return r;
  }

  async delete(id: string): Promise<void> {
    if (!id.startsWith(this.o.prefix)) return;
    const d = instanceDir(this.o.settings.workDir, id);
    const pid = await readPid(path.join(d.dir, PID_FILE));
    if (pid !== null) await stopProcess(pid, marker(id), true, this.o.stopGraceMs ?? 45_000, this.o.clock);
    // what the agent left running from its directory (a payload's wrapper after a SIGKILL)
    await killStragglers(`${d.dir}/`, this.o.clock);
    await removeDir(d);
  }

  async close(): Promise<void> {}
}
