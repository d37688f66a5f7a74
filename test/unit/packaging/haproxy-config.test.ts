/**
 * The shipped HAProxy config (packaging/haproxy.cfg) against the server's own
 * limits: HAProxy must never cut a match long poll the server may hold (its
 * largest --match-wait-max), nor a request the server still accepts; and it
 * retries only requests that never reached a replica. The config running for
 * real with replicas and agents is test/integration/haproxy.test.ts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../../src/protocol/index.js';
import { routes } from '../../../src/protocol/paths.js';
import { DEFAULT_LIMITS } from '../../../src/server/api/limits.js';
import { HAPROXY_CFG } from '../../haproxy.js';

const cfg = readFileSync(HAPROXY_CFG, 'utf8');

/** The seconds of `timeout NAME` in the config (its unit-less or s/m value). */
function timeoutSec(name: string): number {
  const m = new RegExp(`^\\s*timeout ${name} (\\d+)(ms|s|m)?$`, 'm').exec(cfg);
  if (!m) throw new Error(`${path.basename(HAPROXY_CFG)} has no "timeout ${name}"`);
  const n = Number(m[1]);
  return m[2] === 'm' ? n * 60 : m[2] === 's' ? n : n / 1000;
}

describe('packaging/haproxy.cfg', () => {
  it('waits on both sides longer than the longest match long poll the server holds', () => {
    for (const side of ['client', 'server']) expect(timeoutSec(side)).toBeGreaterThan(LIMITS.waitSec + 10);
  });

  it("takes a request's headers and body as long as the server does, and closes idle agent connections before the server would", () => {
    expect(timeoutSec('http-request')).toBeGreaterThanOrEqual(DEFAULT_LIMITS.requestTimeoutSec);
    expect(timeoutSec('http-keep-alive')).toBeLessThan(DEFAULT_LIMITS.keepAliveSec);
  });

  it('checks the replicas on the health route and retries only connections that were never made', () => {
    expect(cfg).toMatch(/^\s*option httpchk$/m);
    expect(cfg).toContain(`http-check send meth GET uri ${routes.health} `);
    expect(cfg.match(/^\s*retry-on .*$/gm)).toEqual(['    retry-on conn-failure']);
    expect(cfg).toMatch(/^\s*http-reuse safe$/m);
  });
});
