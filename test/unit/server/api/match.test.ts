import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { MatchReply } from '../../../../src/protocol/index.js';
import { paths } from '../../../../src/protocol/paths.js';
import type { Store } from '../../../../src/server/store/store.js';
import { matchRequest } from '../helpers.js';
import { ADMIN, bearer, harness, until, type Harness } from './harness.js';

describe('match long poll', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness(20);
  });
  afterEach(async () => h.close());

  const ask = (pilotId: number, credential: string, waitSec = 20, signal?: AbortSignal) =>
    h.app.inject({
      method: 'POST',
      url: paths.match(pilotId),
      headers: bearer(credential),
      payload: matchRequest({ waitSec }),
      ...(signal ? { signal } : {}),
    });

  it('holds the request until a payload is submitted, then hands it over', async () => {
    const reg = await h.register();
    const pending = ask(reg.pilotId, reg.credential);
    await until(() => h.clock.pending === 1, 'the match is waiting');
    const id = await h.submit({ command: ['x'] });
    const reply = (await pending).json<MatchReply>();
    expect(reply.payload?.id).toBe(id);
    expect((await h.store.getPayload(id))?.state).toBe('assigned');
  });

  it('tells only one pilot to reserve cores for a large waiting payload', async () => {
    const a = await h.register('node-a');
    const b = await h.register('node-b');
    // both pilots are full (no free cores): nothing is handed out, and the 4-core payload waits
    await h.submit({ command: ['big'], cores: { min: 4, max: 4, wholeNode: false } });
    const full = (pilotId: number, credential: string) =>
      h.app.inject({ method: 'POST', url: paths.match(pilotId), headers: bearer(credential), payload: matchRequest({ freeCores: 0, totalCores: 4, waitSec: 0 }) });
    const first = (await full(a.pilotId, a.credential)).json<MatchReply>();
    const second = (await full(b.pilotId, b.credential)).json<MatchReply>();
    // backfill: true — this server honours MatchRequest.backfill, so the pilot may lend the held cores
    expect(first.largestWaiting).toEqual({ cores: 4, waitingSec: 0, backfill: true });
    expect(second.largestWaiting).toBeNull();
    // and the same pilot keeps its designation
    expect((await full(a.pilotId, a.credential)).json<MatchReply>().largestWaiting).toEqual({ cores: 4, waitingSec: 0, backfill: true });
  });

  it('lends held cores only to a payload that ends within the loan, or fits in the spare cores; never to one with no wall time', async () => {
    const reg = await h.register();
    const one = { min: 1, max: 1, wholeNode: false };
    const noWall = await h.submit({ command: ['no-wall'], cores: one });
    const long = await h.submit({ command: ['long'], cores: one, wallSec: 7200 });
    const short = await h.submit({ command: ['short'], cores: one, wallSec: 3600 });
    const lend = (backfill: { wallSec: number; spareCores: number }, holding: number[] = []) =>
      h.app.inject({ method: 'POST', url: paths.match(reg.pilotId), headers: bearer(reg.credential), payload: matchRequest({ freeCores: 2, totalCores: 4, waitSec: 0, backfill, holding }) });
    // no spare core: only the payload that declares a wall time within the loan
    const first = await lend({ wallSec: 3600, spareCores: 0 });
    expect(first.statusCode).toBe(200);
    expect(first.json<MatchReply>().payload?.id).toBe(short);
    expect((await lend({ wallSec: 3600, spareCores: 0 }, [short])).json<MatchReply>().payload).toBeNull();
    expect((await h.store.getPayload(noWall))?.state).toBe('queued');
    expect((await h.store.getPayload(long))?.state).toBe('queued');
    // a spare core takes anything that fits it, oldest first: the one with no wall time
    expect((await lend({ wallSec: 0, spareCores: 1 }, [short])).json<MatchReply>().payload?.id).toBe(noWall);
  });

  it('counts the loan down while it holds the request open', async () => {
    const reg = await h.register();
    const pending = h.app.inject({
      method: 'POST',
      url: paths.match(reg.pilotId),
      headers: bearer(reg.credential),
      payload: matchRequest({ freeCores: 1, totalCores: 4, waitSec: 20, backfill: { wallSec: 100, spareCores: 0 } }),
    });
    await until(() => h.clock.pending === 1, 'the match is waiting');
    await h.clock.advance(10_000);
    // 100 s asked 10 s ago: a 95 s payload would end after the reserved one could start
    const late = await h.submit({ command: ['x'], wallSec: 95 });
    await until(() => h.clock.pending === 1, 'the match waits again');
    const fits = await h.submit({ command: ['y'], wallSec: 90 });
    expect((await pending).json<MatchReply>().payload?.id).toBe(fits);
    expect((await h.store.getPayload(late))?.state).toBe('queued');
  });

  it('refuses a malformed loan with 400 and a message naming the field, changing nothing', async () => {
    const reg = await h.register();
    const id = await h.submit({ command: ['x'], wallSec: 10 });
    const r = await h.app.inject({
      method: 'POST',
      url: paths.match(reg.pilotId),
      headers: bearer(reg.credential),
      payload: { ...matchRequest(), backfill: { wallSec: -1, spareCores: 0 } },
    });
    expect(r.statusCode).toBe(400);
    expect(r.json<{ error: { message: string } }>().error.message).toMatch(/backfill/);
    expect((await h.store.getPayload(id))?.state).toBe('queued');
  });

  it('answers a waiting match at once when a halt instruction is added for its pilot', async () => {
    const reg = await h.register();
    const pending = ask(reg.pilotId, reg.credential);
    await until(() => h.clock.pending === 1, 'the match is waiting');
    await h.app.inject({ method: 'POST', url: paths.instructions(reg.pilotId), headers: bearer(ADMIN), payload: { type: 'halt', code: 100 } });
    expect((await pending).json<MatchReply>()).toEqual({ payload: null, instructions: [{ id: expect.any(Number), type: 'halt', code: 100 }], largestWaiting: null });
  });

  it('answers with no payload when the wait is over, bounded by the server', async () => {
    const reg = await h.register();
    const pending = ask(reg.pilotId, reg.credential, 60);
    await until(() => h.clock.pending === 1, 'the match is waiting');
    await h.clock.advance(20_000);
    expect((await pending).json<MatchReply>()).toEqual({ payload: null, instructions: [], largestWaiting: null });
  });

  it('assigns nothing for a request whose client went away (real socket)', async () => {
    const reg = await h.register();
    const address = await h.app.listen({ host: '127.0.0.1', port: 0 });
    const client = new AbortController();
    const pending = request(`${address}${paths.match(reg.pilotId)}`, {
      method: 'POST',
      headers: { ...bearer(reg.credential), 'content-type': 'application/json' },
      body: JSON.stringify(matchRequest({ waitSec: 20 })),
      signal: client.signal,
    }).catch((err: unknown) => err);
    await until(() => h.clock.pending === 1, 'the match is waiting', 1_000_000);
    client.abort();
    expect(await pending).toBeInstanceOf(Error);
    await until(() => h.clock.pending === 0, 'the waiter is gone', 1_000_000);
    const id = await h.submit({ command: ['x'] });
    expect(await h.store.getPayload(id)).toMatchObject({ state: 'queued', pilotId: null, attempts: 0 });
    // another pilot still gets it
    const other = await h.register('other');
    expect((await ask(other.pilotId, other.credential, 0)).json<MatchReply>().payload?.id).toBe(id);
  });

  it('hands a payload claimed after its client went away to the pilot\'s next request, once (a store that answers late)', async () => {
    await h.close();
    // the claim completes only when the test says: as a networked store may answer after the client left
    let inner: Store | undefined;
    let release = () => {};
    const gate = new Promise<void>((r) => (release = r));
    let claims = 0;
    const late = new Proxy({} as Store, {
      get: (_t, key: keyof Store) =>
        key === 'claimPayload'
          ? async (...args: Parameters<Store['claimPayload']>) => {
              const claimed = await inner!.claimPayload(...args);
              if (claimed && claims++ === 0) await gate;
              return claimed;
            }
          : inner![key],
    });
    h = await harness(20, { store: late });
    inner = h.store;
    const reg = await h.register();
    const id = await h.submit({ command: ['x'] });
    const address = await h.app.listen({ host: '127.0.0.1', port: 0 });
    const client = new AbortController();
    const pending = request(`${address}${paths.match(reg.pilotId)}`, {
      method: 'POST',
      headers: { ...bearer(reg.credential), 'content-type': 'application/json' },
      body: JSON.stringify(matchRequest({ waitSec: 20 })),
      signal: client.signal,
    }).catch((err: unknown) => err);
    await until(() => claims === 1, 'the claim is under way', 1_000_000);
    client.abort();
    expect(await pending).toBeInstanceOf(Error);
    const open = () => new Promise<number>((r) => h.app.server.getConnections((_e, n) => r(n)));
    for (let i = 0; i < 1_000_000 && (await open()) > 0; i++) await new Promise((r) => setImmediate(r));
    expect(await open()).toBe(0);
    release();
    // assigned, one attempt: the reply is lost, the payload is not
    const next = (await ask(reg.pilotId, reg.credential, 0)).json<MatchReply>();
    expect(next.payload?.id).toBe(id);
    expect(await h.store.getPayload(id)).toMatchObject({ state: 'assigned', pilotId: reg.pilotId, attempts: 1 });
  });

  it('gives a payload to one of two waiting pilots only', async () => {
    const a = await h.register('a');
    const b = await h.register('b');
    const pa = ask(a.pilotId, a.credential);
    const pb = ask(b.pilotId, b.credential);
    await until(() => h.clock.pending === 2, 'both matches are waiting');
    const id = await h.submit({ command: ['x'] });
    await until(() => h.clock.pending === 1, 'one match answered');
    await h.clock.advance(20_000);
    const replies = [(await pa).json<MatchReply>(), (await pb).json<MatchReply>()];
    expect(replies.filter((r) => r.payload?.id === id)).toHaveLength(1);
    expect(replies.filter((r) => r.payload === null)).toHaveLength(1);
  });

  it('gives no new work to a draining pilot', async () => {
    const reg = await h.register();
    await h.store.setPilotState(reg.pilotId, 'draining', 'test', h.clock.now());
    const id = await h.submit({ command: ['x'] });
    expect((await ask(reg.pilotId, reg.credential, 0)).json<MatchReply>().payload).toBeNull();
    expect((await h.store.getPayload(id))?.state).toBe('queued');
  });

  it('answers waiting matches with no payload when the server closes', async () => {
    const reg = await h.register();
    const pending = ask(reg.pilotId, reg.credential);
    await until(() => h.clock.pending === 1, 'the match is waiting');
    const closing = h.app.close();
    expect((await pending).json<MatchReply>()).toEqual({ payload: null, instructions: [], largestWaiting: null });
    await closing;
  });
});
