import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AgentState } from '../../../../src/agent/ports.js';
import type { ReportDraft } from '../../../../src/agent/state/outbox.js';
import { recoverPayloads, type RecoveryTarget } from '../../../../src/agent/state/recover.js';
import type { Assignment } from '../../../../src/protocol/index.js';
import { systemClock } from '../../../../src/shared/clock.js';
import { silentLogger } from '../../../../src/shared/log.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'vmp-recover-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const assignment = (id: number): Assignment => ({ id, name: 'true', group: 'default', command: ['true'], env: {}, cores: 1, memoryMb: null, wallSec: null });

/** A target that records what recovery does, in order. */
function target(acceptsEvicted: boolean): RecoveryTarget & { done: string[]; reports: ReportDraft[] } {
  const done: string[] = [];
  const reports: ReportDraft[] = [];
  return {
    clock: systemClock,
    log: silentLogger(),
    adopt: (a) => void done.push(`adopt ${a.id}`),
    report: async (d) => void (done.push(`report ${d.type} ${'payloadId' in d ? d.payloadId : ''}`), reports.push(d)),
    forget: async (id) => void done.push(`forget ${id}`),
    handBack: (id) => void done.push(`hand back ${id}`),
    acceptsEvicted,
    done,
    reports,
  };
}

/** A `running` record of payload `id`; `pidFile`: the wrapper wrote this pid before it went. */
async function record(id: number, pid: number, pidFile: number | null): Promise<AgentState['running']> {
  const d = path.join(dir, String(id));
  await mkdir(d, { recursive: true });
  if (pidFile !== null) await writeFile(path.join(d, 'pid'), `${pidFile}\n`);
  return { [id]: { pid, cores: 1, startedAt: 0, dir: d, assignment: assignment(id) } };
}

/** A pid no process has (above pid_max's default). */
const GONE = 4_000_000;

describe('recovering payloads after an agent restart', () => {
  it('gives back a payload recorded starting whose wrapper never ran, and hands it back before the report that says so', async () => {
    const t = target(true);
    await recoverPayloads(await record(7, 0, null), t, { stopAll: false });
    expect(t.done).toEqual(['hand back 7', 'report payload-released 7']);
    expect(t.reports[0]).toEqual({ type: 'payload-released', payloadId: 7, reason: 'not started: the agent restarted before starting it' });
  });

  it('reports a payload whose wrapper is gone without an exit status started (when the previous run had not) and evicted by the agent\'s failure', async () => {
    const t = target(true);
    await recoverPayloads(await record(8, 0, GONE), t, { stopAll: false });
    expect(t.done).toEqual(['report payload-started 8', 'hand back 8', 'report payload-ended 8']);
    expect(t.reports[1]).toEqual({
      type: 'payload-ended',
      payloadId: 8,
      exitCode: null,
      signal: null,
      message: 'lost: the payload ended while the agent was down and left no exit status',
      evicted: { reason: 'error' },
    });
  });

  it('to a server that does not take `evicted`, reports it ended without it, and does not hand it back', async () => {
    const t = target(false);
    await recoverPayloads(await record(9, GONE, null), t, { stopAll: false });
    expect(t.done).toEqual(['report payload-ended 9']);
    expect(t.reports[0]).not.toHaveProperty('evicted');
  });

  it('with the old identity refused, reports nothing and forgets them', async () => {
    const t = target(true);
    await recoverPayloads({ ...(await record(10, 0, null)), ...(await record(11, GONE, null)) }, t, { stopAll: true });
    expect(t.done).toEqual(['forget 10', 'forget 11']);
  });
});
