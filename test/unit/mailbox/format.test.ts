import { describe, expect, it } from 'vitest';
import { names, parseName, parseReply, parseRequest, requestId, requestsInOrder } from '../../../src/mailbox/format.js';

const request = (over: Record<string, unknown> = {}) =>
  JSON.stringify({ v: 1, id: requestId(1_764_151_200_000, 42, 7), method: 'POST', path: '/v1/pilots/17/heartbeat', authorization: 'Bearer pc_x', body: '{}', at: 1, expiresAt: 2, ...over });

describe('the mailbox format', () => {
  it('ids sort in the order an agent made them, across the counter and the start time', () => {
    const a = requestId(1_764_151_200_000, 42, 9);
    const b = requestId(1_764_151_200_000, 42, 10);
    const c = requestId(1_764_151_300_000, 7, 1);
    const files = [names.request(c), names.request(b), '.tmp-file', names.cancel(a), names.request(a), 'junk.req', names.reply(b)];
    expect(requestsInOrder(files)).toEqual([a, b, c]);
    expect(parseName(names.cancel(a))).toEqual({ kind: 'cancel', id: a });
    expect(parseName(`.${names.request(a)}.123.tmp`)).toBeNull();
    expect(parseName('../../etc/passwd.req')).toBeNull();
  });

  it('takes a well-formed request, and says what is wrong with any other', () => {
    const id = requestId(1_764_151_200_000, 42, 7);
    expect(parseRequest(request(), id)).toMatchObject({ path: '/v1/pilots/17/heartbeat', method: 'POST' });
    expect(() => parseRequest('{"v":1', id)).toThrow(/request is not JSON/);
    expect(() => parseRequest(request({ v: 2 }), id)).toThrow(/v is 2, this relay reads version 1/);
    expect(() => parseRequest(request({ id: 'other' }), id)).toThrow(/its id field says "other"/);
    // nothing but the pilot protocol goes through a mailbox: no admin route
    expect(() => parseRequest(request({ path: '/v1/payloads' }), id)).toThrow(/POST \/v1\/payloads is not a call of the pilot protocol/);
    expect(() => parseRequest(request({ method: 'GET', path: '/v1/pilots' }), id)).toThrow(/not a call of the pilot protocol/);
    expect(() => parseRequest(request({ authorization: 'token' }), id)).toThrow(/authorization must be "Bearer <token>"/);
    expect(() => parseRequest(request({ expiresAt: 'soon' }), id)).toThrow(/expiresAt must be a time in ms/);
  });

  it('takes a well-formed reply only', () => {
    const id = requestId(1, 1, 1);
    expect(parseReply(JSON.stringify({ v: 1, id, status: 200, text: '{}', at: 1 }), id)).toMatchObject({ status: 200 });
    expect(() => parseReply(JSON.stringify({ v: 1, id, status: 42, text: '', at: 1 }), id)).toThrow(/status must be an HTTP status/);
    expect(() => parseReply('[]', id)).toThrow(/reply is not a JSON object/);
  });
});
