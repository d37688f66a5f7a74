/**
 * Attacks (issue 11, points 10 and 11) on the administrator's terminal.
 * A pilot chooses its hostname, and its payloads their output and messages:
 * printed raw, an escape sequence sets the terminal title or rewrites the
 * screen, and a newline forges rows of `pilots`. And `halt --host` took a
 * regular expression, which a hostname built for it could make run for
 * hours. Now the admin CLI shows control characters as escapes, and --host
 * is a glob matched without backtracking.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, PILOT_TOKEN, admin, killAll, kill, runCommand, SERVER, startServer, tempDir } from '../integration/harness.js';

const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

async function post<T>(url: string, route: string, token: string, body: unknown): Promise<T> {
  const res = await fetch(url + route, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return (await res.json()) as T;
}

describe("security: pilots' text cannot reach the administrator's terminal raw", () => {
  const tmp = tempDir('vmpilot-sec-tty-');
  afterEach(() => killAll());
  afterAll(() => tmp.cleanup());

  it('shows hostnames, messages and output tails with their control characters escaped, one row per pilot', async () => {
    const server = await startServer(path.join(tmp.dir, 'a.db'), ['--match-wait-max', '0']);
    const api = admin(server.url);
    const env = { VMPILOT_SERVER: server.url, VMPILOT_TOKEN: ADMIN_TOKEN };
    const honest = await post<{ pilotId: number }>(server.url, '/v1/register', PILOT_TOKEN, { hostname: 'wn-1.example.org', version: '0.1.0', cores: 1, memoryMb: 100 });
    // a title, a clear screen, a forged row and a right-to-left override, in one hostname
    const hostile = '\u001b]0;you have been pwned\u0007\u001b[2Jvm-7\n1  wn-1.example.org  running  0/1  1s ago  -\u202e';
    const rogue = await post<{ pilotId: number; credential: string }>(server.url, '/v1/register', PILOT_TOKEN, { hostname: hostile, version: '0.1.0', cores: 1, memoryMb: 100 });
    const id = await api.submit({ command: ['/bin/true'] });
    // a second payload the rogue gives back, with a reason that lands in its history
    const given = await api.submit({ command: ['/bin/true'] });
    const claim = () =>
      post<{ payload: { id: number } }>(server.url, `/v1/pilots/${rogue.pilotId}/match`, rogue.credential, {
        freeCores: 1, totalCores: 1, freeMemoryMb: 100, remainingSec: null, holding: [id], waitSec: 0,
      });
    expect((await claim()).payload.id).toBe(id);
    expect((await claim()).payload.id).toBe(given);
    await post(server.url, `/v1/pilots/${rogue.pilotId}/reports`, rogue.credential, {
      reports: [
        { seq: 1, at: Date.now(), type: 'payload-started', payloadId: id },
        { seq: 2, at: Date.now(), type: 'payload-ended', payloadId: id, exitCode: null, signal: '\u001b[31mKILL', outputTail: 'fine\n\u001b]0;pwned\u0007\u001b[1A\u001b[2Kdone: ok\n', message: 'm\u009b2J' },
        { seq: 3, at: Date.now(), type: 'payload-released', payloadId: given, reason: 'busy\n2026-01-01T00:00:00.000Z  done  1  ended\u001b]0;pwned\u0007' },
        { seq: 4, at: Date.now(), type: 'shutdown', code: 100, message: 'bye\u001b[?1049h' },
      ],
    });

    const pilots = await runCommand([SERVER, 'pilots'], env);
    expect(pilots.code, pilots.stderr).toBe(0);
    expect(pilots.stdout).not.toMatch(CONTROL);
    const rows = pilots.stdout.trim().split('\n');
    expect(rows).toHaveLength(3); // the header, the honest pilot and the rogue: no forged row
    expect(rows.filter((r) => /^\d+\s+wn-1\.example\.org\s/.test(r)).map((r) => Number(r.split(/\s+/)[0]))).toEqual([honest.pilotId]);
    expect(pilots.stdout).toContain('\\e]0;you have been pwned\\x07');
    for (const args of [['jobs'], ['job', String(id)], ['job', String(given)], ['pilots', '--json'], ['jobs', '--json'], ['job', String(id), '--json']]) {
      const r = await runCommand([SERVER, ...args], env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout, args.join(' ')).not.toMatch(CONTROL);
    }
    const job = await runCommand([SERVER, 'job', String(id)], env);
    expect(job.stdout).toMatch(/--- output \(last lines\) ---\nfine\n\\e\]0;pwned\\x07\\e\[1A\\e\[2Kdone: ok/);
    // its history table: the reason the pilot gave is one escaped cell, no forged step
    const history = (await runCommand([SERVER, 'job', String(given)], env)).stdout.split('--- history ---\n')[1]!.trim().split('\n');
    expect(history.filter((line) => /^\d{4}-\d\d-\d\dT\S+\s+done\b/.test(line))).toEqual([]);
    expect(history.find((line) => /\squeued\s/.test(line) && line.includes('released by pilot'))).toContain('busy\\n2026-01-01T00:00:00.000Z  done  1  ended\\e]0;pwned\\x07');
    await server.stop();
  });

  it("shows a pilot's external id, labels, features and instruction messages escaped, in pilots and pilot N", async () => {
    const server = await startServer(path.join(tmp.dir, 'c.db'));
    const env = { VMPILOT_SERVER: server.url, VMPILOT_TOKEN: ADMIN_TOKEN };
    const forged = '\u001b]0;pwned\u0007\n9  wn-9  running  0/1  -  -  none  1s ago  -\u202e';
    const rogue = await post<{ pilotId: number; credential: string }>(server.url, '/v1/register', PILOT_TOKEN, {
      hostname: 'vm-1', version: '0.1.0', cores: 1, memoryMb: 100, externalId: `job${forged}`, labels: { site: `X${forged}` },
    });
    const beat = await fetch(`${server.url}/v1/pilots/${rogue.pilotId}/heartbeat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${rogue.credential}`, 'content-type': 'application/json' },
      body: JSON.stringify({ at: Date.now(), state: 'serving', version: '0.1.0', uptimeSec: 1, cores: { total: 1, used: 0, free: 1 }, memoryMb: { total: 100, used: 1 }, payloads: [], features: { [`k${forged}`]: `v${forged}` } }),
    });
    expect(beat.status, await beat.text()).toBe(200);
    const drain = await runCommand([SERVER, 'drain', String(rogue.pilotId), '--reason', `because${forged}`], env);
    expect(drain.code, drain.stderr).toBe(0);
    const instruction = Number(drain.stdout.trim());
    await post(server.url, `/v1/pilots/${rogue.pilotId}/reports`, rogue.credential, {
      reports: [{ seq: 1, at: Date.now(), type: 'instruction-done', instructionId: instruction, ok: false, message: `no${forged}` }],
    });

    const pilots = await runCommand([SERVER, 'pilots'], env);
    expect(pilots.code, pilots.stderr).toBe(0);
    expect(pilots.stdout).not.toMatch(CONTROL);
    expect(pilots.stdout.trim().split('\n')).toHaveLength(2); // the header and the rogue: no forged row
    expect(pilots.stdout).toContain('job\\e]0;pwned\\x07\\n9  wn-9');
    expect(pilots.stdout).toContain('site=X\\e]0;pwned');
    const detail = await runCommand([SERVER, 'pilot', String(rogue.pilotId)], env);
    expect(detail.code, detail.stderr).toBe(0);
    expect(detail.stdout).not.toMatch(CONTROL);
    expect(detail.stdout).toMatch(/^external id\s+job\\e\]0;pwned\\x07\\n9  wn-9 .*\\u202e$/m);
    expect(detail.stdout).toMatch(/^k\\e\]0;pwned.*\s+v\\e\]0;pwned/m);
    expect(detail.stdout).toMatch(/drain: because\\e\]0;pwned.*\sno\\e\]0;pwned/);
    expect(detail.stdout.split('\n').filter((l) => /^9\s+wn-9\s/.test(l))).toEqual([]);
    const json = await runCommand([SERVER, 'pilot', String(rogue.pilotId), '--json'], env);
    expect(json.code, json.stderr).toBe(0);
    expect(json.stdout).not.toMatch(CONTROL);
    expect((JSON.parse(json.stdout) as { pilot: { externalId: string } }).pilot.externalId).toBe(`job${forged}`);
    await server.stop();
  });

  it('matches halt --host without backtracking: a hostname built against a regular expression cannot make it hang', async () => {
    const server = await startServer(path.join(tmp.dir, 'b.db'));
    const env = { VMPILOT_SERVER: server.url, VMPILOT_TOKEN: ADMIN_TOKEN };
    // the kind of pattern an admin writes, and the kind of name that makes a backtracking engine take exponential time
    await post(server.url, '/v1/register', PILOT_TOKEN, { hostname: `${'a'.repeat(40)}!`, version: '0.1.0', cores: 1, memoryMb: 100 });
    const ok = await post<{ pilotId: number }>(server.url, '/v1/register', PILOT_TOKEN, { hostname: 'wn-3.example.org', version: '0.1.0', cores: 1, memoryMb: 100 });
    const child = spawn(process.execPath, [SERVER, 'halt', '--host', '^([a-z0-9]+-?)+\\.example\\.org$'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const finished = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 20_000))]);
    kill(child);
    expect(finished, 'halt --host still running after 20 s').toBe(true);
    // a glob: regular expression syntax is plain text, so nothing matches
    expect(err).toMatch(/no live pilot matches/);
    const glob = await runCommand([SERVER, 'halt', '--host', '*.example.org'], env);
    expect(glob.code, glob.stderr).toBe(0);
    expect(glob.stdout.trim().split('\n').map((l) => Number(l.split(' ')[0]))).toEqual([ok.pilotId]);
    await server.stop();
  });
});
