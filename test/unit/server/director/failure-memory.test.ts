import { describe, expect, it } from 'vitest';
import { BACKOFF_DEFAULTS } from '../../../../src/server/director/endpoint-config.js';
import {
  backoffAt,
  backoffDelaySec,
  describeBackoff,
  judgeEnd,
  recordFailure,
  recordSuccess,
  type FailureMemory,
} from '../../../../src/server/director/failure-memory.js';

const cfg = BACKOFF_DEFAULTS; // 60 s, doubling, up to 1800 s; fizzle within 600 s
const T = 1_700_000_000_000;

describe('failure memory', () => {
  it('backs an offering off with a delay that doubles with each failure in a row, up to the cap', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 50].map((n) => backoffDelaySec(n, cfg))).toEqual([60, 120, 240, 480, 960, 1800, 1800, 1800]);
    let mem: FailureMemory = new Map();
    mem = recordFailure(mem, 'hpc/node', 'driver-error', 'sbatch: error: invalid partition', T, cfg);
    expect(backoffAt(mem, 'hpc/node', T + 59_999)).toMatchObject({ failures: 1, kind: 'driver-error' });
    expect(backoffAt(mem, 'hpc/node', T + 60_000)).toBeNull();
    mem = recordFailure(mem, 'hpc/node', 'boot-timeout', 'not running 600 s after the create', T + 60_000, cfg);
    expect(backoffAt(mem, 'hpc/node', T + 60_000 + 119_999)?.failures).toBe(2);
    expect(backoffAt(mem, 'hpc/node', T + 60_000 + 120_000)).toBeNull();
    // other offerings are not touched
    expect(backoffAt(mem, 'hpc/big', T)).toBeNull();
  });

  it('says why, and for how long', () => {
    const mem = recordFailure(new Map(), 'cloud/m', 'fizzle', 'shutdown code 500 after 12 s', T, cfg);
    expect(describeBackoff('cloud/m', mem.get('cloud/m')!, T + 10_000)).toBe('cloud/m backed off for 50 s more (1 failure; last: fizzle: shutdown code 500 after 12 s)');
  });

  it('forgets an offering once one of its instances lived well, and never changes the memory it was given', () => {
    const before = recordFailure(new Map(), 'a/s', 'fizzle', 'x', T, cfg);
    const after = recordSuccess(before, 'a/s');
    expect(backoffAt(after, 'a/s', T)).toBeNull();
    expect(backoffAt(before, 'a/s', T)).not.toBeNull();
    const again = recordFailure(after, 'a/s', 'fizzle', 'x', T, cfg);
    expect(again.get('a/s')!.failures).toBe(1);
  });
});

describe('judging an end', () => {
  const end = (lifeSec: number, code: number | null, payloadsRun = 0) => judgeEnd({ startedAt: T, endedAt: T + lifeSec * 1000, shutdownCode: code, payloadsRun }, cfg);

  it('a pilot halted 400-699 soon after its start fizzled', () => {
    for (const code of [400, 500, 600, 699]) expect(end(30, code, 3)).toMatchObject({ fizzle: true, good: false });
    expect(end(30, 500).reason).toBe('fizzled: shutdown code 500 after 30 s');
  });

  it('no more work soon after the start is a fizzle only when it ran nothing; either way no work is counted', () => {
    expect(end(30, 300, 0)).toEqual({ fizzle: true, noWork: true, good: false, reason: 'fizzled: shutdown code 300 after 30 s having run nothing' });
    expect(end(30, 300, 2)).toMatchObject({ fizzle: false, noWork: false, good: true });
    expect(end(3600, 300, 0)).toMatchObject({ fizzle: false, noWork: true, good: true });
  });

  it('a short life without a code (crashed, vanished) or with 700 fizzled; a long one did not', () => {
    expect(end(10, null)).toMatchObject({ fizzle: true, reason: 'fizzled: ended after 10 s without a shutdown code' });
    expect(end(10, 700)).toMatchObject({ fizzle: true });
    expect(end(601, null)).toMatchObject({ fizzle: false, good: true });
    expect(end(601, 500)).toMatchObject({ fizzle: false, good: true });
  });

  it('an administrator\'s halt or completed work never fizzles', () => {
    expect(end(5, 100)).toMatchObject({ fizzle: false, good: true });
    expect(end(5, 200)).toMatchObject({ fizzle: false, good: true });
  });
});
