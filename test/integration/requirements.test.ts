/**
 * Requirements and capabilities end to end: the real server and two real
 * agents with different declared capabilities — one with two "GPUs"
 * declared by config (this machine has none), one at a site with a tag.
 * Every payload lands only where its requirements hold; no two payloads
 * hold one GPU at once (from the payloads' own records of
 * CUDA_VISIBLE_DEVICES); a payload nobody can run says why in `job ID`.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PayloadView, PilotView } from '../../src/protocol/index.js';
import { ADMIN_TOKEN, FIXTURES, SERVER, admin, killAll, runCommand, startAgent, startServer, tempDir, waitFor, type Server } from './harness.js';

interface Run {
  id: number;
  cuda: string;
  nvidia: string;
  jobfeatures: string;
  start: bigint;
  end: bigint;
}

/** The payloads' own records (test/fixtures/gpu/gpu-record.sh). */
function runs(log: string): Run[] {
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [id, cuda, nvidia, jobfeatures, start, end] = line.split(' ');
      const value = (field: string | undefined) => field!.slice(field!.indexOf('=') + 1);
      return { id: Number(id), cuda: value(cuda), nvidia: value(nvidia), jobfeatures: value(jobfeatures), start: BigInt(start!), end: BigInt(end!) };
    });
}

