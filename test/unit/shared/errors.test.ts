import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, REPORT_REFUSALS, VmpilotError, exitStatusForError } from '../../../src/shared/errors.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** Every .ts and .js file under `dir`. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(ts|js)$/.test(e.name))
    .map((e) => path.join(e.parentPath, e.name));
}

describe('the error catalogue', () => {
  const doc = readFileSync(path.join(root, 'docs/errors.md'), 'utf8');
  const documented = [...doc.matchAll(/`(VMP_[A-Z_]+)`/g)].map((m) => m[1]);

  it('documents every code and every report refusal in docs/errors.md, once, and nothing else', () => {
    const codes = [...Object.keys(ERROR_CODES), ...Object.keys(REPORT_REFUSALS)];
    expect([...documented].sort()).toEqual([...codes].sort());
  });

  it('gives every code a description', () => {
    for (const [code, spec] of Object.entries(ERROR_CODES)) expect(spec.meaning.length, code).toBeGreaterThan(10);
    for (const [code, text] of Object.entries(REPORT_REFUSALS)) expect(text.length, code).toBeGreaterThan(10);
  });

  it('holds every code the source uses: a VMP_ string in src/ is an error code or a report refusal', () => {
    const known = new Set([...Object.keys(ERROR_CODES), ...Object.keys(REPORT_REFUSALS)]);
    const unknown: string[] = [];
    for (const file of sources(path.join(root, 'src'))) {
      for (const m of readFileSync(file, 'utf8').matchAll(/['"`](VMP_[A-Z_]+)['"`]/g)) {
        if (!known.has(m[1]!)) unknown.push(`${path.relative(root, file)}: ${m[1]}`);
      }
    }
    expect(unknown).toEqual([]);
  });

  it('maps codes to the exit statuses the docs promise', () => {
    expect(exitStatusForError(new VmpilotError('VMP_USAGE', 'x'))).toBe(2);
    expect(exitStatusForError(new VmpilotError('VMP_CONFIG', 'x'))).toBe(2);
    expect(exitStatusForError(new VmpilotError('VMP_UNREACHABLE', 'x'))).toBe(3);
    expect(exitStatusForError(new VmpilotError('VMP_STATE', 'x'))).toBe(4);
    expect(exitStatusForError(new Error('bug'))).toBe(1);
  });
});
