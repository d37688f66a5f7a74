/**
 * Host name patterns for `halt --host` and `drain --host`: a glob, matched
 * against the whole name, case-insensitively (host names are). `*` stands for
 * any run of characters (none included), `?` for one character; nothing
 * else is special. Unlike a regular expression, no pattern can make the
 * match slow: the matcher below remembers only the last `*`, so a match
 * costs at most (name length × pattern length) steps. Pure.
 */

/** True when `name` matches the glob `pattern` as a whole. */
export function globMatch(pattern: string, name: string): boolean {
  const p = pattern.toLowerCase();
  const s = name.toLowerCase();
  let i = 0; // in s
  let j = 0; // in p
  let star = -1; // the position in p after the last '*'
  let mark = 0; // where in s that '*' started matching
  while (i < s.length) {
    if (j < p.length && (p[j] === '?' || (p[j] !== '*' && p[j] === s[i]))) {
      i++;
      j++;
    } else if (j < p.length && p[j] === '*') {
      star = ++j;
      mark = i;
    } else if (star >= 0) {
      // the last '*' takes one more character, and the rest is tried again from there
      j = star;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (j < p.length && p[j] === '*') j++;
  return j === p.length;
}
