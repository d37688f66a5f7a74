import { copyFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AGENT, runCommand, tempDir } from './harness.js';

describe('the one-file agent', () => {
  const tmp = tempDir();
  const alone = path.join(tmp.dir, 'vmpilot.cjs');
  copyFileSync(AGENT, alone);
  afterAll(() => tmp.cleanup());

  it('runs when copied alone into an empty directory', async () => {
    const version = await runCommand([alone, '--version']);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);

    const probe = await runCommand([alone, 'probe', '--json']);
    expect(probe.code, probe.stderr).toBe(0);
    const seen = JSON.parse(probe.stdout) as Record<string, unknown>;
    expect(JSON.stringify(seen)).toMatch(/cores/);
    expect(JSON.stringify(seen)).toMatch(/memory/i);
  });

  it('says what was wrong with a bad flag, without a stack trace, and exits 2', async () => {
    const r = await runCommand([alone, 'run', '--server', 'http://127.0.0.1:1', '--cores', 'many']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cores/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
