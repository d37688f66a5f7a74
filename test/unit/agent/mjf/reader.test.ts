import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseFeature } from '../../../../src/agent/mjf/keys.js';
import { FeaturesReader } from '../../../../src/agent/mjf/reader.js';
import { captureLogger } from '../log-capture.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'vmp-mjf-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function features(side: string, values: Record<string, string>): Promise<string> {
  const d = path.join(dir, side);
  await mkdir(d, { recursive: true });
  for (const [k, v] of Object.entries(values)) await writeFile(path.join(d, k), v);
  return d;
}

describe('parseFeature', () => {
  it('parses integers, decimals and strings, and says what is wrong with a bad value', () => {
    expect(parseFeature('int', '42\n')).toEqual({ ok: true, value: 42 });
    expect(parseFeature('number', '10.5')).toEqual({ ok: true, value: 10.5 });
    expect(parseFeature('string', ' job.123 ')).toEqual({ ok: true, value: 'job.123' });
    expect(parseFeature('int', 'soon')).toEqual({ ok: false, problem: '"soon" is not a non-negative integer' });
    expect(parseFeature('int', '-5').ok).toBe(false);
    expect(parseFeature('int', '')).toEqual({ ok: false, problem: 'empty value' });
    expect(parseFeature('int', '99999999999999999999').ok).toBe(false);
    expect(parseFeature('number', '1e9').ok).toBe(false);
  });
});

describe('FeaturesReader from directories', () => {
  it('reads every key of the specification; missing keys are simply absent', async () => {
    const machine = await features('m', { total_cpu: '8\n', hs06: '80.5\n', shutdowntime: '1800000000\n', grace_secs: '120', jobslots: '8', phys_cores: '4', log_cores: '8' });
    const job = await features('j', {
      allocated_cpu: '4',
      hs06_job: '40.25',
      shutdowntime_job: '1799999000',
      grace_secs_job: '60',
      jobstart_secs: '1799990000',
      job_id: 'site-42.ce',
      wall_limit_secs: '86400',
      cpu_limit_secs: '345600',
      max_rss_bytes: '8589934592',
      max_swap_bytes: '0',
      scratch_limit_bytes: '10737418240',
    });
    const { log, lines } = captureLogger();
    const r = await new FeaturesReader({ machine, job }, log).readAll();
    expect(r.machine).toEqual({ total_cpu: 8, hs06: 80.5, shutdowntime: 1800000000, grace_secs: 120, jobslots: 8, phys_cores: 4, log_cores: 8 });
    expect(r.job).toMatchObject({ allocated_cpu: 4, hs06_job: 40.25, job_id: 'site-42.ce', max_swap_bytes: 0, scratch_limit_bytes: 10737418240 });
    expect(Object.keys(r.job)).toHaveLength(11);
    expect(r.sources).toEqual({ machine, job });
    expect(r.problems).toEqual([]);
    expect(lines.filter((l) => l.level === 40)).toEqual([]);
  });

  it('ignores a malformed or unreadable value with one clear log line, however often it is read', async () => {
    const machine = await features('m', { total_cpu: 'eight', shutdowntime: '1800000000' });
    await mkdir(path.join(machine, 'hs06')); // a directory where a file should be: unreadable
    const { log, lines } = captureLogger();
    const reader = new FeaturesReader({ machine, job: path.join(dir, 'no-such-dir') }, log);
    const r = await reader.readAll();
    await reader.readAll();
    expect(r.machine).toEqual({ shutdowntime: 1800000000 });
    expect(r.job).toEqual({});
    expect(r.problems).toHaveLength(2);
    expect(r.problems.join('\n')).toContain('total_cpu');
    expect(r.problems.join('\n')).toContain('"eight" is not a non-negative integer');
    const warned = lines.filter((l) => l.msg === 'bad Machine/Job Features value ignored');
    expect(warned.map((l) => l.key).sort()).toEqual(['hs06', 'total_cpu']);
  });

  it('re-reads shutdowntime and shutdowntime_job live, keeping the other keys', async () => {
    const machine = await features('m', { total_cpu: '8', shutdowntime: '1800000000' });
    const job = await features('j', { allocated_cpu: '2', shutdowntime_job: '1800000500' });
    const reader = new FeaturesReader({ machine, job }, captureLogger().log);
    await reader.readAll();
    await writeFile(path.join(machine, 'shutdowntime'), '1700000000\n');
    await writeFile(path.join(machine, 'total_cpu'), '64\n'); // not a live key: not re-read
    await rm(path.join(job, 'shutdowntime_job'));
    const live = await reader.readLive();
    expect(live.machine).toEqual({ total_cpu: 8, shutdowntime: 1700000000 });
    expect(live.job).toEqual({ allocated_cpu: 2 });
  });
});

describe('FeaturesReader over HTTP on 127.0.0.1', () => {
  let server: http.Server;
  let base: string;
  const served: Record<string, string> = {};
  const requests: string[] = [];
  beforeEach(async () => {
    requests.length = 0;
    for (const k of Object.keys(served)) delete served[k];
    server = http.createServer((req, res) => {
      requests.push(req.url ?? '');
      const key = (req.url ?? '').replace(/^\/mf\//, '');
      if (key === 'grace_secs') {
        res.writeHead(500).end('boom');
        return;
      }
      const v = served[key];
      if (v === undefined) res.writeHead(404).end();
      else res.writeHead(200, { 'content-type': 'text/plain' }).end(v);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mf/`;
  });
  afterEach(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('reads <base>/<key>, treats 404 as absent and a server error as a logged problem, and follows a moved shutdowntime', async () => {
    served.total_cpu = '16\n';
    served.shutdowntime = '1800000000\n';
    const { log, lines } = captureLogger();
    const reader = new FeaturesReader({ machine: base, job: null }, log);
    const first = await reader.readAll();
    expect(first.machine).toEqual({ total_cpu: 16, shutdowntime: 1800000000 });
    expect(requests).toContain('/mf/total_cpu');
    expect(first.problems).toEqual([expect.stringContaining('HTTP 500')]);
    expect(lines.some((l) => l.key === 'grace_secs')).toBe(true);
    served.shutdowntime = '1790000000\n';
    requests.length = 0;
    const live = await reader.readLive();
    expect(live.machine.shutdowntime).toBe(1790000000);
    expect(requests).toEqual(['/mf/shutdowntime']);
  });

  it('a server that is gone is a logged problem, not an error', async () => {
    const reader = new FeaturesReader({ machine: 'http://127.0.0.1:1/mf', job: null }, captureLogger().log);
    const r = await reader.readAll();
    expect(r.machine).toEqual({});
    expect(r.problems.length).toBeGreaterThan(0);
  });
});
