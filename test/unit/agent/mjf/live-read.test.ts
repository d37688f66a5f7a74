/**
 * Re-reading the keys sites move (issue 22, points 1 and 2): cheap enough to
 * do every fraction of the grace (a stat for a directory, a conditional GET
 * for a URL), and a failed read keeps the last value known, marked stale.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FeaturesReader, realFeatureFetcher, type FeatureFetcher, type RawFeature } from '../../../../src/agent/mjf/reader.js';
import { FakeClock } from '../../../../src/shared/clock.js';
import { captureLogger } from '../log-capture.js';
import { gridka, htcondor, SiteServer, vac, vcycle, writeSide } from './sites.js';

let dir: string;
let servers: SiteServer[] = [];
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'vmp-mjf-live-'));
});
afterEach(async () => {
  for (const s of servers) await s.stop();
  servers = [];
  await rm(dir, { recursive: true, force: true });
});

const clock = new FakeClock();
const nowSec = Math.floor(clock.now() / 1000);

/** The real fetcher, recording what each fetch answered. */
function counting(): { fetcher: FeatureFetcher; kinds: Record<string, RawFeature['kind'][]> } {
  const kinds: Record<string, RawFeature['kind'][]> = {};
  const fetcher: FeatureFetcher = async (base, key, validator) => {
    const r = await realFeatureFetcher(base, key, validator);
    (kinds[key] ??= []).push(r.kind);
    return r;
  };
  return { fetcher, kinds };
}

async function serve(site: { machine: Record<string, string | number>; job: Record<string, string | number> }, validators: boolean) {
  await writeSide(path.join(dir, 'www', 'machinefeatures'), site.machine);
  await writeSide(path.join(dir, 'www', 'jobfeatures'), site.job);
  const server = await new SiteServer(path.join(dir, 'www'), validators).start();
  servers.push(server);
  return { server, machine: `${server.url}/machinefeatures`, job: `${server.url}/jobfeatures`, file: (side: string, key: string) => path.join(dir, 'www', side, key) };
}

describe('watching the keys sites move is cheap', () => {
  it('a directory (Grid Engine, HTCondor): an unchanged key is only stat-ed; a rewrite in the same second is read', async () => {
    const site = htcondor(nowSec);
    const machine = await writeSide(path.join(dir, 'mf'), site.machine);
    const job = await writeSide(path.join(dir, 'jf'), { ...site.job, shutdowntime_job: nowSec + 3600 });
    const { fetcher, kinds } = counting();
    const reader = new FeaturesReader({ machine, job }, captureLogger().log, fetcher, () => clock.now());
    await reader.readAll();
    for (let i = 0; i < 3; i++) await reader.readLive();
    expect(kinds.shutdowntime).toEqual(['found', 'unchanged', 'unchanged', 'unchanged']);
    expect(kinds.shutdowntime_job).toEqual(['found', 'unchanged', 'unchanged', 'unchanged']);
    // the site moves it: same length, within the same second (a rename into place and an in-place write)
    await writeFile(path.join(machine, 'shutdowntime'), `${nowSec + 45}\n`);
    await writeFile(path.join(job, '.new'), `${nowSec + 35}\n`);
    const { rename } = await import('node:fs/promises');
    await rename(path.join(job, '.new'), path.join(job, 'shutdowntime_job'));
    const moved = await reader.readLive();
    expect(kinds.shutdowntime!.at(-1)).toBe('found');
    expect(moved.machine.shutdowntime).toBe(nowSec + 45);
    expect(moved.job.shutdowntime_job).toBe(nowSec + 35);
    expect(moved.stale).toEqual({ machine: {}, job: {} });
  });

  it('a URL with validators (Vcycle behind Apache): re-reads are conditional GETs answered 304 until the site moves shutdowntime', async () => {
    const s = await serve(vcycle(nowSec), true);
    const reader = new FeaturesReader({ machine: s.machine, job: s.job }, captureLogger().log, realFeatureFetcher, () => clock.now());
    const first = await reader.readAll();
    expect(first.job).toMatchObject({ cpu_limit_secs: 172_800, allocated_cpu: 8 });
    const full = s.server.counts.full;
    for (let i = 0; i < 5; i++) await reader.readLive();
    expect(s.server.counts.notModified).toBe(10);
    expect(s.server.counts.full).toBe(full);
    await writeFile(s.file('machinefeatures', 'shutdowntime'), `${nowSec + 45}\n`);
    const moved = await reader.readLive();
    expect(moved.machine.shutdowntime).toBe(nowSec + 45);
    expect(s.server.counts.full).toBe(full + 1);
  });

  it('a URL without validators (Vac): every re-read is a plain GET, and still follows the move', async () => {
    const s = await serve(vac(nowSec), false);
    const reader = new FeaturesReader({ machine: s.machine, job: s.job }, captureLogger().log, realFeatureFetcher, () => clock.now());
    await reader.readAll();
    await writeFile(s.file('machinefeatures', 'shutdowntime'), `${nowSec + 45}\n`);
    expect((await reader.readLive()).machine.shutdowntime).toBe(nowSec + 45);
    expect(s.server.counts.notModified).toBe(0);
  });
});

