/**
 * Mailbox URLs (`vmpilot run --server file:///DIR/NAME[?poll-ms=N]`,
 * docs/hpc.md): pure parsing, apart from the control plane so that the
 * config loader can check one without loading any HTTP code.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** How often an agent looks for its reply at first (ms), unless the URL says `?poll-ms=N`. */
export const DEFAULT_POLL_MS = 100;
/** The longest pause between two looks while a reply is long in coming (ms), unless `?poll-max-ms=N`. */
export const DEFAULT_POLL_MAX_MS = 1_000;
/** A mailbox URL, parsed: the mailbox directory and the poll intervals. */
export interface MailboxUrl {
  dir: string;
  pollMs: number;
  pollMaxMs: number;
}

/**
 * The pause before the next look for a reply that has been awaited for
 * `waitedMs`: a tenth of that, at least `pollMs`, at most `pollMaxMs`. A
 * short call is answered at the first looks; a match the relay holds open
 * for 20 s costs about 40 looks into the shared filesystem instead of 200,
 * and its answer is seen at most a tenth of its wait late (and at most
 * `pollMaxMs`). Pure.
 */
export function replyPause(waitedMs: number, pollMs: number, pollMaxMs: number): number {
  return Math.min(pollMaxMs, Math.max(pollMs, Math.floor(waitedMs / 10)));
}

/**
 * Parse `file:///DIR/NAME[?poll-ms=N][&poll-max-ms=M]`; a string saying
 * what was expected when it is not one. Pure.
 */
export function parseMailboxUrl(text: string): MailboxUrl | string {
  const expected = 'a mailbox URL file:///DIR/NAME (an absolute path on a shared filesystem), optionally ?poll-ms=10..60000&poll-max-ms=10..60000 (at least poll-ms)';
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return expected;
  }
  if (u.protocol !== 'file:' || (u.host !== '' && u.host !== 'localhost') || u.hash) return expected;
  let pollMs = DEFAULT_POLL_MS;
  let pollMaxMs: number | null = null;
  for (const [key, value] of u.searchParams) {
    if ((key !== 'poll-ms' && key !== 'poll-max-ms') || !/^\d+$/.test(value) || Number(value) < 10 || Number(value) > 60_000) return expected;
    if (key === 'poll-ms') pollMs = Number(value);
    else pollMaxMs = Number(value);
  }
  if (pollMaxMs !== null && pollMaxMs < pollMs) return expected;
  const dir = fileURLToPath(new URL(u.pathname, 'file:///'));
  if (dir === '/' || dir.split('/').includes('..')) return expected;
  return { dir: dir.replace(/\/+$/, ''), pollMs, pollMaxMs: pollMaxMs ?? Math.max(pollMs, DEFAULT_POLL_MAX_MS) };
}

/** The mailbox directory of a server URL, or null when it is not a mailbox URL. */
export function mailboxDirOf(server: string | null): string | null {
  if (!server?.startsWith('file:')) return null;
  const m = parseMailboxUrl(server);
  return typeof m === 'string' ? null : m.dir;
}

/**
 * The spool that holds the mailbox of a server URL (the mailbox's parent,
 * what `vmpilot relay --spool` is given), or null when it is not a mailbox
 * URL. Every mailbox of the pilot account is in it, so sandboxed payloads
 * get it hidden as a whole, not just their own agent's mailbox.
 */
export function mailboxSpoolOf(server: string | null): string | null {
  const dir = mailboxDirOf(server);
  return dir === null ? null : path.dirname(dir);
}
