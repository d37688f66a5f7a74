/**
 * Shutdown codes, after the Vac/Vcycle convention. An agent's last report and
 * its `shutdown_message` file carry one ("300 No more work"); its process exit
 * status is derived from it (`exitStatusFor`).
 */
export const ShutdownCode = {
  /** Shut down as requested by the host or an administrator. */
  REQUESTED: 100,
  /** The intended work was completed. */
  COMPLETED: 200,
  /** No more work. */
  NO_WORK: 300,
  /** Site or node banned. */
  BANNED: 400,
  /** Environment or bootstrap problem. */
  ENVIRONMENT: 500,
  /** Task queue or payload-framework problem. */
  TASK_QUEUE: 600,
  /** Transient or internal error (e.g. the server unreachable too long). */
  TRANSIENT: 700,
} as const;

export type ShutdownCodeValue = (typeof ShutdownCode)[keyof typeof ShutdownCode];

const TEXT: Record<number, string> = {
  100: 'Shutdown as requested',
  200: 'Intended work completed',
  300: 'No more work',
  400: 'Site or node banned',
  500: 'Environment or bootstrap problem',
  600: 'Task queue or payload framework problem',
  700: 'Transient or internal error',
};

/** The standard text of a shutdown code, e.g. 300 → "No more work". */
export function shutdownText(code: number): string {
  return TEXT[Math.floor(code / 100) * 100] ?? 'Unknown shutdown code';
}

/** "NNN text", the form of a `shutdown_message` file. */
export function shutdownMessage(code: number, text?: string): string {
  return `${code} ${text ?? shutdownText(code)}`;
}

/**
 * The exit status of an agent that halted with `code` and the halt action
 * `exit`: 0 for the normal ends (100, 200, 300), otherwise code / 100 + 10
 * (400 → 14, 500 → 15, 600 → 16, 700 → 17), so scripts can tell them apart.
 */
export function exitStatusFor(code: number): number {
  if (code >= 100 && code < 400) return 0;
  return Math.floor(code / 100) + 10;
}
