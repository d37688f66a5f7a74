/**
 * Every `endpoints:` example in docs/director.md is a configuration the
 * server accepts, so the worked examples stay true.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { endpointsFrom } from '../../../../src/server/director/endpoint-config.js';

const text = readFileSync(new URL('../../../../docs/director.md', import.meta.url), 'utf8');
const examples = [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((y) => /^(groups|endpoints):/m.test(y));

describe('docs/director.md', () => {
  it('has the examples', () => {
    expect(examples.length).toBeGreaterThanOrEqual(4);
  });
  for (const [i, y] of examples.entries()) {
    it(`example ${i + 1} is a valid endpoints configuration`, () => {
      const doc = parse(y) as { endpoints: unknown };
      expect(endpointsFrom(doc.endpoints, `docs/director.md example ${i + 1}`).length).toBeGreaterThan(0);
    });
  }
});
