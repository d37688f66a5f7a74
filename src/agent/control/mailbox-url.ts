/**
 * Mailbox URLs (`vmpilot run --server file:///DIR/NAME[?poll-ms=N]`,
 * docs/hpc.md): pure parsing, apart from the control plane so that the
 * config loader can check one without loading any HTTP code.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** How often an agent looks for its reply (ms), unless the URL says `?poll-ms=N`. */
export const DEFAULT_POLL_MS = 100;
/** A mailbox URL, parsed: the mailbox directory and the poll interval. */
export interface MailboxUrl {
  dir: string;
  pollMs: number;
}

/**
 * Parse `file:///DIR/NAME[?poll-ms=N]`; a string saying what was expected
 * when it is not one. Pure.
 */
export function parseMailboxUrl(text: string): MailboxUrl | string {
  const expected = 'a mailbox URL file:///DIR/NAME (an absolute path on a shared filesystem), optionally ?poll-ms=10..60000';
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return expected;
  }
  if (u.protocol !== 'file:' || (u.host !== '' && u.host !== 'localhost') || u.hash) return expected;
  let pollMs = DEFAULT_POLL_MS;
  for (const [key, value] of u.searchParams) {
    if (key !== 'poll-ms' || !/^\d+$/.test(value) || Number(value) < 10 || Number(value) > 60_000) return expected;
    pollMs = Number(value);
  }
  const dir = fileURLToPath(new URL(u.pathname, 'file:///'));
  if (dir === '/' || dir.split('/').includes('..')) return expected;
  return { dir: dir.replace(/\/+$/, ''), pollMs };
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
