import { describe, expect, it } from 'vitest';
import { wakeupsOf } from '../../../src/server/wakeup-options.js';
import { isVmpilotError } from '../../../src/shared/errors.js';

describe('wakeupsOf (--db-wakeups, --db-poll-ms)', () => {
  const pg = 'postgres://vmpilot@db.example.org/vmpilot';
  const usage = (o: Parameters<typeof wakeupsOf>[0]): string => {
    try {
      wakeupsOf(o);
    } catch (err) {
      expect(isVmpilotError(err, 'VMP_USAGE')).toBe(true);
      return (err as Error).message;
    }
    throw new Error('no error');
  };

  it('listens by default on PostgreSQL, with a 5 s fallback poll; polls every second in poll mode', () => {
    expect(wakeupsOf({ db: pg })).toEqual({ mode: 'listen', pollMs: 5000 });
    expect(wakeupsOf({ db: pg, dbWakeups: 'poll' })).toEqual({ mode: 'poll', pollMs: 1000 });
    expect(wakeupsOf({ db: pg, dbWakeups: 'listen', dbPollMs: 30_000 })).toEqual({ mode: 'listen', pollMs: 30_000 });
  });

  it('is nothing on SQLite, and refuses the flags there naming them', () => {
    expect(wakeupsOf({ db: '/var/lib/vmpilot/server.db' })).toBeNull();
    expect(usage({ db: 'server.db', dbWakeups: 'poll' })).toContain('--db-wakeups applies to a PostgreSQL --db only');
    expect(usage({ db: 'server.db', dbPollMs: 1000 })).toContain('--db-poll-ms applies to a PostgreSQL --db only');
  });

  it('refuses an unknown mode and an interval out of range, naming the flag', () => {
    expect(usage({ db: pg, dbWakeups: 'notify' })).toContain('--db-wakeups "notify" is not a mode: listen');
    expect(usage({ db: pg, dbPollMs: 50 })).toContain('--db-poll-ms must be whole milliseconds from 100 to 600000, not 50');
  });
});
