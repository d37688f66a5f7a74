/**
 * What the server checks of a pilot's reports before it believes them. Pure.
 *
 * - **Order.** A pilot numbers its reports 1, 2, 3 … and sends them in order,
 *   the lowest one the server has not acknowledged first, so a request's seqs
 *   run on from at most the pilot's applied seq + 1 without a gap. A request
 *   that skips a number (or jumps far ahead) would make the server drop every
 *   later report of the pilot as a duplicate: it is refused whole.
 * - **Sameness.** A seq at or below the applied one is a resend and changes
 *   nothing, but only when it is the same report: a different report under an
 *   applied seq means a second sender holds the pilot's credential.
 * - **Times.** A pilot's clock (or a forged report) says when something
 *   happened; the server keeps it only within what it saw itself, so that no
 *   report can put a start before the assignment, an end in the future, or
 *   charge more than cores × the time the server saw pass.
 */

/**
 * Why `seqs` (one request's reports, in the order sent) cannot follow
 * `appliedSeq`, or null when they can: each must be the one before it + 1,
 * and the first at most `appliedSeq + 1` (lower ones are resends).
 */
export function seqProblem(appliedSeq: number, seqs: readonly number[]): string | null {
  const first = seqs[0];
  if (first === undefined) return null;
  if (first > appliedSeq + 1) {
    return `report seq ${first} does not follow the last applied seq ${appliedSeq}: send seq ${appliedSeq + 1} first, in order, with no gap`;
  }
  for (let i = 1; i < seqs.length; i++) {
    const before = seqs[i - 1]!;
    const seq = seqs[i]!;
    if (seq !== before + 1) {
      return `reports[${i}].seq is ${seq} after ${before}: the seqs of one request must follow each other with no gap (${before + 1} next)`;
    }
  }
  return null;
}

/** A JSON value with object keys sorted, so two encodings of one report compare equal. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value as Record<string, unknown>)
        .sort()
        .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

/** True when the report stored as JSON `stored` is the same report as `report` (a resend). */
export function sameReport(stored: string, report: object): boolean {
  try {
    return JSON.stringify(canonical(JSON.parse(stored))) === JSON.stringify(canonical(report));
  } catch {
    return false;
  }
}

/**
 * A time a pilot reported (`claimed`), kept within [`earliest`, `latest`]:
 * the server's own record of when the thing could have happened at the
 * earliest (an assignment, a start) and the moment it received the report.
 */
export function clampTime(claimed: number, earliest: number, latest: number): number {
  const low = Math.min(earliest, latest);
  return Math.min(Math.max(claimed, low), latest);
}
