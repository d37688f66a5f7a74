import { describe, expect, it } from 'vitest';
import { fakeAssignment } from '../../../../src/agent/control/fake-control-plane.js';
import { BACKFILL_START_SLACK_SEC } from '../../../../src/agent/matcher/matcher.js';
import { harness } from '../pilot-harness.js';

describe('Pilot holding cores for a reserved payload', () => {
  it('lends the free core by the wall clock of the running payload, and gives back what would delay the reserved one', async () => {
    const h = harness({ cores: '4', grace: '5', starvation: '60', idleTimeout: '0' });
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    h.control.offer(fakeAssignment(1, { cores: 3, wallSec: 600 }));
    await h.until(() => expect(h.applied('payload-started')).toHaveLength(1));
    await h.clock.advance(100_000);
    // the server designates a 4-core payload that has waited past the bound; the reply also hands out one with no wall time
    h.control.largestWaiting = { cores: 4, waitingSec: 3600, backfill: true };
    h.control.offer(fakeAssignment(2, { cores: 1, wallSec: null }));
    await h.until(() => expect(h.applied('payload-released').map((r) => r.payloadId)).toEqual([2]));
    expect(h.applied('payload-released')[0]!.reason).toMatch(/held for a reserved payload/);
    // it ends by its wall clock + 600 s + grace + reaping: 500 s from now, less the start slack
    await h.until(() => expect(h.control.matches.at(-1)).toMatchObject({ freeCores: 1, backfill: { wallSec: 500 - BACKFILL_START_SLACK_SEC, spareCores: 0 } }));
    h.control.offer(fakeAssignment(3, { cores: 1, wallSec: 490 }));
    await h.until(() => expect(h.applied('payload-started').map((r) => r.payloadId)).toEqual([1, 3]));
  });

  it('sends no loan to a server that does not say it honours one', async () => {
    const h = harness({ cores: '4', starvation: '60', idleTimeout: '0' });
    h.start();
    await h.until(() => expect(h.control.openMatches).toBe(1));
    h.control.offer(fakeAssignment(1, { cores: 3, wallSec: 600 }));
    await h.until(() => expect(h.applied('payload-started')).toHaveLength(1));
    h.control.largestWaiting = { cores: 4, waitingSec: 3600 };
    h.control.offer(fakeAssignment(2, { cores: 1, wallSec: 10 }));
    await h.until(() => expect(h.applied('payload-released').map((r) => r.payloadId)).toEqual([2]));
    await h.settle();
    expect(h.control.matches.at(-1)).toMatchObject({ freeCores: 0 });
    expect(h.control.matches.some((m) => m.backfill !== undefined)).toBe(false);
  });
});
