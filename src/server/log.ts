/**
 * The server's logger: pino, which its HTTP framework speaks (fastify hands
 * it requests, replies and errors to serialise), behind the shared `Logger`
 * interface. Lines are the same JSON as the agent's (`shared/log.ts`).
 */
import pino from 'pino';
import type { LogOptions, Logger } from '../shared/log.js';

/** The server's one logger: pino JSON on stderr, written synchronously. */
export function createServerLogger(options: Omit<LogOptions, 'destination'> = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: options.base ?? {},
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination({ fd: 2, sync: true }),
  );
}
