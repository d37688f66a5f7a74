import { describe, expect, it } from 'vitest';
import { parseListen, wakeupsOf } from '../../../src/server/serve.js';
import { isVmpilotError } from '../../../src/shared/errors.js';

describe('parseListen', () => {
  it('reads HOST:PORT and [IPv6]:PORT', () => {
    expect(parseListen('127.0.0.1:8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(parseListen('0.0.0.0:0')).toEqual({ host: '0.0.0.0', port: 0 });
    expect(parseListen('[::1]:9000')).toEqual({ host: '::1', port: 9000 });
    expect(parseListen('server.example.org:80')).toEqual({ host: 'server.example.org', port: 80 });
  });

  it('refuses anything else as a usage error naming --listen', () => {
    for (const bad of ['8080', 'localhost', 'host:', ':80', 'host:65536', 'http://host:80']) {
      try {
        parseListen(bad);
        expect.unreachable(bad);
      } catch (err) {
        expect(isVmpilotError(err, 'VMP_USAGE')).toBe(true);
        expect((err as Error).message).toContain(`--listen "${bad}"`);
      }
    }
  });
});

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
