/**
 * One error type for all of vmpilot, with a stable `code` to branch on (never
 * branch on message text) and an optional `cause`. Every code is listed in
 * ERROR_CODES with what it means; a test keeps the catalogue unique and
 * documented in docs/errors.md.
 */

export const ERROR_CODES = {
  // user input (exit status 2)
  VMP_USAGE: 'A command-line flag or argument is missing or has a bad value.',
  VMP_CONFIG: 'The configuration file or environment holds a bad value.',
  // talking to the server (exit status 3)
  VMP_UNREACHABLE: 'The server could not be reached: directly, through a relay (which answers 502), or through a mailbox no relay took.',
  VMP_UNAUTHORIZED: "The server refused the token, or a relay's token it does not know (HTTP 401).",
  VMP_FORBIDDEN: 'The token may not do this (HTTP 403).',
  VMP_NOT_FOUND: 'The server has no such pilot, payload or route (HTTP 404).',
  VMP_BAD_REQUEST: 'The server refused the request body (HTTP 400); the message names the field.',
  VMP_CONFLICT: 'The request does not fit the current state of the record (HTTP 409).',
  VMP_REPORT_SEQ: "The server refused reports whose seq does not follow the pilot's last applied one (HTTP 409).",
  VMP_RATE_LIMITED: 'Too many requests of this kind from this token or address; retry after the time given (HTTP 429).',
  VMP_SERVER: 'The server failed (HTTP 5xx) or answered something unexpected.',
  // local environment (exit status 4)
  VMP_STATE: "The agent's state directory, or a relay's spool, cannot be read or written (or another relay moves that spool).",
  VMP_DATABASE: 'The server database cannot be opened or migrated.',
  VMP_LISTEN: 'The server or relay cannot listen on the address given.',
  VMP_SPAWN: 'A payload process could not be started.',
  VMP_PROBE: 'The node could not be probed.',
  VMP_HALT: 'The halt action failed.',
  VMP_DRIVER: "An endpoint's driver failed to create, list or remove a machine; the message carries the driver's own words.",
  // bugs
  VMP_INTERNAL: 'An internal error: please report it with the log.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

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
  switch (err.code) {
    case 'VMP_USAGE':
    case 'VMP_CONFIG':
      return 2;
    case 'VMP_UNREACHABLE':
    case 'VMP_UNAUTHORIZED':
    case 'VMP_FORBIDDEN':
    case 'VMP_NOT_FOUND':
    case 'VMP_BAD_REQUEST':
    case 'VMP_CONFLICT':
    case 'VMP_REPORT_SEQ':
    case 'VMP_RATE_LIMITED':
    case 'VMP_SERVER':
      return 3;
    case 'VMP_INTERNAL':
      return 1;
    default:
      return 4;
  }
}

/** A short description of any thrown value, for logs and error lines. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
