import { describe, expect, it } from 'vitest';
import { PgNotifier } from '../../../../src/server/api/pg-notifier.js';
import type { WakeConnect, WakeConnection } from '../../../../src/server/store/pg-wake-connection.js';
import { FakeClock } from '../../../../src/shared/clock.js';
import { silentLogger } from '../../../../src/shared/log.js';

/** A scriptable wake-up link: what was sent, connections to lose, attempts to refuse, notify calls to hold. */
function fakeLink() {
  const sent: string[] = [];
  const conns: (WakeConnection & { lose: () => void; hear: (payload: string, fromPid: number) => void })[] = [];
  const link = { sent, conns, refuse: 0, attempts: 0, gate: null as Promise<void> | null };
  const connect: WakeConnect = async (heard) => {
    link.attempts++;
    if (link.refuse > 0) {
      link.refuse--;
      throw new Error('connection refused');
    }
    let lost!: () => void;
    const ended = new Promise<void>((resolve) => (lost = resolve));
    let up = true;
    const conn = {
      pid: 100 + conns.length,
      notify: async (payload: string) => {
        if (link.gate) await link.gate;
        if (!up) throw new Error('connection terminated');
        sent.push(payload);
      },
      ended,
      end: async () => {
        up = false;
        lost();
      },
      lose: () => {
        up = false;
        lost();
      },
      hear: heard,
    };
    conns.push(conn);
    return conn;
  };
  return { link, connect };
}

const turn = () => new Promise((r) => setImmediate(r));

async function started(mode: 'listen' | 'poll' = 'listen', pollMs = 600_000) {
  const clock = new FakeClock();
  const { link, connect } = fakeLink();
  const n = new PgNotifier({ mode, pollMs, clock, log: silentLogger(), connect });
  await n.start();
  return { clock, link, n };
}

describe('PgNotifier (listen)', () => {
  it('wakes its own waiters at once and sends many wake-ups of one turn as one NOTIFY', async () => {
    const { link, n } = await started();
    const waits = [n.ticket(1).wait(60_000), n.ticket(2).wait(60_000)];
    for (let i = 0; i < 20; i++) n.wakeAll();
    expect(await Promise.all(waits)).toEqual(['woken', 'woken']);
    await turn();
    expect(link.sent).toEqual(['all']);
    await n.close();
  });

  it('coalesces the wake-ups that come while a NOTIFY is on its way into one more', async () => {
    const { link, n } = await started();
    let open!: () => void;
    link.gate = new Promise((r) => (open = r));
    n.wakeAll();
    await turn();
    for (let i = 0; i < 10; i++) n.wakePilot(7);
    n.wakePilot(8);
    open();
    await turn();
    await turn();
    expect(link.sent).toEqual(['all', 'pilot:7,8']);
    await n.close();
  });

  it("wakes its waiters on the other servers' notifications, and skips its own", async () => {
    const { link, n } = await started();
    const conn = link.conns[0]!;
    const mine = n.ticket(1).wait(60_000);
    const other = n.ticket(2);
    const otherWait = other.wait(60_000);
    conn.hear('pilot:2', conn.pid); // its own: its waiters were woken when it was sent
    conn.hear('nonsense', 999);
    conn.hear('pilot:1', 999);
    expect(await mine).toBe('woken');
    expect(n.counts.heard).toBe(1);
    conn.hear('all', 998);
    expect(await otherWait).toBe('woken');
    await n.close();
  });

  it('reconnects with back-off when the connection is lost, wakes every waiter then, and sends what waited', async () => {
    const { clock, link, n } = await started();
    link.refuse = 2;
    link.conns[0]!.lose();
    await turn();
    const waiting = n.ticket(5).wait(60_000);
    n.wakePilot(9); // while down: woken here, and kept for the next connection
    await turn();
    expect(link.sent).toEqual([]);
    for (const ms of [100, 200, 400]) {
      await clock.advance(ms);
      await turn();
    }
    expect(link.attempts).toBe(4);
    expect(link.conns).toHaveLength(2);
    expect(await waiting).toBe('woken');
    await turn();
    expect(link.sent).toEqual(['pilot:9']);
    // and the new connection carries the next wake-up
    n.wakeAll();
    await turn();
    expect(link.sent).toEqual(['pilot:9', 'all']);
    await n.close();
  });

  it('keeps a wake-up whose NOTIFY failed mid-send and sends it on the next connection', async () => {
    const { clock, link, n } = await started();
    let open!: () => void;
    link.gate = new Promise((r) => (open = r));
    n.wakeAll();
    await turn();
    link.conns[0]!.lose();
    open();
    await turn();
    link.gate = null;
    await clock.advance(100);
    await turn();
    await turn();
    expect(link.sent).toEqual(['all']);
    await n.close();
  });

  it('wakes every waiter every pollMs, as a fallback', async () => {
    const { clock, n } = await started('listen', 5000);
    const waiting = n.ticket(1).wait(60_000);
    await clock.advance(4999);
    const early = await Promise.race([waiting, turn().then(() => 'still waiting')]);
    expect(early).toBe('still waiting');
    await clock.advance(1);
    expect(await waiting).toBe('woken');
    await n.close();
  });

  it('stops listening and polling on close, and ends every wait', async () => {
    const { clock, link, n } = await started('listen', 1000);
    const waiting = n.ticket(1).wait(60_000);
    await n.close();
    expect(await waiting).toBe('closing');
    expect(clock.pending).toBe(0);
    n.wakeAll();
    await turn();
    expect(link.sent).toEqual([]);
    expect(link.attempts).toBe(1);
  });
});

describe('PgNotifier (poll)', () => {
  it('opens no connection and sends nothing; every pollMs its waiters look again', async () => {
    const { clock, link, n } = await started('poll', 1000);
    const waiting = n.ticket(1).wait(60_000);
    n.wakePilot(2);
    await turn();
    await clock.advance(1000);
    expect(await waiting).toBe('woken');
    const local = n.ticket(3).wait(60_000);
    n.wakeAll();
    expect(await local).toBe('woken');
    await turn();
    expect(link.attempts).toBe(0);
    expect(link.sent).toEqual([]);
    await n.close();
  });
});
