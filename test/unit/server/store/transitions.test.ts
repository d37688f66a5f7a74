import { describe, expect, it } from 'vitest';
import type { PayloadState } from '../../../../src/protocol/index.js';
import { endStateFor, payloadTransitionAllowed, pilotTransitionAllowed } from '../../../../src/server/store/transitions.js';

const ALL: PayloadState[] = ['queued', 'assigned', 'running', 'done', 'failed', 'lost'];

describe('payload transitions', () => {
  it('follow queued → assigned → running → done | failed | lost', () => {
    expect(payloadTransitionAllowed('queued', 'assigned')).toBe(true);
    expect(payloadTransitionAllowed('assigned', 'running')).toBe(true);
    for (const end of ['done', 'failed', 'lost'] as const) expect(payloadTransitionAllowed('running', end)).toBe(true);
  });

  it('let an unstarted payload go back to the queue, but never a running one', () => {
    expect(payloadTransitionAllowed('assigned', 'queued')).toBe(true);
    expect(payloadTransitionAllowed('running', 'queued')).toBe(false);
    expect(payloadTransitionAllowed('queued', 'running')).toBe(false);
  });

  it('never leave a final state', () => {
    for (const from of ['done', 'failed', 'lost'] as const) for (const to of ALL) expect(payloadTransitionAllowed(from, to)).toBe(false);
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
});
