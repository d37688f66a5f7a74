import { describe, expect, it } from 'vitest';
import type { PayloadState } from '../../../../src/protocol/index.js';
import { endStateFor, payloadTransitionAllowed, pilotTransitionAllowed } from '../../../../src/server/store/transitions.js';

const ALL: PayloadState[] = ['queued', 'assigned', 'running', 'done', 'failed', 'cancelled', 'lost', 'evicted'];

describe('payload transitions', () => {
  it('follow queued → assigned → running → done | failed | cancelled | lost | evicted', () => {
    expect(payloadTransitionAllowed('queued', 'assigned')).toBe(true);
    expect(payloadTransitionAllowed('assigned', 'running')).toBe(true);
    for (const end of ['done', 'failed', 'cancelled', 'lost', 'evicted'] as const) expect(payloadTransitionAllowed('running', end)).toBe(true);
  });

  it('let an unstarted payload go back to the queue, but never a running one', () => {
    expect(payloadTransitionAllowed('assigned', 'queued')).toBe(true);
    expect(payloadTransitionAllowed('running', 'queued')).toBe(false);
    expect(payloadTransitionAllowed('queued', 'running')).toBe(false);
  });

  it('never leave a final state', () => {
    for (const from of ['done', 'failed', 'cancelled'] as const) for (const to of ALL) expect(payloadTransitionAllowed(from, to)).toBe(false);
  });

  it('send a lost or evicted attempt back to the queue, or to failed or cancelled, nowhere else', () => {
    for (const from of ['lost', 'evicted'] as const) expect(ALL.filter((to) => payloadTransitionAllowed(from, to))).toEqual(['queued', 'failed', 'cancelled']);
    // a queued payload killed is cancelled, never failed: it did nothing
    expect(ALL.filter((to) => payloadTransitionAllowed('queued', to))).toEqual(['assigned', 'cancelled']);
  });

  it('call only exit 0 without a signal done', () => {
    expect(endStateFor(0, null)).toBe('done');
    expect(endStateFor(1, null)).toBe('failed');
    expect(endStateFor(null, 'SIGKILL')).toBe('failed');
    expect(endStateFor(0, 'SIGTERM')).toBe('failed');
  });
});

describe('pilot transitions', () => {
  it('keep a halted pilot halted', () => {
    expect(pilotTransitionAllowed('running', 'draining')).toBe(true);
    expect(pilotTransitionAllowed('halted', 'running')).toBe(false);
    expect(pilotTransitionAllowed('halted', 'halted')).toBe(true);
  });

  it('refuse going back to booting or from halting to running, allow recovery from stalled', () => {
    expect(pilotTransitionAllowed('running', 'booting')).toBe(false);
    expect(pilotTransitionAllowed('halting', 'running')).toBe(false);
    expect(pilotTransitionAllowed('halting', 'draining')).toBe(false);
    for (const from of ['submitted', 'booting', 'running', 'draining', 'halting', 'error'] as const) {
      expect(pilotTransitionAllowed(from, 'stalled')).toBe(true);
    }
    expect(pilotTransitionAllowed('stalled', 'running')).toBe(true);
    expect(pilotTransitionAllowed('draining', 'running')).toBe(true);
  });
});
