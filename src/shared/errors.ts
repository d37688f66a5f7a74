/**
 * One error type for all of vmpilot, with a stable `code` to branch on (never
 * branch on message text) and an optional `cause`. Every code is listed once
 * in ERROR_CODES with what it means, the exit status of a command that fails
 * with it and, for the codes an HTTP reply carries, the reply's status (as
 * fastify's `createError(code, message, statusCode)` does): the server's
 * replies, the agent's control plane and the admin client all derive their
 * mapping from it. Report refusals (REPORT_REFUSALS) are codes too, listed per
 * report in a 200 reply. A test keeps both catalogues unique and documented in
 * docs/errors.md.
 */

/** One entry of the catalogue. */
export interface ErrorSpec {
  /** What the code means, as docs/errors.md says it. */
  readonly meaning: string;
  /** Exit status of a command that fails with the code (docs/errors.md). */
  readonly exit: number;
  /** HTTP status of a reply with the code; a code without one is answered 500. */
  readonly status?: number;
}

export const ERROR_CODES = {
  // user input (exit status 2)
  VMP_USAGE: { exit: 2, meaning: 'A command-line flag or argument is missing or has a bad value.' },
  VMP_CONFIG: { exit: 2, status: 500, meaning: "The configuration file or environment holds a bad value (in a server's reply: its own, HTTP 500)." },
  // talking to the server (exit status 3)
  VMP_UNREACHABLE: { exit: 3, meaning: 'The server could not be reached: directly, through a relay (which answers 502), or through a mailbox no relay took.' },
  VMP_UNAUTHORIZED: { exit: 3, status: 401, meaning: "The server refused the token, or a relay's token it does not know (HTTP 401)." },
  VMP_FORBIDDEN: { exit: 3, status: 403, meaning: 'The token may not do this (HTTP 403).' },
  VMP_NOT_FOUND: { exit: 3, status: 404, meaning: 'The server has no such pilot, payload or route (HTTP 404).' },
  VMP_BAD_REQUEST: { exit: 3, status: 400, meaning: 'The server refused the request body (HTTP 400); the message names the field.' },
  VMP_CONFLICT: { exit: 3, status: 409, meaning: 'The request does not fit the current state of the record (HTTP 409).' },
  VMP_REPORT_SEQ: { exit: 3, status: 409, meaning: "The server refused reports whose seq does not follow the pilot's last applied one (HTTP 409)." },
  VMP_RATE_LIMITED: { exit: 3, status: 429, meaning: 'Too many requests of this kind from this token or address; retry after the time given (HTTP 429).' },
  VMP_SERVER: { exit: 3, status: 500, meaning: 'The server failed (HTTP 5xx) or answered something unexpected.' },
  // local environment (exit status 4)
  VMP_STATE: { exit: 4, meaning: "The agent's state directory, or a relay's spool, cannot be read or written (or another relay moves that spool)." },
  VMP_DATABASE: { exit: 4, status: 500, meaning: 'The server database cannot be opened or migrated.' },
  VMP_DATABASE_UNAVAILABLE: { exit: 4, status: 503, meaning: "The server cannot reach its PostgreSQL database right now (HTTP 503, with Retry-After): try again later." },
  VMP_LISTEN: { exit: 4, meaning: 'The server or relay cannot listen on the address given.' },
  VMP_SPAWN: { exit: 4, meaning: 'A payload process could not be started.' },
  VMP_PROBE: { exit: 4, meaning: 'The node could not be probed.' },
  VMP_HALT: { exit: 4, meaning: 'The halt action failed.' },
  VMP_DRIVER: { exit: 4, meaning: "An endpoint's driver failed to create, list or remove a machine; the message carries the driver's own words." },
  // a check that ran and found a failure (exit status 5)
  VMP_ENDPOINT_TEST: { exit: 5, meaning: 'An endpoint test (`endpoint test NAME`) ran and a stage failed; its output says which, why, and what to check.' },
  // bugs
  VMP_INTERNAL: { exit: 1, status: 500, meaning: 'An internal error: please report it with the log.' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * Codes of refused reports: a reports reply (HTTP 200) lists each refused
 * report with one of these (`ReportsReply.refused`, docs/protocol.md); the
 * report counts as delivered and changes nothing.
 */
export const REPORT_REFUSALS = {
  VMP_PAYLOAD_NOT_YOURS: 'The payload reported on is not assigned to (or running on) this pilot.',
  VMP_PAYLOAD_STATE: 'The payload is already in a state the report cannot move it from.',
  VMP_NO_INSTRUCTION: 'The report acknowledges an instruction this pilot was never sent.',
  VMP_PILOT_HALTED: 'The pilot has halted; it cannot change state again.',
  VMP_PILOT_STATE: 'The pilot cannot go from its state to the one reported (say halting back to running).',
  VMP_REPORT_CONFLICT: "Another report was applied under this seq: a second sender holds the pilot's credential.",
} as const;

export type RefusalCode = keyof typeof REPORT_REFUSALS;

/** True when `code` is in the catalogue. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}

/** The HTTP status of a reply with `code` (500 for a code the catalogue gives none). */
export function httpStatusOf(code: ErrorCode): number {
  const spec: ErrorSpec = ERROR_CODES[code];
  return spec.status ?? 500;
}

/**
 * The code an HTTP error status stands for, read from the catalogue: the
 * first code listed with that status (409 is VMP_CONFLICT, VMP_REPORT_SEQ
 * comes with its own body), VMP_SERVER for any 5xx (to a client a server
 * failure, whatever the server called it), undefined for a status the
 * catalogue does not name (413, 415, 431, ...).
 */
export function codeForStatus(status: number): ErrorCode | undefined {
  if (status >= 500) return 'VMP_SERVER';
  for (const [code, spec] of Object.entries(ERROR_CODES) as [ErrorCode, ErrorSpec][]) if (spec.status === status) return code;
  return undefined;
}

export class VmpilotError extends Error {
  override readonly name = 'VmpilotError';
  readonly code: ErrorCode;
  /** Extra facts for logs and for programs (e.g. `status` of an HTTP reply). */
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? {};
  }
}

/** True when `err` is a VmpilotError, optionally with one of `codes`. */
export function isVmpilotError(err: unknown, ...codes: ErrorCode[]): err is VmpilotError {
  return err instanceof VmpilotError && (codes.length === 0 || codes.includes(err.code));
}

/** Exit status of a command that failed with `err`: scripts can rely on these. */
export function exitStatusForError(err: unknown): number {
  if (!(err instanceof VmpilotError)) return 1;
  const spec: ErrorSpec | undefined = ERROR_CODES[err.code];
  return spec?.exit ?? 1;
}

/** A short description of any thrown value, for logs and error lines. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
