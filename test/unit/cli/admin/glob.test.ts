import { describe, expect, it } from 'vitest';
import { globMatch } from '../../../../src/cli/admin/glob.js';

describe('host globs (halt/drain --host)', () => {
  it('match the whole name with * and ?, case-insensitively', () => {
    expect(globMatch('*.cern.ch', 'vm-1.CERN.ch')).toBe(true);
    expect(globMatch('vm-?.cern.ch', 'vm-1.cern.ch')).toBe(true);
    expect(globMatch('vm-?.cern.ch', 'vm-12.cern.ch')).toBe(false);
    expect(globMatch('cern.ch', 'vm-1.cern.ch')).toBe(false);
    expect(globMatch('*', '')).toBe(true);
    expect(globMatch('a*b*c', 'axxbyyc')).toBe(true);
    expect(globMatch('a*b*c', 'axxbyy')).toBe(false);
    expect(globMatch('^vm.*$', 'vm-1')).toBe(false);
    expect(globMatch('^vm.*$', '^vm.xyz$')).toBe(true);
  });

  it('answer at once for a pattern and a name built to make a backtracking matcher hang', () => {
    // (a+)+$ style blow-up for a regex; here at most name × pattern steps
    const name = `${'a'.repeat(255)}!`;
    const pattern = `${'*a'.repeat(120)}*b`;
    expect(globMatch(pattern, name)).toBe(false);
  });
});
