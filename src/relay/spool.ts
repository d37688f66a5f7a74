/**
 * Mailbox mode, the relay's end (`vmpilot relay --spool DIR`): it looks
 * into each mailbox `DIR/NAME` (src/mailbox/format.ts), takes the agent's
 * new requests in the order they were made, sends them to the server, and
 * writes each answer back. It looks again `pollMs` after a look that moved
 * something, and twice as long after each look that moved nothing, up to
 * `pollMaxMs` (`pausesAfter`): a quiet site's shared filesystem is not read
 * ten times a second for nothing, and a busy one is served at once.
 *
 * - A request is taken by renaming it from out/ to work/: one relay takes it,
 *   once. Its answer is written to in/ (temp name, renamed), then the work
 *   file goes. Requests are sent once: a relay that was killed answers the
 *   requests it had taken and not answered "interrupted" (502, no answer)
 *   when it starts again, and the agent asks again under the protocol's own
 *   rules (reports by seq, a lost match answer handed out again).
 * - Short calls of a mailbox go one after another, in order; a match (a long
 *   poll) goes at once, beside them, and the relay holds it open at the
 *   server on the agent's behalf, so that a payload or an instruction comes
 *   back as soon as the server has it. An agent holds one match: a new one,
 *   or a cancel file, ends the one held.
 * - A request whose agent stopped waiting (expiresAt) is dropped unsent.
 */
