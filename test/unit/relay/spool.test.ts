import { chmodSync, chownSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HttpControlPlane } from '../../../src/agent/control/http-control-plane.js';
import { MailboxTransport, mailboxControlPlane } from '../../../src/agent/control/mailbox-control-plane.js';
import { names, requestId } from '../../../src/mailbox/format.js';
import type { PilotView } from '../../../src/protocol/index.js';
import { Spool, pauseAfter } from '../../../src/relay/spool.js';
import type { PilotForwarder } from '../../../src/relay/forward.js';
import { systemClock } from '../../../src/shared/clock.js';
import { isVmpilotError } from '../../../src/shared/errors.js';
import { createLogger, silentLogger, type Logger } from '../../../src/shared/log.js';
import { mailboxRefusal } from '../../../src/relay/mailbox-check.js';
import { heartbeat, matchRequest, registration, tempDir } from '../server/helpers.js';
import { PILOT, forwarderTo, liveServer } from './server.js';

type Live = Awaited<ReturnType<typeof liveServer>>;

const until = async (what: string, check: () => boolean | Promise<boolean>, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

/** A logger that keeps its lines, parsed. */
function capture(): { log: Logger; lines: { msg: string; mailbox?: string; why?: string; err?: string }[] } {
  const lines: { msg: string }[] = [];
  return { log: createLogger({ level: 'debug', destination: { write: (l: string) => lines.push(JSON.parse(l) as { msg: string }) } }), lines };
}

/** A spool whose forwarder counts what it sends; `uid`: the account it moves mailboxes of (default its own). */
function spoolOn(dir: string, server: Live, sent: string[] = [], o: { uid?: number; log?: Logger } = {}) {
  const { forwarder, upstream } = forwarderTo(server.url);
  const counting = { forward: (call: Parameters<PilotForwarder['forward']>[0]) => (sent.push(call.path), forwarder.forward(call)) } as unknown as PilotForwarder;
  const spool = new Spool({ dir, forwarder: counting, clock: systemClock, log: o.log ?? silentLogger(), pollMs: 20, ...(o.uid === undefined ? {} : { uid: o.uid }) });
  const stop = new AbortController();
  return {
    spool,
    sent,
    start: async () => {
      await spool.start();
      const running = spool.run(stop.signal);
      return async () => {
        stop.abort();
        await running;
        upstream.close();
      };
    },
  };
}

describe('mailbox mode: the agent writes files, the relay carries them to the server', () => {
  let tmp: ReturnType<typeof tempDir>;
  let server: Live;
  let stops: (() => Promise<void>)[] = [];
  beforeEach(async () => {
    tmp = tempDir();
    server = await liveServer(5);
    stops = [];
  });
  afterEach(async () => {
    for (const s of stops) await s();
    await server.close();
    tmp.remove();
  });

  const box = (name = 'job-1') => path.join(tmp.dir, 'spool', name);
  const agentOn = (dir: string, o: { takeTimeoutMs?: number } = {}) =>
    new HttpControlPlane({ server: `file://${dir}`, token: PILOT, transport: new MailboxTransport({ dir, clock: systemClock, pollMs: 20, ...o }) });

  it('registers, heartbeats, holds a match open until work comes, reports: the same replies as over HTTP, through the relay', async () => {
    const s = spoolOn(path.join(tmp.dir, 'spool'), server);
    stops.push(await s.start());
    const control = mailboxControlPlane({ server: `file://${box()}?poll-ms=20`, token: PILOT, clock: systemClock });
    const reg = await control.register(registration({ hostname: 'cn0001' }));
    expect(reg.pilotId).toBeGreaterThan(0);
    const pilot = (await server.call('GET', `/v1/pilots/${reg.pilotId}`)).body as PilotView;
    // through a relay with its token: the server knows which
    expect(pilot.relay).toEqual({ name: 'login01', site: 'TEST' });
    expect((await control.heartbeat(heartbeat())).intervalSec).toBe(60);
    // the relay holds the long poll at the server for the agent: a payload submitted meanwhile comes back at once
    const waiting = control.match(matchRequest({ waitSec: 5 }));
    await until('the relay to hold the match', () => readdirSync(path.join(box(), 'work')).length === 1);
    const id = await server.submit(['/bin/true']);
    const reply = await waiting;
    expect(reply.payload?.id).toBe(id);
    const reports = await control.report([{ seq: 1, at: 1, type: 'payload-started', payloadId: id, pid: 4242 }]);
    expect(reports).toMatchObject({ appliedSeq: 1, refused: [] });
    // every message read once and gone: nothing left in the mailbox
    for (const d of ['out', 'work', 'in']) expect(readdirSync(path.join(box(), d)), d).toEqual([]);
    expect(s.sent).toEqual(['/v1/register', `/v1/pilots/${reg.pilotId}/heartbeat`, `/v1/pilots/${reg.pilotId}/match`, `/v1/pilots/${reg.pilotId}/reports`]);
  });

  it('an aborted match is dropped at the server too: the next payload goes to whoever asks next', async () => {
    // a server that would hold the match longer than the test waits for the relay to drop it
    await server.close();
    server = await liveServer(60);
    const s = spoolOn(path.join(tmp.dir, 'spool'), server);
    stops.push(await s.start());
    const control = agentOn(box());
    const reg = await control.register(registration());
    const abort = new AbortController();
    const held = control.match(matchRequest({ waitSec: 60 }), abort.signal);
    await until('the relay to hold the match', () => readdirSync(path.join(box(), 'work')).length === 1);
    abort.abort();
    await expect(held).rejects.toMatchObject({ code: 'VMP_UNREACHABLE', details: { aborted: true } });
    // the relay has let go of it (the cancel file, then the work file, are gone)
    await until('the relay to drop the match', () => readdirSync(path.join(box(), 'work')).length === 0 && readdirSync(path.join(box(), 'out')).length === 0);
    const id = await server.submit(['/bin/true']);
    // another pilot asking now gets it: the dropped match claimed nothing
    const other = agentOn(box('job-2'));
    await other.register(registration({ hostname: 'other' }));
    expect((await other.match(matchRequest({ waitSec: 0 }))).payload?.id).toBe(id);
    expect((await server.call('GET', `/v1/payloads/${id}`)).body).toMatchObject({ state: 'assigned', pilotId: reg.pilotId + 1 });
  });

  it('nothing but the pilot protocol goes through: a request for an admin route is refused and never sent', async () => {
    const s = spoolOn(path.join(tmp.dir, 'spool'), server);
    stops.push(await s.start());
    mkdirSync(path.join(box(), 'out'), { recursive: true });
    mkdirSync(path.join(box(), 'in'), { recursive: true });
    const id = requestId(Date.now(), 1, 1);
    const forged = { v: 1, id, method: 'POST', path: '/v1/payloads', authorization: 'Bearer admin-token', body: '{"command":["/bin/rm","-rf","/"]}', at: Date.now(), expiresAt: Date.now() + 60_000 };
    writeFileSync(path.join(box(), 'out', names.request(id)), JSON.stringify(forged));
    await until('the refusal', () => readdirSync(path.join(box(), 'in')).includes(names.reply(id)));
    expect(s.sent).toEqual([]);
    expect(await server.store.listPayloads({})).toEqual([]);
  });

  it('carries many calls of several agents at once, each sent once and answered once, in the order each agent made them', async () => {
    const s = spoolOn(path.join(tmp.dir, 'spool'), server);
    stops.push(await s.start());
    const agents = [agentOn(box('job-1')), agentOn(box('job-2')), agentOn(box('job-3'))];
    const regs = await Promise.all(agents.map((c, i) => c.register(registration({ hostname: `cn${i}` }))));
    // each agent numbers its reports: the server applied each seq once, in order
    for (let seq = 1; seq <= 10; seq++) {
      const replies = await Promise.all(agents.map((c) => c.report([{ seq, at: seq, type: 'state', state: seq % 2 ? 'serving' : 'draining', reason: `step ${seq}` }])));
      for (const r of replies) expect(r.appliedSeq).toBe(seq);
    }
    expect(s.sent).toHaveLength(3 + 30);
    for (const r of regs) expect(s.sent.filter((p) => p === `/v1/pilots/${r.pilotId}/reports`)).toHaveLength(10);
    expect(await server.store.listPilots({})).toHaveLength(3);
  });

  it('a relay that was killed answers what it had taken "interrupted" when it starts again, and sends none of it twice', async () => {
    const dir = box();
    for (const d of ['out', 'work', 'in']) mkdirSync(path.join(dir, d), { recursive: true });
    const now = Date.now();
    const taken = requestId(now, 1, 1); // taken, never answered
    const answered = requestId(now, 1, 2); // answered, not yet cleaned up
    const req = (id: string) => JSON.stringify({ v: 1, id, method: 'POST', path: '/v1/register', authorization: `Bearer ${PILOT}`, body: JSON.stringify(registration()), at: now, expiresAt: now + 60_000 });
    writeFileSync(path.join(dir, 'work', names.request(taken)), req(taken));
    writeFileSync(path.join(dir, 'work', names.request(answered)), req(answered));
    writeFileSync(path.join(dir, 'in', names.reply(answered)), JSON.stringify({ v: 1, id: answered, status: 201, text: '{}', at: now }));
    const s = spoolOn(path.join(tmp.dir, 'spool'), server);
    stops.push(await s.start());
    await until('the interrupted request to be answered', () => readdirSync(path.join(dir, 'in')).includes(names.reply(taken)));
    await until('the work files to go', () => readdirSync(path.join(dir, 'work')).length === 0);
    const { readFileSync } = await import('node:fs');
    const reply = JSON.parse(readFileSync(path.join(dir, 'in', names.reply(taken)), 'utf8')) as { status: number; text: string };
    expect(reply.status).toBe(502);
    expect(JSON.parse(reply.text)).toEqual({ error: { code: 'VMP_UNREACHABLE', message: expect.stringMatching(/interrupted \(the relay restarted before the server answered\); ask again/) } });
    expect(s.sent).toEqual([]);
    expect(await server.store.listPilots({})).toEqual([]);
  });

  it('a request the agent stopped waiting for is not sent', async () => {
    const dir = box();
    mkdirSync(path.join(dir, 'out'), { recursive: true });
    const id = requestId(Date.now(), 1, 1);
    writeFileSync(path.join(dir, 'out', names.request(id)), JSON.stringify({ v: 1, id, method: 'POST', path: '/v1/register', authorization: `Bearer ${PILOT}`, body: JSON.stringify(registration()), at: 1, expiresAt: 2 }));
    const s = spoolOn(path.join(tmp.dir, 'spool'), server);
    stops.push(await s.start());
    await until('the stale request to go', () => readdirSync(path.join(dir, 'out')).length === 0 && readdirSync(path.join(dir, 'work')).length === 0);
    expect(s.sent).toEqual([]);
  });

  it('with no relay, a call fails as a refused connection does, and takes its request back', async () => {
    const control = agentOn(box(), { takeTimeoutMs: 200 });
    const err = await control.register(registration()).catch((e: unknown) => e);
    expect(isVmpilotError(err, 'VMP_UNREACHABLE')).toBe(true);
    expect((err as Error).message).toMatch(/no relay took the request in 0 s: is vmpilot relay --spool .*spool running, as this agent's account \(uid \d+\)\?/);
    expect(readdirSync(path.join(box(), 'out'))).toEqual([]);
  });

  it('moves only mailboxes of its own account that no other may write, and says why it leaves one alone', async () => {
    const own = process.getuid!();
    const mine = agentOn(box('job-1'));
    // a mailbox another account made in the shared spool, a link to a directory elsewhere, and one anybody may write
    for (const name of ['job-2', 'job-4']) for (const d of ['out', 'work', 'in']) mkdirSync(path.join(box(name), d), { recursive: true, mode: 0o700 });
    const asRoot = own === 0;
    // (another account's, when the test may make one: as root)
    if (asRoot) for (const p of ['', 'out', 'work', 'in']) chownSync(path.join(box('job-2'), p), 65534, 65534);
    symlinkSync(box('job-2'), box('job-3'));
    chmodSync(box('job-4'), 0o777);
    const write = (name: string) => {
      const id = requestId(Date.now(), 1, 1);
      writeFileSync(path.join(box(name), 'out', names.request(id)), JSON.stringify({ v: 1, id, method: 'POST', path: '/v1/register', authorization: `Bearer ${PILOT}`, body: JSON.stringify(registration({ hostname: name })), at: Date.now(), expiresAt: Date.now() + 60_000 }));
    };
    write('job-3');
    write('job-4');
    const { log, lines } = capture();
    const s = spoolOn(path.join(tmp.dir, 'spool'), server, [], { log });
    stops.push(await s.start());
    // its own agent's mailbox is moved
    await mine.register(registration({ hostname: 'mine' }));
    const refused = () => lines.filter((l) => l.msg === 'mailbox not moved');
    const expected = [
      ...(asRoot ? [['job-2', expect.stringMatching(/job-2 belongs to uid 65534, and this relay runs as uid 0: a relay moves only the mailboxes of its own account/)]] : []),
      ['job-3', expect.stringMatching(/job-3 is a symbolic link; a mailbox and its out\/, work\/, in\/ must be directories/)],
      ['job-4', expect.stringMatching(/job-4 may be written by other accounts \(mode 0777\)/)],
    ];
    await until('the relay to say why it leaves them alone', () => refused().length === expected.length);
    expect(refused().map((l) => [l.mailbox, l.why])).toEqual(expected);
    // ask again, and the relay has scanned since: still nothing of theirs sent, each said once
    await mine.heartbeat(heartbeat());
    expect(s.sent.filter((p) => p === '/v1/register')).toHaveLength(1);
    expect((await server.store.listPilots({})).map((p) => p.hostname)).toEqual(['mine']);
    expect(refused()).toHaveLength(expected.length);

    if (!asRoot) expect(s.sent.filter((p) => p === '/v1/register')).toHaveLength(1);
    // a relay of another account moves none of these
    const other = capture();
    const foreign = spoolOn(path.join(tmp.dir, 'spool-2'), server, [], { uid: own + 1, log: other.log });
    for (const d of ['out', 'work', 'in']) mkdirSync(path.join(tmp.dir, 'spool-2', 'job-9', d), { recursive: true, mode: 0o700 });
    stops.push(await foreign.start());
    await until('the refusal', () => other.lines.some((l) => l.msg === 'mailbox not moved'));
    expect(other.lines.find((l) => l.msg === 'mailbox not moved')?.why).toMatch(
      new RegExp(`job-9 belongs to uid ${own}, and this relay runs as uid ${own + 1}: a relay moves only the mailboxes of its own account`),
    );
    expect(foreign.sent).toEqual([]);
  });

  it('a mailbox it cannot move is no obstacle to the others', async () => {
    // taken before a restart, and now in the way: the relay cannot clear it
    const broken = box('aaa-broken');
    for (const d of ['out', 'in']) mkdirSync(path.join(broken, d), { recursive: true, mode: 0o700 });
    mkdirSync(path.join(broken, 'work', names.request(requestId(Date.now(), 1, 1))), { recursive: true, mode: 0o700 });
    const { log, lines } = capture();
    const s = spoolOn(path.join(tmp.dir, 'spool'), server, [], { log });
    stops.push(await s.start());
    const control = agentOn(box('zzz-fine'));
    expect((await control.register(registration())).pilotId).toBeGreaterThan(0);
    await control.heartbeat(heartbeat());
    const failed = lines.filter((l) => l.msg === 'mailbox scan failed');
    expect(failed.length, 'logged once while it fails the same way').toBe(1);
    expect(failed[0]).toMatchObject({ mailbox: 'aaa-broken', err: expect.stringMatching(/EISDIR|illegal operation on a directory/) });
  });

  it('a request larger than a mailbox message may be is refused, not read', async () => {
    const s = spoolOn(path.join(tmp.dir, 'spool'), server);
    stops.push(await s.start());
    for (const d of ['out', 'work', 'in']) mkdirSync(path.join(box(), d), { recursive: true, mode: 0o700 });
    const id = requestId(Date.now(), 1, 1);
    writeFileSync(path.join(box(), 'out', names.request(id)), Buffer.alloc(9 * 1024 * 1024, 0x20));
    await until('the refusal', () => readdirSync(path.join(box(), 'in')).includes(names.reply(id)));
    const { readFileSync } = await import('node:fs');
    const reply = JSON.parse(readFileSync(path.join(box(), 'in', names.reply(id)), 'utf8')) as { status: number; text: string };
    expect(reply.status).toBe(400);
    expect(reply.text).toMatch(/is 9437184 bytes; a mailbox message is at most 8388608/);
    expect(s.sent).toEqual([]);
  });
});

describe('how often a relay looks into its spool', () => {
  it('twice as long after each look that moved nothing, up to the longest pause; the shortest after one that moved something', () => {
    const seq: number[] = [];
    let pause = 0;
    for (let n = 0; n < 6; n++) seq.push((pause = pauseAfter(pause, 0, 20, 160)));
    expect(seq).toEqual([20, 40, 80, 160, 160, 160]);
    expect(pauseAfter(160, 1, 20, 160)).toBe(20);
    // a longest pause shorter than the shortest is the shortest
    expect(pauseAfter(20, 0, 50, 10)).toBe(50);
  });

  it('a quiet spool is looked into less and less often, and a request is still carried at once after', async () => {
    const tmp = tempDir();
    const server = await liveServer(5);
    const pauses: number[] = [];
    const clock = { now: () => systemClock.now(), sleep: (ms: number, signal?: AbortSignal) => (pauses.push(ms), systemClock.sleep(ms, signal)) };
    const { forwarder, upstream } = forwarderTo(server.url);
    const dir = path.join(tmp.dir, 'spool');
    const spool = new Spool({ dir, forwarder, clock, log: silentLogger(), pollMs: 20, pollMaxMs: 160 });
    const stop = new AbortController();
    try {
      await spool.start();
      const running = spool.run(stop.signal);
      await until('the pause to reach its longest, twice', () => pauses.filter((p) => p === 160).length >= 2, 10_000);
      expect(pauses.slice(0, 4)).toEqual([20, 40, 80, 160]);
      const quiet = pauses.length;
      // an agent's register: taken by the next look, answered, and the look after it comes at the shortest pause
      const control = mailboxControlPlane({ server: `file://${path.join(dir, 'job-1')}?poll-ms=20`, token: PILOT, clock: systemClock });
      expect((await control.register(registration({ hostname: 'cn0001' }))).pilotId).toBeGreaterThan(0);
      await until('a short pause after the request was taken', () => pauses.slice(quiet).includes(20));
      stop.abort();
      await running;
    } finally {
      stop.abort();
      upstream.close();
      await server.close();
      tmp.remove();
    }
  });
});

describe('which mailboxes a relay moves', () => {
  const dir = (over: Partial<{ isDirectory: boolean; isSymbolicLink: boolean; uid: number; mode: number }> = {}) => ({
    isDirectory: true,
    isSymbolicLink: false,
    uid: 1000,
    mode: 0o40700,
    ...over,
  });
  const box = (top: ReturnType<typeof dir> | null, sub: ReturnType<typeof dir> | null = dir()) => [
    { path: '/s/job', stat: top },
    { path: '/s/job/out', stat: sub },
    { path: '/s/job/work', stat: null },
    { path: '/s/job/in', stat: dir() },
  ];
  it('its own account\'s, closed to others; a missing out/, work/ or in/ it makes', () => {
    expect(mailboxRefusal(box(dir()), 1000)).toBeNull();
    expect(mailboxRefusal(box(dir({ mode: 0o40750 })), 1000)).toBeNull();
    expect(mailboxRefusal(box(null), 1000)).toMatch(/\/s\/job is gone/);
    expect(mailboxRefusal(box(dir({ uid: 0 })), 1000)).toMatch(/belongs to uid 0, and this relay runs as uid 1000/);
    // root is no exception: a root relay moves root's mailboxes only
    expect(mailboxRefusal(box(dir()), 0)).toMatch(/belongs to uid 1000, and this relay runs as uid 0/);
    expect(mailboxRefusal(box(dir(), dir({ isSymbolicLink: true, isDirectory: false })), 1000)).toMatch(/\/s\/job\/out is a symbolic link/);
    expect(mailboxRefusal(box(dir(), dir({ isDirectory: false })), 1000)).toMatch(/\/s\/job\/out is not a directory/);
    expect(mailboxRefusal(box(dir(), dir({ mode: 0o40770 })), 1000)).toMatch(/\/s\/job\/out may be written by other accounts \(mode 0770\)/);
  });
});
