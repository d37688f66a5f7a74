import { describe, expect, it } from 'vitest';
import { fakeAssignment } from '../../../../src/agent/control/fake-control-plane.js';
import { harness } from '../pilot-harness.js';

describe('a server whose records do not fit what the pilot sent', () => {
  it('lists a payload handed out again after it started here in `holding`, and does not spin on it', async () => {
    const h = harness({ cores: '1' });
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    h.control.offer(fakeAssignment(1));
    await h.until(() => expect(h.runner.started).toHaveLength(1));
    h.runner.started[0]!.finish();
    await h.until(() => expect(h.applied('payload-ended')).toHaveLength(1));
    // the server hands it out again and again, as if it never heard it start (its reports were dropped)
    const before = h.control.matches.length;
    h.control.redeliver = [fakeAssignment(1)];
    h.pilot.abortMatch();
    await h.until(() => expect(h.control.matches.at(-1)?.holding).toContain(1));
    await h.clock.advance(1000);
    await h.settle();
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    // a handful of asks, not one per turn of the event loop
    expect(h.control.matches.length - before).toBeLessThan(6);
    expect(h.runner.started).toHaveLength(1);
  });

  it('takes an applied seq above any it numbered as a fault: keeps its reports, tells the old pilot to halt and registers anew', async () => {
    const h = harness({ cores: '1' });
    h.start();
    await h.until(() => expect(h.control.registrations).toHaveLength(1));
    await h.until(() => expect(h.applied('state')).toHaveLength(1));
    // someone with the credential pushed the server's applied seq far ahead
    h.control.forgedAppliedSeq = 1_000_000;
    h.control.offer(fakeAssignment(5));
    await h.until(() => expect(h.control.registrations).toHaveLength(2));
    // the old identity was told to halt, with a report right after the applied seq, so that it is applied
    const told = h.control.batches.flat().find((r) => r.type === 'shutdown');
    expect(told).toMatchObject({ seq: 1_000_001, code: 700 });
    expect(told && 'message' in told ? told.message : '').toMatch(/another sender holds this pilot's credential/);
    // the payload that ran under the old identity was stopped (the server requeues it)
    await h.until(() => expect(h.runner.started[0]?.signals).toContain('SIGTERM'));
    // under the new identity, reports start again at 1 and are delivered
    h.control.forgedAppliedSeq = null;
    await h.until(() => expect(h.control.applied.some((r) => r.type === 'state' && /registered anew/.test(r.reason))).toBe(true));
    expect(h.pilot.lifecycle).toBe('serving');
  });

  it('asks for no work under a credential found out while delivering the reports that waited through an outage', async () => {
    const h = harness({ cores: '2' });
    h.start();
    await h.until(() => expect(h.applied('state')).toHaveLength(1));
    await h.until(() => expect(h.control.openMatches).toBe(1));
    // the match requests made once the server's answer showed another sender, until the pilot registered anew
    let afterFault: number | null = null;
    let atRegistration: number | null = null;
    const report = h.control.report.bind(h.control);
    // the answer that shows it comes while the match loop waits for that delivery
    let answer = () => undefined as void;
    const answered = new Promise<void>((r) => (answer = r));
    h.control.report = async (reports) => {
      const forged = h.control.forgedAppliedSeq !== null;
      if (forged) await answered;
      const reply = await report(reports);
      if (forged) afterFault = h.control.matches.length;
      return reply;
    };
    const register = h.control.register.bind(h.control);
    h.control.register = async (request) => {
      if (afterFault !== null) atRegistration ??= h.control.matches.length;
      return register(request);
    };
    // an outage: the payload's start report and the next match both fail, so the match loop delivers the report first
    h.control.failNext('report');
    h.control.failNext('match');
    h.control.offer(fakeAssignment(1));
    await h.until(() => expect(h.runner.started).toHaveLength(1));
    await h.settle();
    // the server is back, and its answer to that report claims a seq this pilot never numbered
    h.control.forgedAppliedSeq = 1_000_000;
    await h.clock.advance(1000);
    await h.settle();
    answer();
    await h.until(() => expect(h.control.registrations).toHaveLength(2));
    expect(afterFault).not.toBeNull();
    expect(atRegistration).toBe(afterFault);
  });
});
