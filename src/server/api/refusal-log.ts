/**
 * Refusals (401, 403, 429, reports out of order) logged at a rate, not one
 * line each: a flood of bad requests must not become a flood of log lines.
 * The first refusal of a kind is logged at once with its facts; further ones
 * within `everyMs` are only counted, and the next line of that kind says how
 * many were left out (`suppressed`).
 */
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/log.js';

interface Kind {
  lastAt: number;
  suppressed: number;
}

/** Rate-limited warnings, one stream per message. */
export class RefusalLog {
  private readonly kinds = new Map<string, Kind>();

  constructor(
    private readonly log: Logger,
    private readonly clock: Clock,
    private readonly everyMs = 10_000,
  ) {}

  /** Log `message` with `fields` now, or count it when one like it was logged less than `everyMs` ago. */
  warn(message: string, fields: Record<string, unknown>): void {
    const now = this.clock.now();
    const kind = this.kinds.get(message);
    if (kind && now - kind.lastAt < this.everyMs) {
      kind.suppressed++;
      return;
    }
    const suppressed = kind?.suppressed ?? 0;
    this.kinds.set(message, { lastAt: now, suppressed: 0 });
    this.log.warn({ ...fields, ...(suppressed > 0 ? { suppressed, sinceSec: Math.round((now - (kind?.lastAt ?? now)) / 1000) } : {}) }, message);
  }
}
