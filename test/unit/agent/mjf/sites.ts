/**
 * Machine/Job Features as the sites vmpilot runs at publish them, written
 * for the tests from HSF-TN-2016-02 and what each site is known to publish
 * (key sets, old names, units, directory or URL): Vac (a VM per job, MJF
 * over HTTP from the factory, no validators), Vcycle (a VM per job, files
 * served by Apache: ETag and Last-Modified), a GridKa Grid Engine prologue
 * (a directory per job with pre-specification names, NSLOTS in the
 * environment) and an HTCondor slot (node-wide machine features, the slot's
 * own allocation in its machine ad). Plus a loopback HTTP server that
 * serves a features tree the way those sites do, and can be taken down.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';

type Values = Record<string, string | number>;

/** Write `values` into `dir` as a site does: one file per key (the value and a newline). */
export async function writeSide(dir: string, values: Values): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const [k, v] of Object.entries(values)) await writeFile(path.join(dir, k), `${v}\n`);
  return dir;
}

/** A Vac VM (one job per VM, `processors` cores): total_cpu, the deprecated names beside it, jobslots 1. */
export function vac(nowSec: number, o: { processors?: number; hs06PerProcessor?: number; shutdownInSec?: number } = {}) {
  const cpus = o.processors ?? 4;
  const hs06 = (o.hs06PerProcessor ?? 10.5) * cpus;
  const shutdown = nowSec + (o.shutdownInSec ?? 86_400);
  return {
    machine: { hs06, total_cpu: cpus, phys_cores: cpus, log_cores: cpus, jobslots: 1, shutdowntime: shutdown } as Values,
    job: {
      shutdowntime_job: shutdown,
      cpufactor_lrms: '1.0',
      cpu_limit_secs_lrms: (shutdown - nowSec) * cpus,
      cpu_limit_secs: (shutdown - nowSec) * cpus,
      wall_limit_secs_lrms: shutdown - nowSec,
      wall_limit_secs: shutdown - nowSec,
      jobstart_secs: nowSec,
      hs06_job: hs06,
      max_rss_bytes: 2048 * 1024 * 1024 * cpus,
      mem_limit_MB: Math.floor((2048 * 1024 * 1024 * cpus) / 1e6),
      allocated_cpu: cpus,
      allocated_CPU: cpus,
      job_id: 'c0a8e1f2-vac-uuid',
    } as Values,
  };
}

/** A Vcycle VM: limits from the machinetype's max_wallclock_seconds (cpu_limit_secs is not multiplied by cores). */
export function vcycle(nowSec: number, o: { processors?: number; maxWallclockSec?: number; rssPerProcessor?: number } = {}) {
  const cpus = o.processors ?? 8;
  const wall = o.maxWallclockSec ?? 172_800;
  return {
    machine: { phys_cores: 1, total_cpu: cpus, shutdowntime: nowSec + wall } as Values,
    job: {
      shutdowntime_job: nowSec + wall,
      wall_limit_secs: wall,
      cpu_limit_secs: wall,
      max_rss_bytes: (o.rssPerProcessor ?? 2_147_483_648) * cpus,
      max_swap_bytes: 1_073_741_824 * cpus,
      allocated_cpu: cpus,
      allocated_CPU: cpus,
      jobstart_secs: nowSec,
    } as Values,
  };
}

/** A GridKa Grid Engine job: a prologue writes pre-specification names; the node has 32 logical cores. */
export function gridka(nowSec: number, o: { slots?: number; logCores?: number } = {}) {
  const slots = o.slots ?? 8;
  return {
    machine: { hs06: 320, jobslots: 32, log_cores: o.logCores ?? 32, phys_cores: 16 } as Values,
    job: {
      cpufactor_lrms: '1.0',
      jobstart_secs: nowSec,
      allocated_CPU: slots,
      cpu_limit_secs: slots * 259_200,
      cpu_limit_secs_lrms: slots * 259_200,
      wall_limit_secs: 259_200,
      wall_limit_secs_lrms: 259_200,
      mem_limit_MB: 2000,
      disk_limit_GB: 30,
      README: 'JOB FEATURES AND MACHINE FEATURES',
    } as Values,
    env: { JOB_ID: '4711', NSLOTS: String(slots), SGE_ROOT: '/opt/sge', SGE_CELL: 'gridka', PE_HOSTFILE: '/var/spool/sge/pe_hostfile' },
  };
}

/** An HTCondor partitionable slot: node-wide machine features; the slot's Cpus and Memory are in its machine ad. */
export function htcondor(nowSec: number, o: { slotCpus?: number; nodeCpus?: number } = {}) {
  const slot = o.slotCpus ?? 4;
  return {
    machine: { total_cpu: o.nodeCpus ?? 16, hs06: 160, shutdowntime: nowSec + 7 * 86_400 } as Values,
    job: { jobstart_secs: nowSec, wall_limit_secs: 172_800 } as Values,
    machineAd: ['MyType = "Machine"', 'Name = "slot1_3@wn042.example.org"', `Cpus = ${slot}`, 'TotalCpus = 16.0', 'Memory = 8192', 'TotalMemory = 65536', 'Disk = 40000000', ''].join('\n'),
  };
}

/**
 * A loopback HTTP server serving `<root>/<side>/<key>` as `GET /<side>/<key>`,
 * as Vac's factory or Vcycle's Apache do. With `validators` it sends ETag and
 * Last-Modified and answers conditional requests with 304 (Apache); without,
 * a 200 every time (Vac). `down()` answers 503, `up()` serves again. `counts` says how it answered.
 */
export class SiteServer {
  readonly counts = { full: 0, notModified: 0, missing: 0, failed: 0 };
  private server!: http.Server;
  private readonly sockets = new Set<Socket>();
  private isDown = false;
  url = '';

  constructor(
    private readonly root: string,
    private readonly validators: boolean,
  ) {}

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** Answer every request with 503 (the site's server is failing). */
  down(): void {
    this.isDown = true;
  }

  up(): void {
    this.isDown = false;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (this.isDown) {
      this.counts.failed++;
      res.writeHead(503).end('Service Unavailable');
      return;
    }
    const rel = decodeURIComponent((req.url ?? '/').split('?')[0]!).replace(/^\/+/, '');
    if (rel.split('/').some((part) => part === '..' || part.startsWith('.'))) {
      res.writeHead(403).end();
      return;
    }
    const file = path.join(this.root, rel);
    const s = await stat(file).catch(() => null);
    if (!s?.isFile()) {
      this.counts.missing++;
      res.writeHead(404).end('Not Found');
      return;
    }
    const body = await readFile(file);
    const headers: Record<string, string> = { 'content-type': 'text/plain' };
    if (this.validators) {
      const etag = `"${createHash('sha1').update(`${s.ino}-${s.size}-${s.mtimeMs}`).digest('hex').slice(0, 16)}"`;
      headers.etag = etag;
      headers['last-modified'] = s.mtime.toUTCString();
      if (req.headers['if-none-match'] === etag) {
        this.counts.notModified++;
        res.writeHead(304, headers).end();
        return;
      }
    }
    this.counts.full++;
    res.writeHead(200, headers).end(body);
  }
}
