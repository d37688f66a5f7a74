import pino, { type Logger, type DestinationStream } from 'pino';

export type { Logger };

export interface LogOptions {
  level?: string;
  /** Where to write; default stderr, synchronously (no worker threads: the agent is one file). */
  destination?: DestinationStream;
  /** Bindings on every line, e.g. { role: 'agent' }. */
  base?: Record<string, unknown>;
}

/**
 * Create the one logger of a process, at its entry point. Lines are pino JSON
 * on stderr; pipe through pino-pretty to read them on a terminal. Roles get
 * child loggers (`log.child({ role: 'executor' })`).
 */
export function createLogger(options: LogOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: options.base ?? {},
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? pino.destination({ fd: 2, sync: true }),
  );
}

/** A logger that writes nothing, for tests and quiet commands. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
