/**
 * Attack on mailbox mode: the agent's requests in its mailbox carry its
 * credential (and, at registration, the registration token), and the
 * mailbox is on a filesystem every node of the site shares, beside the
 * mailboxes of the account's other agents. A payload reads every file of
 * the spool while the agent's match waits there, and drops a forged request
 * into its agent's mailbox. It must find nothing and forge nothing, whether
 * the agent runs as root (payloads as slot accounts: the mailboxes are
 * closed to them) or not (payloads in a sandbox: the whole spool is an
 * empty tmpfs, the other agents' mailboxes of the same account included).
 * The relay runs as the agents' account, as it must (docs/hpc.md).
 */
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PILOT_TOKEN, admin, killAll, startServer, tempDir } from '../integration/harness.js';
import { killRelay, startRelay, type Relay } from '../integration/relay/relay-harness.js';
import { MODES, places, startModeAgent } from './lib.js';

describe.each(MODES)('attack: a payload goes after the mailbox of its pilot ($name)', (mode) => {
  const tmp = tempDir('vmpilot-sec-mailbox-');
  let relay: Relay | undefined;
  beforeAll(() => mode.prepare?.(), 15 * 60_000);
  afterEach(async () => {
    killAll();
    if (relay) await killRelay(relay);
  });
  afterAll(() => tmp.cleanup());

  it('reads nothing of the mailbox and forges no request', async () => {
    const where = places(tmp.dir, mode);
    const server = await startServer(path.join(tmp.dir, 'server.db'), ['--heartbeat-interval', '1']);
    const spool = path.join(tmp.dir, 'shared');
    mkdirSync(spool);
    chmodSync(spool, 0o1777); // a shared directory where every account makes its own mailbox
    const account = mode.user ?? { uid: 0, gid: 0 };
    // another agent of the same account, with a credential in its mailbox (a reply it has not read yet)
    const neighbour = path.join(spool, 'job-2');
    const secret = 'pc_credential-of-the-neighbour-pilot';
    for (const d of ['', 'out', 'work', 'in']) {
      mkdirSync(path.join(neighbour, d), { recursive: true, mode: 0o700 });
      chownSync(path.join(neighbour, d), account.uid, account.gid);
    }
    const reply = path.join(neighbour, 'in', '000000000000001-2-000000001.reply');
    writeFileSync(reply, JSON.stringify({ v: 1, id: '000000000000001-2-000000001', status: 201, text: JSON.stringify({ pilotId: 2, credential: secret }), at: 1 }), { mode: 0o600 });
    chownSync(reply, account.uid, account.gid);
    const cache = path.join(tmp.dir, 'relay-cache');
    mkdirSync(cache, { mode: 0o700 });
    chownSync(cache, account.uid, account.gid);
    relay = await startRelay(['--spool', spool, '--server', server.url, '--cache-dir', cache, '--poll-ms', '50'], { agent: where.agent, ...account, env: { ...process.env, HOME: where.home } });
    const mailbox = path.join(spool, 'job-1');
    const api = admin(server.url);
    const loot = path.join(where.drop, 'loot-mailbox');
    const forged = JSON.stringify({ v: 1, id: '000000000000001-1-000000001', method: 'POST', path: '/v1/register', authorization: `Bearer ${PILOT_TOKEN}`, body: '{"hostname":"forged","version":"0","cores":1,"memoryMb":1}', at: Date.now(), expiresAt: Date.now() + 600_000 });
    writeFileSync(path.join(where.drop, 'forged.req'), forged);
    chmodSync(path.join(where.drop, 'forged.req'), 0o644);
    const script = [
      `for f in "${spool}"/* "${spool}"/*/* "${spool}"/*/*/* "${spool}"/*/*/.*; do echo "== $f"; cat "$f"; done > "${loot}" 2>&1`,
      `cp "${where.drop}/forged.req" "${mailbox}/out/000000000000001-1-000000001.req" 2>> "${loot}"`,
      // the agent's match waits in the mailbox the whole time: let a reader of the real one see it
      'sleep 1',
      `ls -la "${mailbox}" "${mailbox}/out" "${mailbox}/work" >> "${loot}" 2>&1`,
      'exit 0',
    ].join('\n');
    const hostile = await api.submit({ command: ['/bin/sh', '-c', script] });
    const boxed = startModeAgent(`file://${mailbox}`, mode, where, { cores: 2, idleTimeoutSec: 3 });
    const exit = await Promise.race([boxed.exited, new Promise((r) => setTimeout(() => r('timeout'), 20_000))]);
    expect(exit, boxed.stderr().slice(-3000) + relay.stderr().slice(-2000)).toMatchObject({ code: 0 });

    const job = await api.job(hostile);
    expect(job, JSON.stringify(job)).toMatchObject({ state: 'done', exitCode: 0 });
    const state = JSON.parse(readFileSync(path.join(where.stateDir, 'state.json'), 'utf8')) as { credential: string };
    const found = readFileSync(loot, 'utf8');
    expect(found, 'the payload read the pilot credential from the mailbox').not.toContain(state.credential);
    expect(found, 'the payload read the registration token from the mailbox').not.toContain(PILOT_TOKEN);
    expect(found, "the payload read another pilot's credential from its mailbox").not.toContain(secret);
    // the forged registration never reached the server: the one pilot is the agent's
    const pilots = await api.pilots();
    expect(pilots.map((p) => p.hostname)).not.toContain('forged');
    expect(pilots).toHaveLength(1);
    await server.stop();
  });
});
