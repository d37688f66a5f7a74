import { describe, expect, it } from 'vitest';
import { fakeAssignment } from '../../../../src/agent/control/fake-control-plane.js';
import { harness } from '../pilot-harness.js';

/** A pilot with a deadline 600 s after its start (grace 5 s) that runs one payload; `flags` more. */
async function runningPilot(flags: Record<string, string>) {
  const h = harness({ idleTimeout: '0', lifetime: '600', ...flags });
  h.start();
  await h.until(() => expect(h.control.openMatches).toBe(1));
  h.control.offer(fakeAssignment(1));
  await h.until(() => expect(h.applied('payload-started')).toHaveLength(1));
  return h;
}

describe('--drain-before', () => {
  it('takes no new work from that long before the deadline, and halts once its payloads have ended', async () => {
    const h = await runningPilot({ drainBefore: '300' });
    await h.clock.advance(299_000);
    await h.settle();
    expect(h.pilot.lifecycle).toBe('serving');
    await h.clock.advance(1_000);
    await h.until(() => expect(h.pilot.lifecycle).toBe('draining'));
    // the reason counts to when the halt starts: the deadline minus the grace
    await h.until(() => expect(h.applied('state').map((r) => [r.state, r.reason])).toContainEqual(['draining', 'deadline in 295 s']));
    h.runner.started[0]!.finish();
    await h.halter.called;
    expect(h.applied('shutdown')[0]).toMatchObject({ code: 100 });
  });

  it('without it, drains 60 s before the deadline minus the grace, as before', async () => {
    const h = await runningPilot({});
    await h.clock.advance(534_000);
    await h.settle();
    expect(h.pilot.lifecycle).toBe('serving');
    await h.clock.advance(1_000);
    await h.until(() => expect(h.pilot.lifecycle).toBe('draining'));
  });
});