describe('a failed read keeps the last value known', () => {
  it("the site's MJF server down (Vac): shutdowntime and shutdowntime_job are kept, marked stale, with one log line each; back up, fresh again", async () => {
    const site = vac(nowSec, { shutdownInSec: 600 });
    const s = await serve(site, false);
    const { log, lines } = captureLogger();
    const reader = new FeaturesReader({ machine: s.machine, job: s.job }, log, realFeatureFetcher, () => clock.now());
    await reader.readAll();
    const readAt = clock.now();
    await clock.advance(5000);
    s.server.down();
    const down = await reader.readLive();
    await reader.readLive();
    expect(down.machine.shutdowntime).toBe(nowSec + 600);
    expect(down.job.shutdowntime_job).toBe(nowSec + 600);
    expect(down.stale.machine.shutdowntime).toEqual({ problem: expect.stringContaining('HTTP 503'), since: readAt + 5000, readAt });
    expect(Object.keys(down.stale.job)).toEqual(['shutdowntime_job']);
    const kept = lines.filter((l) => l.msg === 'Machine/Job Features read failed: last known value kept');
    expect(kept.map((l) => l.key).sort()).toEqual(['shutdowntime', 'shutdowntime_job']);
    s.server.up();
    const back = await reader.readLive();
    expect(back.stale).toEqual({ machine: {}, job: {} });
    expect(back.machine.shutdowntime).toBe(nowSec + 600);
  });

  it('Vcycle behind Apache failing, then answering 304 to the conditional GET: the value stays, and is fresh again', async () => {
    const s = await serve(vcycle(nowSec), true);
    const reader = new FeaturesReader({ machine: s.machine, job: s.job }, captureLogger().log, realFeatureFetcher, () => clock.now());
    await reader.readAll();
    s.server.down();
    expect((await reader.readLive()).stale.machine.shutdowntime?.problem).toMatch(/HTTP 503$/);
    s.server.up();
    const back = await reader.readLive();
    expect(s.server.counts.notModified).toBe(2);
    expect(back.stale).toEqual({ machine: {}, job: {} });
    expect(back.machine.shutdowntime).toBe(nowSec + 172_800);
  });

  it('a server that is gone (connection refused): the value stays', async () => {
    const s = await serve(vcycle(nowSec), true);
    const reader = new FeaturesReader({ machine: s.machine, job: s.job }, captureLogger().log, realFeatureFetcher, () => clock.now());
    await reader.readAll();
    await s.server.stop();
    servers = [];
    const gone = await reader.readLive();
    expect(gone.machine.shutdowntime).toBe(nowSec + 172_800);
    expect(gone.stale.machine.shutdowntime?.problem).toMatch(/GET http:\/\/127\.0\.0\.1:\d+\/machinefeatures\/shutdowntime: fetch failed/);
  });

  it('a value half-written by a Grid Engine prologue (an empty file) keeps the last one; a 404 or a removed file is a shutdown called off', async () => {
    const site = gridka(nowSec);
    const machine = await writeSide(path.join(dir, 'mf'), { ...site.machine, shutdowntime: nowSec + 900 });
    const reader = new FeaturesReader({ machine, job: null }, captureLogger().log, realFeatureFetcher, () => clock.now());
    await reader.readAll();
    await writeFile(path.join(machine, 'shutdowntime'), '');
    const torn = await reader.readLive();
    expect(torn.machine.shutdowntime).toBe(nowSec + 900);
    expect(torn.stale.machine.shutdowntime?.problem).toBe('empty value');
    await rm(path.join(machine, 'shutdowntime'));
    const off = await reader.readLive();
    expect(off.machine).not.toHaveProperty('shutdowntime');
    expect(off.stale.machine).toEqual({});
  });

  it('values known before (a restart, or `vmpilot mjf` beside the running agent) are kept when the first read fails', async () => {
    const s = await serve(vac(nowSec, { shutdownInSec: 300 }), false);
    const agent = new FeaturesReader({ machine: s.machine, job: s.job }, captureLogger().log, realFeatureFetcher, () => clock.now());
    await agent.readAll();
    const known = agent.known();
    s.server.down();
    const later = new FeaturesReader({ machine: s.machine, job: s.job }, captureLogger().log, realFeatureFetcher, () => clock.now());
    later.seed(known);
    const r = await later.readAll();
    expect(r.machine.shutdowntime).toBe(nowSec + 300);
    expect(r.stale.machine.shutdowntime).toMatchObject({ readAt: clock.now() });
    // values known for another source are not taken
    const elsewhere = new FeaturesReader({ machine: `${s.server.url}/other`, job: null }, captureLogger().log, realFeatureFetcher, () => clock.now());
    elsewhere.seed(known);
    expect((await elsewhere.readAll()).machine).toEqual({});
  });
});
