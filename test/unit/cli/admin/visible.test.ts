import { describe, expect, it } from 'vitest';
import { pilotTable, payloadDetail } from '../../../../src/cli/admin/format.js';
import { visible, visibleJson, visibleLines } from '../../../../src/cli/admin/visible.js';
import type { PayloadView, PilotView } from '../../../../src/protocol/index.js';

describe('text from pilots on a terminal', () => {
  it('shows control characters as escapes', () => {
    expect(visible('a\u001b]0;owned\u0007b')).toBe('a\\e]0;owned\\x07b');
    expect(visible('x\ny\rz\t')).toBe('x\\ny\\rz\\t');
    expect(visible('\u009b2J \u202eevil')).toBe('\\x9b2J \\u202eevil');
    expect(visibleLines('line 1\n\u001b[2Jline 2\t.')).toBe('line 1\n\\e[2Jline 2\t.');
    expect(JSON.parse(visibleJson({ h: 'a\u009bb\u202e' }))).toEqual({ h: 'a\u009bb\u202e' });
    expect(visibleJson({ h: 'a\u009bb\u202e\u001b' })).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/u);
  });

  it('keep a hostname from forging table rows or reaching the terminal raw', () => {
    const pilot = (id: number, hostname: string) =>
      ({ id, hostname, state: 'running', cores: 4, coresUsed: 0, lastHeartbeatAt: null, shutdownCode: null, shutdownMessage: null }) as PilotView;
    const text = pilotTable([pilot(1, 'vm-1\n99  admin.example.org  running  4/4'), pilot(2, '\u001b]0;pwned\u0007vm-2')], 0);
    expect(text.split('\n')).toHaveLength(3);
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f]/);
    expect(text).toContain('vm-1\\n99');
  });

  it('keeps the output tail readable, line by line, with escapes shown', () => {
    const p = { id: 1, name: 'x', group: 'g', state: 'done', command: ['x'], cores: { min: 1, max: 1, wholeNode: false }, outputTail: 'ok\n\u001b[31mred\n' } as PayloadView;
    const text = payloadDetail({ ...p, memoryMb: null, wallSec: null, priority: 0, pilotId: null, allocatedCores: null, exitCode: 0, signal: null, submittedAt: 0, assignedAt: null, startedAt: null, endedAt: null, attempts: 1, message: null }, 0);
    expect(text).toContain('ok\n\\e[31mred');
    expect(text).not.toContain('\u001b');
  });
});
