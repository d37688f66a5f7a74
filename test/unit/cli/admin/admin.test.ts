import { describe, expect, it } from 'vitest';
import { httpError } from '../../../../src/cli/admin/client.js';
import { submitRequest } from '../../../../src/cli/admin/commands.js';
import { coreSecSummary, duration, payloadTable, pilotTable } from '../../../../src/cli/admin/format.js';
import type { PayloadView, PilotView } from '../../../../src/protocol/index.js';
import { exitStatusForError, isVmpilotError } from '../../../../src/shared/errors.js';

const none = { env: [] as string[] };

describe('submitRequest', () => {
  it('builds the request from the flags', () => {
    expect(
      submitRequest(['/bin/sim', '-n', '3'], { ...none, cores: '2-8', memoryMb: '2000', wall: '3600', group: 'atlas', priority: '5', env: ['A=1', 'B=x=y'] }),
    ).toEqual({
      command: ['/bin/sim', '-n', '3'],
      cores: { min: 2, max: 8, wholeNode: false },
      memoryMb: 2000,
      wallSec: 3600,
      group: 'atlas',
      priority: 5,
      env: { A: '1', B: 'x=y' },
    });
    expect(submitRequest(['x'], { ...none, wholeNode: true }).cores).toEqual({ min: 1, max: 1, wholeNode: true });
    // --no-requeue (commander gives requeue: false); the default leaves the field out
    expect(submitRequest(['x'], { ...none, requeue: false })).toEqual({ command: ['x'], requeue: false });
    expect(submitRequest(['x'], { ...none, requeue: true })).toEqual({ command: ['x'] });
  });

  it('names the flag and the value of a bad option (usage error, exit status 2)', () => {
    const cases: [object, string][] = [
      [{ cores: 'four' }, '--cores "four" is not N, MIN-MAX or "whole"'],
      [{ cores: '0' }, '--cores "0": at least 1 core'],
      [{ cores: '8-2' }, '--cores "8-2"'],
      [{ cores: '2', wholeNode: true }, '--cores and --whole-node'],
      [{ memoryMb: '1.5' }, '--memory-mb "1.5"'],
      [{ wall: '-1' }, '--wall "-1"'],
      [{ priority: 'high' }, '--priority "high"'],
      [{ env: ['1A=x'] }, '--env "1A=x"'],
    ];
    for (const [o, text] of cases) {
      try {
        submitRequest(['x'], { ...none, ...o });
        expect.unreachable(text);
      } catch (err) {
        expect(isVmpilotError(err, 'VMP_USAGE')).toBe(true);
        expect(exitStatusForError(err)).toBe(2);
        expect((err as Error).message).toContain(text);
        // the value is named once, after its flag
        expect((err as Error).message.match(/"[^"]*"/g)?.filter((q) => q !== '"whole"').length ?? 0).toBeLessThanOrEqual(1);
      }
    }
  });
});

describe('httpError', () => {
  it("keeps the server's code and message", () => {
    const err = httpError(400, JSON.stringify({ error: { code: 'VMP_BAD_REQUEST', message: 'body.cores.min must be >= 1' } }), 'POST /v1/payloads');
    expect(err.code).toBe('VMP_BAD_REQUEST');
    expect(err.message).toContain('body.cores.min must be >= 1');
    expect(exitStatusForError(err)).toBe(3);
  });

  it('falls back on the HTTP status when the body is not our envelope', () => {
    expect(httpError(401, 'nope', 'GET /').code).toBe('VMP_UNAUTHORIZED');
    expect(httpError(404, '', 'GET /').code).toBe('VMP_NOT_FOUND');
    expect(httpError(502, '<html>', 'GET /').code).toBe('VMP_SERVER');
    expect(httpError(500, JSON.stringify({ error: { code: 'VMP_INTERNAL', message: 'x' } }), 'GET /').code).toBe('VMP_SERVER');
  });
});

describe('tables', () => {
  const now = 1_700_000_100_000;
  it('shows payloads with requested/allocated cores, exit code and wall time', () => {
    const p: PayloadView = {
      id: 7, name: 'sim', group: 'atlas', command: ['sim'], cores: { min: 2, max: 8, wholeNode: false }, memoryMb: null, wallSec: null,
      priority: 0, state: 'done', pilotId: 3, allocatedCores: 4, exitCode: 0, signal: null, submittedAt: now - 100_000,
      assignedAt: now - 90_000, startedAt: now - 90_000, endedAt: now - 15_000, attempts: 1, message: null,
    };
    const lines = payloadTable([p], now).split('\n');
    expect(lines[1]).toMatch(/^7\s+sim\s+atlas\s+done\s+2-8\/4\s+3\s+0\s+1m15s\s+1$/);
    // a payload the infrastructure stopped twice before it ran to the end
    expect(payloadTable([{ ...p, attempts: 3, evictions: 2 }], now).split('\n')[1]).toMatch(/\s3 \(2 evicted\)$/);
  });

  it("sums the listed payloads' core-seconds by how they ended, under the jobs table", () => {
    const base = { command: ['x'], cores: { min: 1, max: 1, wholeNode: false }, memoryMb: null, wallSec: null, priority: 0, pilotId: 1, allocatedCores: 1, exitCode: null, signal: null, submittedAt: 0, assignedAt: null, startedAt: null, endedAt: null, attempts: 1, message: null, name: 'x', group: 'g' };
    const list: PayloadView[] = [
      { ...base, id: 1, state: 'done', coreSec: 100, evictions: 1, evictedCoreSec: 30 },
      { ...base, id: 2, state: 'failed', coreSec: 5 },
      { ...base, id: 3, state: 'cancelled', coreSec: 2.5 },
      { ...base, id: 4, state: 'queued', coreSec: 0, evictions: 1, evictedCoreSec: 12 },
      { ...base, id: 5, state: 'running' },
    ];
    expect(coreSecSummary(list)).toBe('core-seconds: done 100.0, failed 5.0, cancelled 2.5, evicted 42.0 (2 attempts)');
  });

  it('shows pilots with cores used/total, job id, labels, last contact and shutdown', () => {
    const p: PilotView = {
      id: 3, hostname: 'wn1', version: '0.1.0', state: 'halted', cores: 8, coresUsed: 0, memoryMb: 1, externalId: null,
      registeredAt: now - 10_000, lastHeartbeatAt: now - 42_000, deadline: null, shutdownCode: 300, shutdownMessage: 'No more work',
    };
    // an older server: no lastContactAt, so its last heartbeat; it came directly (VIA -)
    expect(pilotTable([p], now).split('\n')[1]).toMatch(/^3\s+wn1\s+halted\s+0\/8\s+-\s+-\s+none\s+-\s+42s ago\s+300 No more work$/);
    // busy since its registration, no heartbeat yet: contact 3 s ago, not "never"
    const busy: PilotView = {
      ...p, state: 'running', coresUsed: 2, externalId: '4242', labels: { batch: 'slurm', site: 'CERN-PROD' },
      lastHeartbeatAt: null, lastContactAt: now - 3_000, shutdownCode: null, shutdownMessage: null,
    };
    expect(pilotTable([busy], now).split('\n')[1]).toMatch(/^3\s+wn1\s+running\s+2\/8\s+4242\s+batch=slurm,site=CERN-PROD\s+none\s+-\s+3s ago\s+-$/);
  });

  it('shows the site and relay a pilot came through', () => {
    const p: PilotView = {
      id: 4, hostname: 'cn0042', version: '0.1.0', state: 'running', cores: 8, coresUsed: 2, memoryMb: 1, externalId: null,
      registeredAt: now - 10_000, lastHeartbeatAt: now - 5_000, deadline: null, shutdownCode: null, shutdownMessage: null,
      relay: { name: 'login01', site: 'CC-IN2P3' },
    };
    expect(pilotTable([p], now).split('\n')[0]).toMatch(/ISOLATION\s+VIA\s+CONTACT/);
    expect(pilotTable([p], now).split('\n')[1]).toMatch(/^4\s+cn0042\s+running\s+2\/8\s+-\s+-\s+none\s+CC-IN2P3\/login01\s+5s ago\s+-$/);
  });

  it('writes durations readably, rounded to the second', () => {
    expect([duration(5), duration(125), duration(3 * 3600 + 120), duration(2 * 86400 + 4 * 3600)]).toEqual(['5s', '2m05s', '3h02m', '2d04h']);
    expect([duration(4.98), duration(4.4), duration(59.6)]).toEqual(['5s', '4s', '1m00s']);
  });
});
