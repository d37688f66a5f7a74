/**
 * The ControlPlane of mailbox mode (`vmpilot run --server file:///DIR/NAME`,
 * docs/hpc.md): the same calls as over HTTP, the same replies, errors and
 * credential renewal (it is the HTTP control plane with a file transport),
 * exchanged as files in the mailbox directory DIR/NAME on a shared
 * filesystem; `vmpilot relay --spool DIR` on a node that reaches the server
 * carries them (src/mailbox/format.ts has the files).
 *
 * A call writes its request (temp name, then renamed) and looks for its
 * reply every `pollMs` at first, then less often the longer it waits (a
 * tenth of the wait so far, at most `pollMaxMs`: mailbox-url.ts
 * replyPause), so that idle agents' held matches do not keep the shared
 * filesystem busy. A request no relay has taken after `takeTimeoutMs` is
 * withdrawn and the call fails as a refused connection does; an aborted or
 * timed-out call withdraws its request, or, when a relay already took it,
 * leaves a cancel file (the relay then drops the long poll it holds). Each
 * reply is read once, by the call that waits for it; a reply nobody waits
 * for any more is removed.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Clock } from '../../shared/clock.js';
import { names, parseReply, requestId, type MailboxRequest } from '../../mailbox/format.js';
import { mailboxPaths, makeMailbox, namesIn, readIfThere, removeIfThere, writeMessage } from '../../mailbox/files.js';
import { HttpTransportError, type HttpAnswer, type HttpCall } from './http-call.js';
import { HttpControlPlane } from './http-control-plane.js';
import { DEFAULT_POLL_MAX_MS, DEFAULT_POLL_MS, parseMailboxUrl, replyPause } from './mailbox-url.js';

/** A request no relay took in this long fails as a refused connection (ms). */
export const TAKE_TIMEOUT_MS = 10_000;
/** Replies to withdrawn requests are looked for (and removed) this long (ms). */
const FORGET_AFTER_MS = 10 * 60_000;

/** What the file transport needs. */
export interface MailboxTransportOptions {
  dir: string;
  clock: Clock;
  pollMs?: number;
  /** The longest pause between looks for a reply (default DEFAULT_POLL_MAX_MS, at least pollMs). */
  pollMaxMs?: number;
  takeTimeoutMs?: number;
  /** Part of every request id (default: this process's). */
  pid?: number;
}

/** Calls as files in one mailbox; the HttpControlPlane's transport in mailbox mode. */
export class MailboxTransport {
  private counter = 0;
  private readonly startedAt: number;
  private readonly paths: { out: string; work: string; in: string };
  private ready: Promise<void> | null = null;
  /** Ids of withdrawn requests whose late reply is to be removed, and since when. */
  private readonly forgotten = new Map<string, number>();

  constructor(private readonly o: MailboxTransportOptions) {
    this.startedAt = o.clock.now();
    this.paths = mailboxPaths(o.dir);
  }

  /** Make the mailbox, and clear replies left by an earlier agent process (nobody waits for them). */
  private prepare(): Promise<void> {
    this.ready ??= (async () => {
      await makeMailbox(this.o.dir);
      for (const name of await namesIn(this.paths.in)) if (name.endsWith('.reply')) await removeIfThere(path.join(this.paths.in, name));
    })();
    return this.ready;
  }

