import { describe, expect, it } from 'vitest';
import { FakeControlPlane, fakeAssignment } from '../../../../src/agent/control/fake-control-plane.js';
import { PayloadBook } from '../../../../src/agent/payload/book.js';
import { MemoryStateStore } from '../../../../src/agent/state/memory-store.js';
import { Outbox } from '../../../../src/agent/state/outbox.js';
import { StateKeeper, emptyState } from '../../../../src/agent/state/state-keeper.js';
import { FakeClock } from '../../../../src/shared/clock.js';
import { silentLogger } from '../../../../src/shared/log.js';

// What a restart finds on disk (the store's last save) once each of the book's methods resolved.
function book() {
  const store = new MemoryStateStore();
  const clock = new FakeClock(1_000_000);
  const keeper = new StateKeeper(store, emptyState('http://server'));
  const outbox = new Outbox(keeper, new FakeControlPlane(), clock, silentLogger(), () => undefined);
  return { store, book: new PayloadBook(keeper, outbox, clock, '/state') };
}

describe('the payload book: each change is on disk when its method resolves', () => {
  it('a payload admitted is saved as starting (pid 0) and as started before its process exists', async () => {
    const { store, book: b } = book();
    const a = fakeAssignment(7, { cores: 2 });
    await b.starting(a, 2, ['GPU-1']);
    expect(store.saved?.started).toEqual([7]);
    expect(store.saved?.running['7']).toMatchObject({ pid: 0, cores: 2, dir: '/state/payloads/7', gpus: ['GPU-1'] });
    expect(b.startedIds.has(7)).toBe(true);
    await b.started(a, 4242, 2);
    expect(store.saved?.running['7']?.pid).toBe(4242);
    expect(store.saved?.outbox.map((r) => r.type)).toEqual(['payload-started']);
    await b.ended(a, { exitCode: 0, signal: null, outputTail: 'ok' });
    expect(store.saved?.running).toEqual({});
    expect(store.saved?.outbox.map((r) => r.type)).toEqual(['payload-started', 'payload-ended']);
    // never started twice: it stays started after it ended
    expect(store.saved?.started).toEqual([7]);
  });

  it('a refused payload counts as started, with its end report; a renewed attempt no longer does', async () => {
    const { store, book: b } = book();
    await b.refused(fakeAssignment(9), 'bad allocation');
    expect(store.saved?.started).toEqual([9]);
    expect(store.saved?.outbox.at(-1)).toMatchObject({ type: 'payload-ended', payloadId: 9, message: 'bad allocation' });
    await b.renewAttempt(9);
    expect(store.saved?.started).toEqual([]);
    expect(b.startedIds.has(9)).toBe(false);
  });

  it('a new identity keeps the ids started, except those stopped here for it', async () => {
    const { store, book: b } = book();
    await b.starting(fakeAssignment(1), 1, []);
    await b.starting(fakeAssignment(2), 1, []);
    await b.newIdentity([2]);
    expect(store.saved?.running).toEqual({});
    expect(store.saved?.started).toEqual([1]);
    expect([...b.startedIds]).toEqual([1]);
  });
});
