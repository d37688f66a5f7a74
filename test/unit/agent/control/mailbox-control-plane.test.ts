import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../../src/agent/config/load.js';
import { MailboxTransport } from '../../../../src/agent/control/mailbox-control-plane.js';
import { mailboxDirOf, parseMailboxUrl, replyPause } from '../../../../src/agent/control/mailbox-url.js';
import { names, parseRequest } from '../../../../src/mailbox/format.js';
import { makeMailbox } from '../../../../src/mailbox/files.js';
import { systemClock } from '../../../../src/shared/clock.js';
import { tempDir } from '../../server/helpers.js';

const until = async (what: string, check: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('mailbox URLs', () => {
  it('a mailbox is file:///DIR/NAME, with an optional poll interval', () => {
    expect(parseMailboxUrl('file:///shared/vmpilot/job-42')).toEqual({ dir: '/shared/vmpilot/job-42', pollMs: 100, pollMaxMs: 1000 });
    expect(parseMailboxUrl('file:///shared/vmpilot/job-42/?poll-ms=500')).toEqual({ dir: '/shared/vmpilot/job-42', pollMs: 500, pollMaxMs: 1000 });
    expect(parseMailboxUrl('file:///shared/x?poll-ms=50&poll-max-ms=5000')).toEqual({ dir: '/shared/x', pollMs: 50, pollMaxMs: 5000 });
    expect(parseMailboxUrl('file:///shared/x?poll-ms=2000')).toEqual({ dir: '/shared/x', pollMs: 2000, pollMaxMs: 2000 });
    expect(parseMailboxUrl('file://localhost/shared/x')).toEqual({ dir: '/shared/x', pollMs: 100, pollMaxMs: 1000 });
    for (const bad of ['file://otherhost/shared/x', 'file:///', 'file:///x?poll-ms=1', 'file:///x?poll=100', 'file:///x#frag', 'file:///x?poll-ms=500&poll-max-ms=100']) expect(typeof parseMailboxUrl(bad), bad).toBe('string');
    expect(mailboxDirOf('https://pilots.example.org')).toBeNull();
    expect(mailboxDirOf('file:///shared/vmpilot/job-42')).toBe('/shared/vmpilot/job-42');
  });

  it('looks for a reply less often the longer it waits: a tenth of the wait, between poll-ms and poll-max-ms', () => {
    expect([0, 500, 1_000, 2_000, 5_000, 10_000, 60_000].map((w) => replyPause(w, 100, 1_000))).toEqual([100, 100, 100, 200, 500, 1_000, 1_000]);
    expect(replyPause(60_000, 100, 100)).toBe(100);
  });

  it('refuses a state directory inside the spool, which the relay would take for a mailbox', () => {
    expect(() => loadConfig({ flags: { server: 'file:///shared/vmpilot/job-42', stateDir: '/shared/vmpilot/state' }, env: {} })).toThrow(
      /--state-dir \/shared\/vmpilot\/state is inside the mailbox spool \/shared\/vmpilot of --server file:\/\/\/shared\/vmpilot\/job-42: give the agent a state directory outside it/,
    );
    expect(loadConfig({ flags: { server: 'file:///shared/vmpilot/job-42', stateDir: '/scratch/job-42' }, env: {} }).stateDir).toBe('/scratch/job-42');
  });

  it('vmpilot run takes one as --server, and says what a bad one should be', () => {
    expect(loadConfig({ flags: { server: 'file:///shared/vmpilot/job-42' }, env: {} }).server).toBe('file:///shared/vmpilot/job-42');
    expect(() => loadConfig({ flags: { server: 'file://otherhost/x' }, env: {} })).toThrow(/--server "file:\/\/otherhost\/x": expected a mailbox URL file:\/\/\/DIR\/NAME/);
    expect(() => loadConfig({ flags: { server: 'ftp://x' }, env: {} })).toThrow(/expected an http:\/\/ or https:\/\/ URL, or a mailbox file:\/\/\/DIR\/NAME/);
  });
});

describe('the agent end of a mailbox', () => {
  let tmp: ReturnType<typeof tempDir>;
  let dir: string;
  beforeEach(async () => {
    tmp = tempDir();
    dir = path.join(tmp.dir, 'spool', 'job-1');
    await makeMailbox(dir);
  });
  afterEach(() => tmp.remove());

  const transport = (o: { takeTimeoutMs?: number } = {}) => new MailboxTransport({ dir, clock: systemClock, pollMs: 5, ...o });
  const answer = (id: string, status = 200, text = '{"ok":true}') => {
    writeFileSync(path.join(dir, 'in', `.${id}.tmp`), JSON.stringify({ v: 1, id, status, text, at: Date.now() }));
    renameSync(path.join(dir, 'in', `.${id}.tmp`), path.join(dir, 'in', names.reply(id)));
  };
  const take = (): string => {
    const name = readdirSync(path.join(dir, 'out')).find((n) => n.endsWith('.req'))!;
    renameSync(path.join(dir, 'out', name), path.join(dir, 'work', name));
    return name.slice(0, -'.req'.length);
  };

  it('a request is never seen half-written: every request file a reader finds is whole', async () => {
    const t = transport({ takeTimeoutMs: 60_000 });
    const body = JSON.stringify({ padding: 'x'.repeat(2 * 1024 * 1024) });
    let seen = 0;
    let stop = false;
    // a relay reading as fast as it can, while the agent writes
    const reader = (async () => {
      while (!stop) {
        for (const n of readdirSync(path.join(dir, 'out')).filter((f) => f.endsWith('.req'))) {
          const id = n.slice(0, -'.req'.length);
          const text = readFileSync(path.join(dir, 'out', n), 'utf8');
          expect(parseRequest(text, id).body).toBe(body);
          renameSync(path.join(dir, 'out', n), path.join(dir, 'work', n));
          answer(id);
          seen++;
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    for (let i = 0; i < 8; i++) {
      const r = await t.call({ method: 'POST', url: `file:///v1/pilots/1/reports`, headers: { authorization: 'Bearer pc_x' }, body, timeoutMs: 30_000 });
      expect(r).toEqual({ status: 200, text: '{"ok":true}' });
    }
    stop = true;
    await reader;
    expect(seen).toBe(8);
  });

  it('an aborted call takes back its request, or leaves a cancel when a relay has taken it', async () => {
    const t = transport({ takeTimeoutMs: 60_000 });
    const early = new AbortController();
    const first = t.call({ method: 'POST', url: 'file:///v1/pilots/1/match', headers: { authorization: 'Bearer pc_x' }, body: '{}', timeoutMs: 30_000, signal: early.signal });
    await until('the request', () => readdirSync(path.join(dir, 'out')).some((n) => n.endsWith('.req')));
    early.abort();
    await expect(first).rejects.toMatchObject({ code: 'ABORT_ERR' });
    expect(readdirSync(path.join(dir, 'out'))).toEqual([]);

    const late = new AbortController();
    const second = t.call({ method: 'POST', url: 'file:///v1/pilots/1/match', headers: { authorization: 'Bearer pc_x' }, body: '{}', timeoutMs: 30_000, signal: late.signal });
    await until('the request', () => readdirSync(path.join(dir, 'out')).some((n) => n.endsWith('.req')));
    const id = take();
    late.abort();
    await expect(second).rejects.toMatchObject({ code: 'ABORT_ERR' });
    expect(readdirSync(path.join(dir, 'out'))).toEqual([names.cancel(id)]);
    // its answer, when it comes anyway, is read by nobody and removed at the next call
    answer(id);
    const third = t.call({ method: 'GET', url: 'file:///v1/health', headers: { authorization: 'Bearer x' }, timeoutMs: 30_000 });
    await until('the next request', () => readdirSync(path.join(dir, 'out')).some((n) => n.endsWith('.req')));
    expect(readdirSync(path.join(dir, 'in'))).toEqual([]);
    answer(take());
    expect((await third).status).toBe(200);
  });

  it('a held call looks into the mailbox less and less often, and still sees its late answer', async () => {
    let looks = 0;
    const counting = { now: () => systemClock.now(), sleep: (ms: number, signal?: AbortSignal) => (looks++, systemClock.sleep(ms, signal)) };
    const t = new MailboxTransport({ dir, clock: counting, pollMs: 5, pollMaxMs: 50, takeTimeoutMs: 60_000 });
    const call = t.call({ method: 'POST', url: 'file:///v1/pilots/1/match', headers: { authorization: 'Bearer pc_x' }, body: '{}', timeoutMs: 30_000 });
    await until('the request', () => readdirSync(path.join(dir, 'out')).some((n) => n.endsWith('.req')));
    const id = take();
    // the relay holds the match at the server for 2 s (400 looks at a steady 5 ms), then answers
    const t0 = Date.now();
    while (Date.now() - t0 < 2_000) await new Promise((r) => setTimeout(r, 50));
    answer(id);
    expect(await call).toEqual({ status: 200, text: '{"ok":true}' });
    expect(looks).toBeLessThan(120);
  });

  it('a call nobody answers in time fails as a timeout and takes back its request', async () => {
    const t = transport({ takeTimeoutMs: 60_000 });
    const call = t.call({ method: 'POST', url: 'file:///v1/pilots/1/heartbeat', headers: { authorization: 'Bearer pc_x' }, body: '{}', timeoutMs: 300 });
    await expect(call).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(readdirSync(path.join(dir, 'out'))).toEqual([]);
  });

  it('a reply it cannot read fails the call at once, naming the file and why, and takes the request back', async () => {
    const t = transport({ takeTimeoutMs: 60_000 });
    const call = t.call({ method: 'POST', url: 'file:///v1/register', headers: { authorization: 'Bearer t' }, body: '{}', timeoutMs: 10_000 });
    await until('the request', () => readdirSync(path.join(dir, 'out')).some((n) => n.endsWith('.req')));
    const id = take();
    // something at the reply's name that cannot be read as one (as a reply the agent's account may not read is)
    mkdirSync(path.join(dir, 'in', names.reply(id)));
    const err = await call.catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'EISDIR', message: expect.stringContaining(`cannot read the relay's reply ${path.join(dir, 'in', names.reply(id))}`) });
    // not a 30 s wait for an answer that cannot come: the relay is told to drop it
    expect(readdirSync(path.join(dir, 'out'))).toEqual([names.cancel(id)]);
  });

  it('a reply that is not one is a protocol error, not an answer', async () => {
    const t = transport({ takeTimeoutMs: 60_000 });
    const call = t.call({ method: 'POST', url: 'file:///v1/register', headers: { authorization: 'Bearer t' }, body: '{}', timeoutMs: 30_000 });
    await until('the request', () => readdirSync(path.join(dir, 'out')).some((n) => n.endsWith('.req')));
    const id = take();
    writeFileSync(path.join(dir, 'in', names.reply(id)), '{"v":1,"id":"someone-else","status":200,"text":"","at":1}');
    await expect(call).rejects.toMatchObject({ code: 'EPROTO', message: expect.stringMatching(/its id field says "someone-else"/) });
  });
});