  /** One call: write the request, wait for its reply. Rejects with HttpTransportError as a network call would. */
  async call(c: HttpCall): Promise<HttpAnswer> {
    try {
      await this.prepare();
    } catch (err) {
      this.ready = null;
      throw new HttpTransportError(`cannot use the mailbox ${this.o.dir}: ${(err as Error).message}`, 'ECONNREFUSED', { cause: err });
    }
    await this.sweep();
    if (c.method === 'PUT') throw new HttpTransportError('a mailbox carries GET and POST only', 'EINVAL');
    const clock = this.o.clock;
    const id = requestId(this.startedAt, this.o.pid ?? process.pid, ++this.counter);
    const now = clock.now();
    const request: MailboxRequest = {
      v: 1,
      id,
      method: c.method,
      path: this.pathOf(c.url),
      authorization: c.headers?.authorization ?? '',
      body: c.body ?? null,
      at: now,
      expiresAt: now + c.timeoutMs,
    };
    try {
      await writeMessage(this.paths.out, names.request(id), JSON.stringify(request));
    } catch (err) {
      throw new HttpTransportError(`cannot write to the mailbox ${this.o.dir}: ${(err as Error).message}`, 'ECONNREFUSED', { cause: err });
    }
    const replyFile = path.join(this.paths.in, names.reply(id));
    const takeBy = now + (this.o.takeTimeoutMs ?? TAKE_TIMEOUT_MS);
    const giveUpAt = now + c.timeoutMs;
    let taken = false;
    for (;;) {
      if (c.signal?.aborted) {
        await this.withdraw(id);
        throw new HttpTransportError('aborted', 'ABORT_ERR');
      }
      let text: string | null;
      try {
        text = await readIfThere(replyFile);
      } catch (err) {
        // not "not there yet": waiting would not help, so say so now rather than time out
        await this.withdraw(id);
        const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
        const hint = code === 'EACCES' || code === 'EPERM' ? ' (the relay must run as this agent\'s account)' : '';
        throw new HttpTransportError(`cannot read the relay's reply ${replyFile}: ${(err as Error).message}${hint}`, code, { cause: err });
      }
      if (text !== null) {
        await removeIfThere(replyFile).catch(() => false);
        try {
          const reply = parseReply(text, id);
          return { status: reply.status, text: reply.text };
        } catch (err) {
          throw new HttpTransportError(`the relay's reply in ${this.o.dir}: ${(err as Error).message}`, 'EPROTO', { cause: err });
        }
      }
      const t = clock.now();
      if (!taken && t >= takeBy) {
        if (await removeIfThere(path.join(this.paths.out, names.request(id))).catch(() => false)) {
          throw new HttpTransportError(`no relay took the request in ${Math.round((takeBy - now) / 1000)} s: is vmpilot relay --spool ${path.dirname(this.o.dir)} running, as this agent's account (uid ${process.getuid?.() ?? '?'})?`, 'ECONNREFUSED');
        }
        taken = true;
      }
      if (t >= giveUpAt) {
        await this.withdraw(id);
        throw new HttpTransportError(`no answer in ${c.timeoutMs} ms`, 'ETIMEDOUT');
      }
      const pollMs = this.o.pollMs ?? DEFAULT_POLL_MS;
      const pause = replyPause(t - now, pollMs, Math.max(pollMs, this.o.pollMaxMs ?? DEFAULT_POLL_MAX_MS));
      await clock.sleep(Math.min(pause, Math.max(1, giveUpAt - t)), c.signal);
    }
  }

  /** The server path a URL of the control plane names (its paths are absolute: file:///v1/register → /v1/register). */
  private pathOf(url: string): string {
    const full = fileURLToPath(url);
    return full.startsWith(`${this.o.dir}/`) ? full.slice(this.o.dir.length) : full;
  }

  /** Nothing to close: the mailbox stays for the next agent process. */
  close(): void {}

  /** Take back a request: remove it if no relay took it, else ask the relay to drop it; its reply is removed when it comes. */
  private async withdraw(id: string): Promise<void> {
    this.forgotten.set(id, this.o.clock.now());
    try {
      if (!(await removeIfThere(path.join(this.paths.out, names.request(id))))) await writeMessage(this.paths.out, names.cancel(id), '');
    } catch {
      // the mailbox is gone or not writable: the relay gives up on the request when it expires
    }
  }

  /** Remove late replies to withdrawn requests. */
  private async sweep(): Promise<void> {
    const now = this.o.clock.now();
    for (const [id, since] of this.forgotten) {
      const removed = await removeIfThere(path.join(this.paths.in, names.reply(id))).catch(() => false);
      if (removed || now - since > FORGET_AFTER_MS) this.forgotten.delete(id);
    }
  }
}


/** The HTTP control plane over a mailbox. */
export function mailboxControlPlane(o: { server: string; token: string; clock: Clock }): HttpControlPlane {
  const m = parseMailboxUrl(o.server);
  if (typeof m === 'string') throw new Error(`not a mailbox URL: ${o.server}`);
  const base = new URL(o.server);
  base.search = '';
  return new HttpControlPlane({ server: base.href, token: o.token, transport: new MailboxTransport({ dir: m.dir, clock: o.clock, pollMs: m.pollMs, pollMaxMs: m.pollMaxMs }) });
}
