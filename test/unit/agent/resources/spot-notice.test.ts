/**
 * The spot notice reader against a fake IMDSv2 on 127.0.0.1: a session
 * token first and with every read, kept between reads, asked for again when
 * refused; 404 is no notice; a notice is read, kept when the service goes
 * away, and is the deadline when it is the earliest limit.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { computeDeadline } from '../../../../src/agent/mjf/deadline.js';
import { SpotNotice, parseInstanceAction } from '../../../../src/agent/resources/spot-notice.js';
import { silentLogger } from '../../../../src/shared/log.js';
import { ImdsFake } from '../../../fakes/imds-fake.js';

describe('spot notice (IMDSv2)', () => {
  let imds: ImdsFake;
  beforeEach(async () => {
    imds = await new ImdsFake().start();
  });
  afterEach(async () => {
    await imds.stop();
  });

  it('no notice: null, with one token for several reads; then the notice, kept after the service is gone', async () => {
    const n = new SpotNotice('aws', `${imds.url}/`, silentLogger());
    expect(await n.read()).toBeNull();
    expect(await n.read()).toBeNull();
    expect(imds.tokenPuts).toBe(1);
    expect(imds.noticeGets).toBe(2);
    imds.notice = { action: 'terminate', time: new Date('2030-01-01T12:02:00Z') };
    expect(await n.read()).toEqual({ action: 'terminate', at: Date.parse('2030-01-01T12:02:00Z') });
    await imds.stop();
    expect(await n.read()).toEqual({ action: 'terminate', at: Date.parse('2030-01-01T12:02:00Z') });
    imds = await new ImdsFake().start();
  });

  it('a refused token (expired, or the service restarted) is asked for again, once', async () => {
    const n = new SpotNotice('aws', imds.url, silentLogger());
    expect(await n.read()).toBeNull();
    imds.tokens.clear();
    expect(await n.read()).toBeNull();
    expect(imds.tokenPuts).toBe(2);
    expect(imds.refusedGets).toBe(1);
  });

  it('an unreachable service is no notice, not an error', async () => {
    const n = new SpotNotice('aws', 'http://127.0.0.1:9', silentLogger());
    expect(await n.read()).toBeNull();
  });

  it('reads the notice document; anything else is none', () => {
    expect(parseInstanceAction('{"action": "stop", "time": "2017-09-18T08:22:00Z"}')).toEqual({ action: 'stop', at: Date.parse('2017-09-18T08:22:00Z') });
    expect(parseInstanceAction('{"action": "stop"}')).toBeNull();
    expect(parseInstanceAction('<html>')).toBeNull();
  });

  it('is a deadline candidate, the deadline when it is the earliest', () => {
    const d = computeDeadline({ machine: {}, job: {}, batchEnd: null, lifetimeEnd: 2_000_000, spotAction: 1_000_000 });
    expect(d).toMatchObject({ at: 1_000_000, source: 'spot:instance-action' });
    expect(computeDeadline({ machine: {}, job: {}, batchEnd: null, lifetimeEnd: 500_000, spotAction: 1_000_000 }).source).toBe('config:lifetimeSec');
  });
});
