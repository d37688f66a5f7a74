/**
 * Attack (issues 11 and 21 together): a pilot's capabilities are its own
 * text (a GPU model, a site, tags), and `job N` quotes them when it says why
 * a queued payload waits. Printed raw, an escape sequence in a site name
 * sets the administrator's terminal title or forges a line. The admin CLI
 * shows their control characters as escapes, as it does hostnames.
 */
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, PILOT_TOKEN, admin, killAll, runCommand, SERVER, startServer, tempDir } from '../integration/harness.js';

const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

describe("security: a pilot's capabilities cannot reach the administrator's terminal raw", () => {
  const tmp = tempDir('vmpilot-sec-caps-tty-');
  afterEach(() => killAll());
  afterAll(() => tmp.cleanup());

  it('job N says why a payload waits, quoting the pilot-chosen site and tags with their control characters escaped', async () => {
    const server = await startServer(path.join(tmp.dir, 'a.db'));
    const api = admin(server.url);
    const env = { VMPILOT_SERVER: server.url, VMPILOT_TOKEN: ADMIN_TOKEN };
    const site = 'X\u001b]0;pwned\u0007\u001b[2J';
    const reg = await fetch(`${server.url}/v1/register`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PILOT_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        hostname: 'wn-1', version: '0.1.0', cores: 4, memoryMb: 1000,
        capabilities: { site, tags: ['ok\nwaiting  forged line'], gpus: [{ id: '0', model: 'A100\u001b[31m', memoryMb: 1 }] },
      }),
    });
    expect(reg.status).toBe(201);
    const id = await api.submit({ command: ['/bin/true'], requirements: { site: ['CERN'] } });
    const job = await runCommand([SERVER, 'job', String(id)], env);
    expect(job.code, job.stderr).toBe(0);
    expect(job.stdout).not.toMatch(CONTROL);
    // the reason is there, with the site as the pilot sent it, escaped
    expect(job.stdout).toMatch(/waiting\s+.*site X\\e\]0;pwned\\x07\\e\[2J/);
    const tagged = await api.submit({ command: ['/bin/true'], requirements: { tag: ['cvmfs'] } });
    const byTag = await runCommand([SERVER, 'job', String(tagged)], env);
    expect(byTag.stdout).not.toMatch(CONTROL);
    expect(byTag.stdout.split('\n').filter((l) => /^waiting\s/.test(l))).toHaveLength(1);
    expect(byTag.stdout).toContain('ok\\nwaiting  forged line');
    for (const args of [['pilots'], ['pilots', '--json'], ['jobs'], ['job', String(id), '--json']]) {
      const r = await runCommand([SERVER, ...args], env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout, args.join(' ')).not.toMatch(CONTROL);
    }
    await server.stop();
  });
});
