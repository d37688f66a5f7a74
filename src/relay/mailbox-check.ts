/**
 * Which mailboxes of a spool a relay moves: only those of its own account.
 * A spool is often a directory every account of the site may write (1777),
 * and a mailbox is whatever its owner put there. A relay that moved another
 * account's mailbox would read, rename and write files as itself on that
 * account's say: as root, a mailbox whose `work/` was swapped for a link to
 * /etc between a check and a rename would have it move files there. So the
 * relay moves a mailbox only when the mailbox and its three directories are
 * real directories (no links) of the relay's own uid that no other account
 * may write; anything else it leaves alone and says why, once. Agents and
 * their relay run as one account (the pilot account of the site), or both
 * as root. Pure: the caller does the lstat.
 */

/** What the relay saw of one path of a mailbox (an lstat). */
export interface SeenDir {
  /** Path, for the message. */
  path: string;
  /** null: there is nothing there. */
  stat: { isDirectory: boolean; isSymbolicLink: boolean; uid: number; mode: number } | null;
}

/**
 * Why the mailbox made of `seen` (the mailbox directory first, then out/,
 * work/, in/) is not one this relay (uid `uid`) moves, or null when it is.
 * A missing sub-directory is fine (the relay makes it); a missing mailbox
 * directory is not a mailbox. Pure.
 */
export function mailboxRefusal(seen: readonly SeenDir[], uid: number): string | null {
  for (const [i, d] of seen.entries()) {
    if (d.stat === null) {
      if (i === 0) return `${d.path} is gone`;
      continue;
    }
    if (d.stat.isSymbolicLink) return `${d.path} is a symbolic link; a mailbox and its out/, work/, in/ must be directories`;
    if (!d.stat.isDirectory) return `${d.path} is not a directory`;
    if (d.stat.uid !== uid) {
      return `${d.path} belongs to uid ${d.stat.uid}, and this relay runs as uid ${uid}: a relay moves only the mailboxes of its own account (run it as the agents' account)`;
    }
    if ((d.stat.mode & 0o022) !== 0) {
      return `${d.path} may be written by other accounts (mode ${(d.stat.mode & 0o7777).toString(8).padStart(4, '0')}): a mailbox is its owner's alone (the agent makes it 0700)`;
    }
  }
  return null;
}