import path from 'node:path';
import { lstat, mkdir } from 'node:fs/promises';
import type { Clock } from '../shared/clock.js';
import { describeError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { pilotCallKind } from '../protocol/pilot-calls.js';
import { MAILBOX_VERSION, MAX_MESSAGE_BYTES, names, parseName, parseRequest, requestsInOrder, type MailboxReply, type MailboxRequest } from '../mailbox/format.js';
import { mailboxPaths, moveIfThere, namesIn, readIfThere, removeIfThere, writeMessage } from '../mailbox/files.js';
import { errorAnswer, type PilotAnswer, type PilotForwarder } from './forward.js';
import { mailboxRefusal, type SeenDir } from './mailbox-check.js';
import { SpoolLock } from './spool-lock.js';

/** What the spool needs. */
export interface SpoolOptions {
  dir: string;
  forwarder: PilotForwarder;
  clock: Clock;
  log: Logger;
  /** How soon every mailbox is looked into again after a look that moved something (ms). */
  pollMs: number;
  /** The longest pause between looks while nothing moves (ms; default DEFAULT_SPOOL_POLL_MAX_MS, at least pollMs). */
  pollMaxMs?: number;
  /** The account the relay runs as: it moves only mailboxes of this uid (mailbox-check.ts). Default: its own. */
  uid?: number;
}

/** The longest pause between two looks into a quiet spool, by default (ms). */
export const DEFAULT_SPOOL_POLL_MAX_MS = 1_000;

/**
 * The pause before the next look: `pollMs` after a look that moved
 * something (a request taken or withdrawn), else twice the last pause, at
 * most `maxMs`. Pure.
 */
export function pauseAfter(lastPauseMs: number, moved: number, pollMs: number, maxMs: number): number {
  if (moved > 0) return pollMs;
  return Math.min(Math.max(pollMs, maxMs), Math.max(pollMs, lastPauseMs * 2));
}

/** Moves the requests of every mailbox in one spool directory. */
export class Spool {
  private readonly movers = new Map<string, MailboxMover>();
  private readonly lock: SpoolLock;
  /** Requests sent to the server, answers written (for logs and the benchmark). */
  readonly counts = { sent: 0, answered: 0, dropped: 0, interrupted: 0 };

  constructor(private readonly o: SpoolOptions) {
    this.lock = new SpoolLock(o.dir, o.clock);
  }

  /** Take the spool's lock (VMP_STATE when another relay holds it). */
  async start(): Promise<void> {
    await mkdir(this.o.dir, { recursive: true, mode: 0o755 });
    await this.lock.take();
  }

  /** Move requests until `stop` aborts; then drop what is held open and let go of the lock. */
  async run(stop: AbortSignal): Promise<void> {
    // the first pause after the start is the shortest
    let pause = 0;
    while (!stop.aborted) {
      let moved = 0;
      try {
        moved = await this.scan();
        await this.lock.refresh();
      } catch (err) {
        this.o.log.warn({ err: describeError(err), spool: this.o.dir }, 'spool scan failed');
      }
      pause = pauseAfter(pause, moved, this.o.pollMs, this.o.pollMaxMs ?? DEFAULT_SPOOL_POLL_MAX_MS);
      await this.o.clock.sleep(pause, stop);
    }
    for (const m of this.movers.values()) m.stop();
    await Promise.all([...this.movers.values()].map((m) => m.idle()));
    await this.lock.release();
  }

  /**
   * Look into every mailbox once; returns how many requests and withdrawals
   * it moved. A mailbox that cannot be read is passed over (and logged
   * once), never in the way of the others; the mover of a mailbox that was
   * removed goes once it holds nothing open.
   */
  async scan(): Promise<number> {
    let moved = 0;
    const present = new Set<string>();
    for (const name of (await namesIn(this.o.dir)).sort()) {
      if (name.startsWith('.')) continue;
      present.add(name);
      let mover = this.movers.get(name);
      if (!mover) {
        mover = new MailboxMover(path.join(this.o.dir, name), this.o, this.counts);
        this.movers.set(name, mover);
      }
      await mover.scan().then(
        (n) => {
          moved += n;
          mover.fine();
        },
        (err: unknown) => mover.failed(err),
      );
    }
    for (const [name, mover] of this.movers) if (!present.has(name) && mover.holdsNothing()) this.movers.delete(name);
    return moved;
  }

  /** How many mailboxes the spool moves now (for tests and logs). */
  get mailboxes(): number {
    return this.movers.size;
  }
}

/** One mailbox's requests: taken in order, short calls one by one, the match beside them. */
class MailboxMover {
  private readonly paths: { out: string; work: string; in: string };
  private recovered = false;
  private calls: Promise<void> = Promise.resolve();
  /** Requests taken and not yet answered, with the controller that drops them. */
  private readonly open = new Map<string, { abort: AbortController; longPoll: boolean }>();
  private readonly log: Logger;
  private stopping = false;
  /** The mailbox directory's inode and why it is not moved (null: it is), as last seen. */
  private checked: { ino: number; refusal: string | null } | null = null;
  /** The last error a scan of this mailbox met, logged once. */
  private lastError: string | null = null;
  private readonly uid: number;

  constructor(
    private readonly dir: string,
    private readonly o: SpoolOptions,
    private readonly counts: Spool['counts'],
  ) {
    this.paths = mailboxPaths(dir);
    this.log = o.log.child({ mailbox: path.basename(dir) });
    this.uid = o.uid ?? process.getuid?.() ?? 0;
  }

  /** Move what the agent wrote; returns how many requests and withdrawals there were. */
  async scan(): Promise<number> {
    if (!(await this.acceptable())) return 0;
    if (!this.recovered) {
      await this.recover();
      this.recovered = true;
    }
    const all = await namesIn(this.paths.out);
    let moved = 0;
    for (const name of all) {
      const n = parseName(name);
      if (n?.kind === 'cancel') {
        await this.cancel(n.id);
        moved++;
      }
    }
    for (const id of requestsInOrder(all)) if (await this.take(id)) moved++;
    return moved;
  }

  /**
   * Whether this is a mailbox the relay moves (mailbox-check.ts): looked at
   * in full when first seen and whenever its directory is another one (made
   * again); logged when that changes. Its owner cannot change without root,
   * and what the owner does inside it the relay does as that same account.
   */
  private async acceptable(): Promise<boolean> {
    const top = await lstat(this.dir).catch(() => null);
    if (top === null) return false;
    if (this.checked?.ino !== top.ino) {
      const seen: SeenDir[] = [];
      for (const p of [this.dir, this.paths.out, this.paths.work, this.paths.in]) {
        const st = p === this.dir ? top : await lstat(p).catch(() => null);
        seen.push({ path: p, stat: st && { isDirectory: st.isDirectory(), isSymbolicLink: st.isSymbolicLink(), uid: st.uid, mode: st.mode } });
      }
      const refusal = mailboxRefusal(seen, this.uid);
      if (refusal !== this.checked?.refusal) {
        if (refusal) this.log.warn({ why: refusal }, 'mailbox not moved');
        else if (this.checked) this.log.info('mailbox moved again');
      }
      this.checked = { ino: top.ino, refusal };
    }
    return this.checked.refusal === null;
  }

  /** A scan went through: an error logged before is over. */
  fine(): void {
    if (this.lastError !== null) this.log.info('mailbox readable again');
    this.lastError = null;
  }

  /** A scan failed: logged once while it fails the same way. */
  failed(err: unknown): void {
    const why = describeError(err);
    if (why !== this.lastError) this.log.warn({ err: why }, 'mailbox scan failed');
    this.lastError = why;
  }

  /** True when no request of this mailbox is held open. */
  holdsNothing(): boolean {
    return this.open.size === 0;
  }

  /** Answer what a relay killed earlier took and did not answer: "interrupted"; the agent asks again. */
  private async recover(): Promise<void> {
    // an agent makes all three; a mailbox made by hand may lack the relay's two
    for (const d of [this.paths.work, this.paths.in]) await mkdir(d, { recursive: true, mode: 0o700 });
    for (const name of await namesIn(this.paths.work)) {
      const n = parseName(name);
      if (n?.kind !== 'request') continue;
      const work = path.join(this.paths.work, name);
      if ((await readIfThere(path.join(this.paths.in, names.reply(n.id)))) === null) {
        await this.reply(n.id, errorAnswer(502, 'VMP_UNREACHABLE', 'relay: interrupted (the relay restarted before the server answered); ask again'));
        this.counts.interrupted++;
        this.log.info({ id: n.id }, 'request interrupted by a relay restart: answered so');
      }
      await removeIfThere(work);
    }
  }

  private async cancel(id: string): Promise<void> {
    await removeIfThere(path.join(this.paths.out, names.cancel(id)));
    // not taken yet: it never goes; held open: dropped (the agent went away from it)
    if (await removeIfThere(path.join(this.paths.out, names.request(id)))) this.counts.dropped++;
    this.open.get(id)?.abort.abort();
  }

  /** Take request `id`: false when it was gone (withdrawn, or another took it). */
  private async take(id: string): Promise<boolean> {
    const work = path.join(this.paths.work, names.request(id));
    if (!(await moveIfThere(path.join(this.paths.out, names.request(id)), work))) return false;
    let request: MailboxRequest;
    try {
      const st = await lstat(work);
      if (!st.isFile()) throw new Error(`request ${id} is not a plain file`);
      if (st.size > MAX_MESSAGE_BYTES) throw new Error(`request ${id} is ${st.size} bytes; a mailbox message is at most ${MAX_MESSAGE_BYTES}`);
      request = parseRequest((await readIfThere(work)) ?? '', id);
    } catch (err) {
      this.log.warn({ id, err: describeError(err) }, 'request refused');
      await this.reply(id, errorAnswer(400, 'VMP_BAD_REQUEST', `relay: ${describeError(err)}`));
      await removeIfThere(work);
      return true;
    }
    if (request.expiresAt <= this.o.clock.now()) {
      this.counts.dropped++;
      await removeIfThere(work);
      return true;
    }
    const longPoll = pilotCallKind(request.method, request.path) === 'long-poll';
    // an agent holds one match: a newer one ends the one held
    if (longPoll) for (const held of this.open.values()) if (held.longPoll) held.abort.abort();
    const entry = { abort: new AbortController(), longPoll };
    this.open.set(id, entry);
    const send = () => this.send(request, work, entry.abort.signal).finally(() => this.open.delete(id));
    if (longPoll) void send();
    else this.calls = this.calls.then(send).catch(() => undefined);
    return true;
  }

  private async send(request: MailboxRequest, work: string, signal: AbortSignal): Promise<void> {
    try {
      if (signal.aborted) {
        if (!this.stopping) await removeIfThere(work);
        return;
      }
      this.counts.sent++;
      const answer = await this.o.forwarder.forward({
        method: request.method,
        path: request.path,
        authorization: request.authorization,
        body: request.body === null ? null : Buffer.from(request.body),
        signal,
      });
      await this.reply(request.id, answer);
      this.counts.answered++;
      await removeIfThere(work);
    } catch (err) {
      if (signal.aborted) {
        // dropped (a cancel, a newer match, or the relay stopping): left for a restart to answer if it is still there
        if (!this.stopping) await removeIfThere(work).catch(() => false);
        return;
      }
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        // the mailbox was removed meanwhile (its job is over): nobody to answer
        this.log.info({ id: request.id }, 'mailbox gone: answer dropped');
        return;
      }
      this.log.error({ id: request.id, err: describeError(err) }, 'request failed');
      await this.reply(request.id, errorAnswer(502, 'VMP_UNREACHABLE', `relay: ${describeError(err)}`)).catch(() => undefined);
      await removeIfThere(work).catch(() => false);
    }
  }

  private async reply(id: string, a: PilotAnswer): Promise<void> {
    const reply: MailboxReply = { v: MAILBOX_VERSION, id, status: a.status, text: a.body.toString('utf8'), at: this.o.clock.now() };
    await writeMessage(this.paths.in, names.reply(id), JSON.stringify(reply));
  }

  /** Drop everything held open (the relay stops); their work files stay for the next start to answer. */
  stop(): void {
    this.stopping = true;
    for (const held of this.open.values()) held.abort.abort();
  }

  /** Resolves when the short calls under way are done. */
  idle(): Promise<void> {
    return this.calls;
  }
}
