import { describe, expect, it } from 'vitest';
import { dayProblem, jobsFromYaml } from '../../../../src/cli/admin/bulk.js';
import { instructionText, pilotDetailText } from '../../../../src/cli/admin/pilot-detail.js';
import { apiUrl } from '../../../../src/protocol/paths.js';
import type { PilotView } from '../../../../src/protocol/index.js';

describe('dayProblem', () => {
  it('accepts days that exist and names what is wrong with the others', () => {
    expect(['2025-01-31', '2024-02-29', '2025-12-31'].map(dayProblem)).toEqual([null, null, null]);
    expect(dayProblem('2025-13-01')).toBe('has no month 13 (months are 01 to 12)');
    expect(dayProblem('2025-00-10')).toBe('has no month 00 (months are 01 to 12)');
    expect(dayProblem('2025-02-29')).toBe('has no day 29: 2025-02 has 28 days');
    expect(dayProblem('2025-04-31')).toBe('has no day 31: 2025-04 has 30 days');
    expect(dayProblem('25-1-1')).toBe('is not a day YYYY-MM-DD');
  });
});

describe('jobsFromYaml with submit --group', () => {
  const file = 'defaults: { wallSec: 60 }\npayloads:\n  - { command: [a] }\n  - { command: [b], group: cms }\n';
  it("gives the payloads that name no group --group's; a payload's own group wins", () => {
    expect(jobsFromYaml(file, 'jobs.yaml', { group: 'atlas' }).map((p) => p.group)).toEqual(['atlas', 'cms']);
    expect(jobsFromYaml(file, 'jobs.yaml').map((p) => p.group)).toEqual([undefined, 'cms']);
  });
  it("wins over the file's defaults, as a flag wins over a file", () => {
    const withDefault = 'defaults: { group: lhcb }\npayloads:\n  - { command: [a] }\n  - { command: [b], group: cms }\n';
    expect(jobsFromYaml(withDefault, 'jobs.yaml', { group: 'atlas' }).map((p) => p.group)).toEqual(['atlas', 'cms']);
    expect(jobsFromYaml(withDefault, 'jobs.yaml').map((p) => p.group)).toEqual(['lhcb', 'cms']);
  });
});

describe('apiUrl', () => {
  it("keeps the server URL's own path as the base of every route", () => {
    expect(apiUrl('http://host/api', '/v1/payloads').href).toBe('http://host/api/v1/payloads');
    expect(apiUrl('http://host/api/', '/v1/payloads?state=queued').href).toBe('http://host/api/v1/payloads?state=queued');
    expect(apiUrl('https://host:8443', '/v1/register').href).toBe('https://host:8443/v1/register');
    expect(apiUrl(new URL('http://host/a/b//'), '/metrics').href).toBe('http://host/a/b/metrics');
  });
});

describe('pilot N as text', () => {
  const now = 1_700_000_100_000;
  const pilot: PilotView = {
    id: 3, hostname: 'wn1', version: '0.1.0', state: 'running', cores: 8, coresUsed: 4, coresReported: 2, memoryMb: 16000,
    externalId: '4242', labels: { batch: 'slurm' }, registeredAt: now - 60_000, lastContactAt: now - 2_000, lastHeartbeatAt: now - 20_000,
    deadline: null, shutdownCode: null, shutdownMessage: null, isolation: 'bwrap',
    lastHeartbeat: {
      at: now - 20_000, state: 'serving', version: '0.1.0', uptimeSec: 3600, cores: { total: 8, used: 2, free: 6 },
      memoryMb: { total: 16000, used: 3000 }, load: [1.5, 1.25, 1], cpuUse: 1.9, diskFreeMb: 40000,
      payloads: [{ id: 7, state: 'running', cores: 2, rssMb: 512 }], features: { hs06: 100 },
    },
  };
  it('says the cores the server assigned beside what the last heartbeat said, and the heartbeat figures', () => {
    const text = pilotDetailText({ pilot, history: [], instructions: [], payloads: [] }, now);
    expect(text).toMatch(/^cores\s+4 of 8 assigned by the server; 2 in use at the last heartbeat$/m);
    expect(text).toMatch(/^last contact\s+\S+ \(2s ago\)$/m);
    expect(text).toMatch(/^load\s+1\.50 1\.25 1\.00$/m);
    expect(text).toMatch(/^cpu use\s+1\.90 cores$/m);
    expect(text).toMatch(/^memory\s+3000 of 16000 MB used$/m);
    expect(text).toMatch(/^disk free\s+40000 MB$/m);
    expect(text).toMatch(/^payloads\s+7 \(running, 2 cores, 512 MB\)$/m);
    expect(text).toMatch(/^hs06\s+100$/m);
    expect(text).toMatch(/--- payloads ---\nnone$/);
  });
  it('says the relay it came through and what it said it is and has, or - for a pilot that came directly and said nothing', () => {
    const relayed: PilotView = {
      ...pilot, relay: { name: 'login01', site: 'CC-IN2P3' },
      capabilities: { arch: 'x86_64', cpuLevel: 3, platform: 'el9', site: 'CC-IN2P3', tags: ['cvmfs', 'infiniband'], gpus: [{ id: '0' }, { id: '1' }], scratchMb: 38000 },
    };
    const text = pilotDetailText({ pilot: relayed, history: [], instructions: [], payloads: [] }, now);
    expect(text).toMatch(/^via\s+CC-IN2P3\/login01$/m);
    expect(text).toMatch(/^capabilities\s+x86_64-v3 el9 site=CC-IN2P3 tags=cvmfs,infiniband gpus=2 scratch=38000MiB$/m);
    const direct = pilotDetailText({ pilot, history: [], instructions: [], payloads: [] }, now);
    expect(direct).toMatch(/^via\s+-$/m);
    expect(direct).toMatch(/^capabilities\s+-$/m);
  });
  it('shows a pilot with no heartbeat yet, and instructions in a few words', () => {
    const fresh = { ...pilot, lastHeartbeat: null, lastHeartbeatAt: null, coresReported: null };
    const text = pilotDetailText({ pilot: fresh, history: null, instructions: null, payloads: [] }, now);
    expect(text).toMatch(/^last heartbeat\s+none yet$/m);
    expect(text).toMatch(/^cores\s+4 of 8 assigned by the server$/m);
    expect(text).not.toMatch(/--- last heartbeat ---/);
    expect(instructionText({ id: 1, type: 'halt', code: 400, reason: 'banned' })).toBe('halt 400: banned');
    expect(instructionText({ id: 2, type: 'kill-payload', payloadId: 9 })).toBe('kill-payload 9');
    expect(instructionText({ id: 3, type: 'set', idleTimeoutSec: 60 })).toBe('set idleTimeoutSec=60');
    expect(instructionText({ id: 4, type: 'drain' })).toBe('drain');
  });
});
