import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { PayloadHistoryEntry, PayloadState, PayloadView } from '../../src/protocol/index.js';
import { tempDir } from '../integration/harness.js';
import { audit, logged } from './audit.js';

const tmp = tempDir('vmpilot-audit-');
afterAll(() => tmp.cleanup());
const log = path.join(tmp.dir, 'runs.log');
const view = (id: number, state: PayloadView['state'], attempts = 1): PayloadView =>
  ({ id, state, attempts, command: logged(log, 1) }) as PayloadView;

describe('the fault audit', () => {
  it('passes a clean history, including a rerun after a run that never ended (a lost attempt)', () => {
    writeFileSync(log, 'start 1 10 100\nend 1 10 200 0\nstart 2 11 100\nstart 2 12 300\nend 2 12 400 0\n');
    expect(audit([1, 2, 3], [view(1, 'done'), view(2, 'done', 2), view(3, 'queued', 0)], log).violations).toEqual([]);
  });

  it('finds payloads lost, invented, left running, done without a run, and run twice', () => {
    writeFileSync(
      log,
      'start 1 10 100\nend 1 10 200 0\nstart 1 11 300\n' + // rerun after success
        'start 2 12 100\nstart 2 13 150\nend 2 13 160 0\nend 2 12 170 1\n' + // overlapping
        'overlap 3 14 100\nstart 3 15 100\nend 3 15 200 0\n' + // overlap seen by the fixture
        'start 9 16 100\n', // never submitted
    );
    const r = audit([1, 2, 3, 4, 5, 6], [view(1, 'done', 2), view(2, 'done', 2), view(3, 'done'), view(5, 'running'), view(6, 'done'), view(7, 'queued')], log);
    const all = r.violations.join('\n');
    expect(all).toMatch(/payload 1 run twice: run 2 after a run that succeeded/);
    expect(all).toMatch(/payload 2 run twice: run 2 started before run 1 ended/);
    expect(all).toMatch(/run twice \(overlapping\): overlap 3/);
    expect(all).toMatch(/payload 4 lost/);
    expect(all).toMatch(/payload 5 left running/);
    expect(all).toMatch(/payload 6 is done but no run/);
    expect(all).toMatch(/payload 7 was never submitted/);
    expect(all).toMatch(/a run of payload 9, which was never submitted/);
  });

  const steps = (...states: PayloadState[]): PayloadHistoryEntry[] => states.map((state, i) => ({ state, pilotId: null, reason: state, at: i }));

  it('passes evicted attempts that went back to the queue, and payloads cancelled or queued again', () => {
    // 1: evicted once, then done by another run; 2: killed while running; 3: evicted and waiting again
    writeFileSync(log, 'start 1 10 100\nstart 1 11 300\nend 1 11 400 0\nstart 2 12 100\nstart 3 13 100\n');
    const histories = new Map([
      [1, steps('queued', 'assigned', 'running', 'evicted', 'queued', 'assigned', 'running', 'done')],
      [2, steps('queued', 'assigned', 'running', 'cancelled')],
      [3, steps('queued', 'assigned', 'running', 'evicted', 'queued')],
    ]);
    const r = audit([1, 2, 3], [view(1, 'done', 2), view(2, 'cancelled'), view(3, 'queued', 1)], log, { histories });
    expect(r.violations).toEqual([]);
    expect(r.byState).toEqual({ done: 1, cancelled: 1, queued: 1 });
  });

  it('finds a payload ended twice, attempts not counted, a stopped run the history does not know, and too many attempts', () => {
    writeFileSync(log, 'start 1 10 100\nend 1 10 200 0\nstart 2 11 100\nstart 2 12 300\nend 2 12 400 0\nstart 3 13 100\nstart 5 14 100\nstart 5 15 300\nend 5 15 400 0\n');
    const histories = new Map([
      [1, steps('queued', 'assigned', 'running', 'failed', 'done')], // ended twice
      [2, steps('queued', 'assigned', 'running', 'evicted', 'queued', 'assigned', 'running', 'evicted', 'queued', 'assigned', 'running', 'done')],
      [3, steps('queued', 'assigned', 'running', 'failed', 'queued')], // queued again after a final state
      [4, steps('queued', 'assigned', 'running', 'evicted', 'queued', 'assigned', 'running', 'evicted', 'queued', 'assigned', 'running', 'evicted', 'queued', 'assigned')],
      [5, steps('queued', 'assigned', 'running', 'assigned', 'running', 'done')], // a stopped run that no eviction accounts for
    ]);
    const r = audit([1, 2, 3, 4, 5], [view(1, 'done'), view(2, 'done', 1), view(3, 'queued'), view(4, 'queued', 4), view(5, 'done', 2)], log, { histories, maxAttempts: 3 });
    const all = r.violations.join('\n');
    expect(all).toMatch(/payload 1 ended 2 times: failed, done/);
    expect(all).toMatch(/payload 2 has 1 attempts but 2 were evicted or lost/);
    expect(all).toMatch(/payload 2 ran 2 times but was handed out 1 times/);
    expect(all).toMatch(/payload 5 had 1 runs stopped but its history counts 0 evicted or lost/);
    expect(all).toMatch(/payload 3 ended 1 times: failed/);
    expect(all).toMatch(/payload 4 is queued but its history ends assigned/);
    expect(all).toMatch(/payload 4 had 4 attempts, more than maxAttempts 3/);
  });
});