describe('payload requirements on two agents with different capabilities', () => {
  const tmp = tempDir();
  const log = path.join(tmp.dir, 'gpu-runs.log');
  let server: Server;
  let api: ReturnType<typeof admin>;
  const record = (seconds: number) => [path.join(FIXTURES, 'gpu', 'gpu-record.sh'), log, String(seconds)];
  const cli = (command: string, ...args: string[]) => runCommand([SERVER, command, '--server', server.url, ...args], { VMPILOT_TOKEN: ADMIN_TOKEN });
  const gpuPayloads: number[] = [];
  const sitePayloads: number[] = [];
  const cpuPayloads: number[] = [];
  let nobody: { gpuAndTag: number; threeGpus: number };
  let pilots: { gpu: PilotView; site: PilotView };

  beforeAll(async () => {
    server = await startServer(path.join(tmp.dir, 'server.db'));
    api = admin(server.url);
    // through the real CLI, flags and all
    for (let i = 0; i < 6; i++) {
      const r = await cli('submit', '--gpus', '1', '--name', `gpu${i}`, '--', ...record(1));
      expect(r.code, r.stderr).toBe(0);
      gpuPayloads.push(Number(r.stdout.trim()));
    }
    const twoGpus = await cli('submit', '--gpus', '2', '--name', 'gpu-pair', '--', ...record(0.5));
    gpuPayloads.push(Number(twoGpus.stdout.trim()));
    for (const name of ['at-site-a', 'at-site-b']) {
      const r = await cli('submit', '--site', 'SITE-B', '--name', name, '--', ...record(0.5));
      sitePayloads.push(Number(r.stdout.trim()));
    }
    sitePayloads.push(await api.submit({ command: record(0.5), name: 'tagged', requirements: { tag: ['cvmfs'], notSite: ['SITE-X'] } }));
    for (let i = 0; i < 4; i++) cpuPayloads.push(await api.submit({ command: record(0.5), name: `cpu${i}` }));
    nobody = {
      gpuAndTag: await api.submit({ command: ['true'], name: 'gpu-and-tag', requirements: { gpus: 1, tag: ['cvmfs'] } }),
      threeGpus: await api.submit({ command: ['true'], name: 'three-gpus', requirements: { gpus: 3 } }),
    };
    startAgent(server.url, { cores: 4, idleTimeoutSec: 120, stateDir: path.join(tmp.dir, 'gpu-agent'), extra: ['--gpus', '2'] });
    startAgent(server.url, { cores: 4, idleTimeoutSec: 120, stateDir: path.join(tmp.dir, 'site-agent'), extra: ['--site', 'SITE-B', '--tag', 'cvmfs'] });
    const runnable = [...gpuPayloads, ...sitePayloads, ...cpuPayloads];
    await waitFor(
      'every payload some pilot can run is done',
      async () => {
        const jobs = await api.jobs();
        return runnable.every((id) => jobs.find((j) => j.id === id)?.state === 'done');
      },
      60_000,
    );
    const all = await api.pilots();
    const gpu = all.find((p) => (p.capabilities?.gpus ?? []).length > 0)!;
    const site = all.find((p) => p.capabilities?.site === 'SITE-B')!;
    pilots = { gpu, site };
  });

  afterAll(async () => {
    killAll();
    await server?.stop();
    tmp.cleanup();
  });

  it('the pilots declare what they were given', () => {
    expect(pilots.gpu.capabilities).toMatchObject({ gpus: [{ id: '0' }, { id: '1' }], tags: [], arch: 'x86_64' });
    expect(pilots.gpu.capabilities).not.toHaveProperty('site');
    expect(pilots.site.capabilities).toMatchObject({ site: 'SITE-B', tags: ['cvmfs'], gpus: [] });
  });

  it('runs each payload only where its requirements hold', async () => {
    const jobs = new Map((await api.jobs()).map((j) => [j.id, j]));
    for (const id of gpuPayloads) expect(jobs.get(id)!.pilotId, `GPU payload ${id}`).toBe(pilots.gpu.id);
    for (const id of sitePayloads) expect(jobs.get(id)!.pilotId, `site payload ${id}`).toBe(pilots.site.id);
    for (const id of cpuPayloads) expect([pilots.gpu.id, pilots.site.id]).toContain(jobs.get(id)!.pilotId);
  });

  it('gives each GPU payload its own devices, and never one device to two payloads at once', async () => {
    const jobs = new Map((await api.jobs()).map((j): [number, PayloadView] => [j.id, j]));
    const all = runs(log);
    const gpuRuns = all.filter((r) => gpuPayloads.includes(r.id));
    expect(gpuRuns).toHaveLength(gpuPayloads.length);
    for (const r of gpuRuns) {
      const want = jobs.get(r.id)!.requirements!.gpus!;
      const ids = r.cuda.split(',');
      expect(ids, `payload ${r.id}`).toHaveLength(want);
      expect(new Set(ids).size).toBe(want);
      for (const d of ids) expect(['0', '1']).toContain(d);
      expect(r.nvidia).toBe(r.cuda);
      expect(r.jobfeatures).toBe(r.cuda);
    }
    // every other payload on the GPU node sees none; on the other node nothing is set
    for (const r of all.filter((x) => !gpuPayloads.includes(x.id))) {
      const onGpuNode = jobs.get(r.id)!.pilotId === pilots.gpu.id;
      expect(r.cuda, `payload ${r.id}`).toBe(onGpuNode ? '' : 'unset');
    }
    // from the payloads' own clocks: no device in two runs that overlap
    for (const a of gpuRuns) {
      for (const b of gpuRuns) {
        if (a.id >= b.id) continue;
        const shared = a.cuda.split(',').filter((d) => b.cuda.split(',').includes(d));
        if (shared.length === 0) continue;
        const overlap = a.start < b.end && b.start < a.end;
        expect(overlap, `payloads ${a.id} and ${b.id} both held GPU ${shared.join(',')} at once`).toBe(false);
      }
    }
    // and the two GPUs did serve two payloads side by side (so the check above means something)
    const sideBySide = gpuRuns.some((a) => gpuRuns.some((b) => a.id < b.id && a.start < b.end && b.start < a.end));
    expect(sideBySide).toBe(true);
  });

  it('says in job ID why a payload nobody can run is waiting', async () => {
    const three = await cli('job', String(nobody.threeGpus));
    expect(three.code, three.stderr).toBe(0);
    expect(three.stdout).toMatch(/^requires\s+gpus=3$/m);
    expect(three.stdout).toMatch(/^waiting\s+no live pilot has 3 GPUs \(live pilots: (2 GPUs, no GPU|no GPU, 2 GPUs)\)$/m);
    const both = await api.job(nobody.gpuAndTag);
    expect(both.state).toBe('queued');
    expect(both.waiting).toBe(
      [pilots.gpu, pilots.site]
        .sort((a, b) => a.id - b.id)
        .map((p) => `pilot ${p.id} lacks ${p.id === pilots.gpu.id ? 'tag cvmfs' : 'a GPU'}`)
        .join('; ')
        .replace(/^/, 'no live pilot has all of it at once: '),
    );
  });
});
