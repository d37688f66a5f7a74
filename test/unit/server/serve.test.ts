import { describe, expect, it } from 'vitest';
import { parseListen } from '../../../src/server/serve.js';
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
