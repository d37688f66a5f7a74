/**
 * The site's limits pass on to payloads (issue 22, point 6): each payload's
 * $JOBFEATURES says its share, by cores, of what the site gave the pilot
 * (cpu_limit_secs, hs06 scaled to the cores the pilot holds, max_rss_bytes,
 * max_swap_bytes), and never more.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../../src/agent/config/load.js';
import { fakeAssignment } from '../../../../src/agent/control/fake-control-plane.js';
import { FakeProbe, fakeSnapshot } from '../../../../src/agent/probe/node-probe.js';
import { NodeResources } from '../../../../src/agent/resources/node-resources.js';
import { PilotResources } from '../../../../src/agent/resources/pilot-resources.js';
import { FakeClock } from '../../../../src/shared/clock.js';
import { silentLogger } from '../../../../src/shared/log.js';
import { SiteServer, vac, vcycle, writeSide } from '../mjf/sites.js';

let dir: string;
let server: SiteServer | null = null;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'vmp-limits-'));
});
afterEach(async () => {
  await server?.stop();
  server = null;
  await rm(dir, { recursive: true, force: true });
});

const clock = new FakeClock();
const nowSec = Math.floor(clock.now() / 1000);
const GiB = 1024 ** 3;
const noCommands = async () => ({ exitCode: null, stdout: '', error: 'not run in this test' });

/** A pilot's resources at a site served over HTTP, with these agent flags. */
async function pilotAt(site: { machine: Record<string, string | number>; job: Record<string, string | number> }, flags: Record<string, string>, probeCores: number) {
  await writeSide(path.join(dir, 'www', 'machinefeatures'), site.machine);
  await writeSide(path.join(dir, 'www', 'jobfeatures'), site.job);
  server = await new SiteServer(path.join(dir, 'www'), true).start();
  const env = { MACHINEFEATURES: `${server.url}/machinefeatures`, JOBFEATURES: `${server.url}/jobfeatures` };
  const config = loadConfig({ flags: { stateDir: path.join(dir, 'state'), grace: '30', ...flags }, env });
  const probe = new FakeProbe(fakeSnapshot({ cores: probeCores, memoryMb: { total: 256_000, free: 250_000 }, diskFreeMb: 100_000 }));
  const source = new NodeResources({ config, probe, log: silentLogger(), startedAt: clock.now(), run: noCommands, cgroupRoot: path.join(dir, 'none'), clock });
  const res = new PilotResources(source, config, silentLogger());
  await res.refresh({ totalCores: 1, deadline: null });
  return res;
}

describe("payloads get their share of the site's limits", () => {
  it('Vcycle (cpu_limit_secs 172,800 for the VM): an 8-core payload is told 172,800, not wall × cores; memory and swap are shared out by cores', async () => {
    const res = await pilotAt(vcycle(nowSec, { processors: 8, maxWallclockSec: 172_800 }), {}, 8);
    const whole = res.payloadContext(fakeAssignment(1, { cores: 8, wallSec: null }), 8, clock.now()).jobFeatures;
    expect(whole).toMatchObject({ allocated_cpu: 8, cpu_limit_secs: 172_800, max_rss_bytes: 16 * GiB, max_swap_bytes: 8 * GiB });
    // a 2-core payload without --memory-mb: a quarter of each
    const part = res.payloadContext(fakeAssignment(2, { cores: 2, wallSec: 3600 }), 2, clock.now()).jobFeatures;
    expect(part).toMatchObject({ allocated_cpu: 2, cpu_limit_secs: 7200, max_rss_bytes: 4 * GiB, max_swap_bytes: 2 * GiB, wall_limit_secs: 3600 });
    const long = res.payloadContext(fakeAssignment(3, { cores: 2, wallSec: null }), 2, clock.now()).jobFeatures;
    expect(long.cpu_limit_secs).toBe(172_800 / 4);
    // a payload that declared its memory keeps it, within what the pilot has
    const big = res.payloadContext(fakeAssignment(4, { cores: 1, memoryMb: 12_288 }), 1, clock.now()).jobFeatures;
    expect(big.max_rss_bytes).toBe(12 * GiB);
    const tooBig = res.payloadContext(fakeAssignment(5, { cores: 1, memoryMb: 64_000 }), 1, clock.now()).jobFeatures;
    expect(tooBig.max_rss_bytes).toBe(16 * GiB);
  });

  it('Vac (hs06_job 42 for 4 cores), pilot --cores 2: the node shows 21, a 1-core payload 10.5', async () => {
    const res = await pilotAt(vac(nowSec, { processors: 4, hs06PerProcessor: 10.5 }), { cores: '2' }, 4);
    const f = res.payloadContext(fakeAssignment(1, { cores: 1 }), 1, clock.now()).jobFeatures;
    expect(f.hs06_job).toBe(10.5);
    expect(res.pilotLimits().hs06).toBe(21);
    // the payloads together never get more than the site gave the pilot (4 cores' rss for 2 cores offered: all of it)
    const two = [1, 2].map((id) => res.payloadContext(fakeAssignment(id, { cores: 1, wallSec: null }), 1, clock.now()).jobFeatures);
    expect(two.reduce((n, j) => n + (j.max_rss_bytes as number), 0)).toBeLessThanOrEqual(vac(nowSec, { processors: 4 }).job.max_rss_bytes as number);
    expect(two.reduce((n, j) => n + (j.cpu_limit_secs as number), 0)).toBeLessThanOrEqual(vac(nowSec, { processors: 4 }).job.cpu_limit_secs as number);
  });

  it('only machine features (hs06 160 for total_cpu 16), pilot --cores 32 over-committing: HS06 never above the site’s', async () => {
    const res = await pilotAt({ machine: { total_cpu: 16, hs06: 160 }, job: {} }, { cores: '32' }, 16);
    expect(res.pilotLimits().hs06).toBe(160);
    expect(res.payloadContext(fakeAssignment(1, { cores: 4 }), 4, clock.now()).jobFeatures.hs06_job).toBe(20);
  });
});
