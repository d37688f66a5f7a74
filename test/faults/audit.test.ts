import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { PayloadView } from '../../src/protocol/index.js';
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
});
