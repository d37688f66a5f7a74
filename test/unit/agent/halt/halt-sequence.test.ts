import { describe, expect, it } from 'vitest';
import { shutdownReportMessage } from '../../../../src/agent/halt/halt-sequence.js';

describe('the shutdown message (report and shutdown_message)', () => {
  it('carries the reason after the code’s text, on one line', () => {
    expect(shutdownReportMessage(100, 'site downtime')).toBe('Shutdown as requested: site downtime');
    expect(shutdownReportMessage(300, 'No more work')).toBe('No more work');
    expect(shutdownReportMessage(100, '')).toBe('Shutdown as requested');
    // an admin's reason with a newline or a terminal escape cannot break the one-line file
    expect(shutdownReportMessage(100, 'site\ndowntime\u001b[2J')).toBe('Shutdown as requested: site downtime [2J');
  });
});
