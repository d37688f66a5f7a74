import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, VmpilotError, exitStatusForError } from '../../../src/shared/errors.js';

describe('the error catalogue', () => {
  const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  const documented = [...doc.matchAll(/`(VMP_[A-Z_]+)`/g)].map((m) => m[1]);

  it('documents every code in docs/errors.md, once, and nothing else', () => {
    const codes = Object.keys(ERROR_CODES);
    expect([...documented].sort()).toEqual([...codes].sort());
  });

  it('gives every code a description', () => {
    for (const [code, text] of Object.entries(ERROR_CODES)) expect(text.length, code).toBeGreaterThan(10);
  });

  it('maps codes to the exit statuses the docs promise', () => {
    expect(exitStatusForError(new VmpilotError('VMP_USAGE', 'x'))).toBe(2);
    expect(exitStatusForError(new VmpilotError('VMP_CONFIG', 'x'))).toBe(2);
    expect(exitStatusForError(new VmpilotError('VMP_UNREACHABLE', 'x'))).toBe(3);
    expect(exitStatusForError(new VmpilotError('VMP_STATE', 'x'))).toBe(4);
    expect(exitStatusForError(new Error('bug'))).toBe(1);
  });
});
