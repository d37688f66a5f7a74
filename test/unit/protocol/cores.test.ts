import { describe, expect, it } from 'vitest';
import { coresFor, formatCoreRequest, parseCoreRequest } from '../../../src/protocol/cores.js';

describe('parseCoreRequest', () => {
  it('reads N, MIN-MAX and whole', () => {
    expect(parseCoreRequest('4')).toEqual({ min: 4, max: 4, wholeNode: false });
    expect(parseCoreRequest('2-8')).toEqual({ min: 2, max: 8, wholeNode: false });
    expect(parseCoreRequest('whole')).toEqual({ min: 1, max: 1, wholeNode: true });
  });

  it('names what is wrong', () => {
    expect(() => parseCoreRequest('four')).toThrow(/"four" is not N, MIN-MAX/);
    expect(() => parseCoreRequest('0')).toThrow(/at least 1/);
    expect(() => parseCoreRequest('8-2')).toThrow(/MAX is smaller than MIN/);
  });

  it('formats back to what it parsed', () => {
    for (const text of ['1', '3-7', 'whole']) expect(formatCoreRequest(parseCoreRequest(text))).toBe(text);
  });
});

describe('coresFor', () => {
  it('gives exactly N only when N are free', () => {
    expect(coresFor({ min: 2, max: 2, wholeNode: false }, 3, 4)).toBe(2);
    expect(coresFor({ min: 2, max: 2, wholeNode: false }, 1, 4)).toBeNull();
  });

  it('gives a range as many free cores as there are, up to MAX', () => {
    expect(coresFor({ min: 2, max: 8, wholeNode: false }, 3, 4)).toBe(3);
    expect(coresFor({ min: 2, max: 3, wholeNode: false }, 4, 4)).toBe(3);
    expect(coresFor({ min: 2, max: 8, wholeNode: false }, 1, 4)).toBeNull();
  });

  it('runs a whole-node payload only on an empty node', () => {
    expect(coresFor({ min: 1, max: 1, wholeNode: true }, 4, 4)).toBe(4);
    expect(coresFor({ min: 1, max: 1, wholeNode: true }, 3, 4)).toBeNull();
  });
});
