/**
 * Text that came from pilots and payloads (hostnames, messages, output
 * tails, signals) is untrusted: printed raw, an escape sequence could set the
 * terminal's title, move the cursor or clear the screen, a newline could
 * forge rows of a table, a bidirectional override could reorder what is
 * read. These make such characters visible instead. Pure.
 */

/**
 * C0 controls and DEL, C1 controls (some terminals take U+009B as CSI), the
 * line and paragraph separators, and the bidirectional embeddings,
 * overrides and isolates.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** The same, but for a multi-line text: newline and tab may stay. */
const UNSAFE_IN_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\u001b': '\\e' };

function escape(ch: string): string {
  const named = NAMED[ch];
  if (named) return named;
  const code = ch.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** One line of text (a table cell, a field): every control character shown as an escape (`\e`, `\n`, `\x07`, `\u202e`). */
export function visible(text: string): string {
  return text.replace(UNSAFE, escape);
}

/** Several lines (an output tail): newlines and tabs kept, every other control character shown as an escape. */
export function visibleLines(text: string): string {
  return text.replace(UNSAFE_IN_LINES, escape);
}

/**
 * JSON for a terminal: JSON.stringify already escapes C0 controls; this also
 * escapes DEL, C1 controls and the separators and bidirectional controls, as
 * \uXXXX, which is still the same JSON.
 */
export function visibleJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
