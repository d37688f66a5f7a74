/**
 * The logger: one JSON line per event on stderr, in pino's format
 * (`{"level":30,"time":"…","role":"agent",…,"msg":"…"}`), so pino-pretty and
 * anything that reads pino logs read ours. It is a few dozen lines rather
 * than pino itself because an idle agent pays for every module it loads:
 * pino with its stream and helpers kept about 3 MB resident in an agent whose
 * budget is 60 MB. The server, whose HTTP framework speaks pino, uses pino
 * (`server/log.ts`) behind the same `Logger` interface.
 */
import { writeSync } from 'node:fs';

/** A level's number, as pino numbers them. */
export const LEVEL_VALUES = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;
/** The names `--log-level` accepts. */
export type LevelName = keyof typeof LEVEL_VALUES | 'silent';

/** Log at one level: a message, or fields then a message. */
export interface LogFn {
  (msg: string): void;
  (fields: object, msg?: string): void;
}

/** What the code logs through (pino's loggers have this shape too). */
export interface Logger {
  level: string;
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
  /** A logger whose lines also carry `bindings` (e.g. `{ role: 'executor' }`). */
  child(bindings: Record<string, unknown>): Logger;
  /** Write out what is buffered (nothing is: lines are written synchronously). */
  flush?(): void;
}

/** Where lines go: anything with `write(text)`; default stderr, synchronously. */
export interface LogDestination {
  write(line: string): unknown;
}

export interface LogOptions {
  level?: string;
  destination?: LogDestination;
  /** Bindings on every line, e.g. { role: 'agent' }. */
  base?: Record<string, unknown>;
}

const stderr: LogDestination = {
  write(line) {
    try {
      writeSync(2, line);
    } catch {
      // stderr closed or full: a log line is not worth failing for
    }
  },
};

/** Errors as pino shows them (JSON.stringify would give `{}`). */
function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return { type: value.name, message: value.message, ...(value.stack ? { stack: value.stack } : {}) };
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/** The JSON members of `fields`, without the braces ('' when none). */
function members(fields: object): string {
  const text = JSON.stringify(fields, replacer);
  return text && text.length > 2 ? text.slice(1, -1) : '';
}

function make(min: number, levelName: string, bindings: string, out: LogDestination): Logger {
  const at = (value: number): LogFn =>
    value < min
      ? () => undefined
      : (a: object | string, b?: string) => {
          const [fields, msg] = typeof a === 'string' ? [null, a] : [a, b];
          const extra = fields ? members(fields) : '';
          out.write(
            `{"level":${value},"time":"${new Date().toISOString()}"${bindings ? `,${bindings}` : ''}${extra ? `,${extra}` : ''}${msg === undefined ? '' : `,"msg":${JSON.stringify(msg)}`}}\n`,
          );
        };
  return {
    level: levelName,
    trace: at(LEVEL_VALUES.trace),
    debug: at(LEVEL_VALUES.debug),
    info: at(LEVEL_VALUES.info),
    warn: at(LEVEL_VALUES.warn),
    error: at(LEVEL_VALUES.error),
    fatal: at(LEVEL_VALUES.fatal),
    child: (more) => {
      const added = members(more);
      return make(min, levelName, [bindings, added].filter(Boolean).join(','), out);
    },
    flush: () => undefined,
  };
}

/**
 * Create the one logger of a process, at its entry point. Roles get child
 * loggers (`log.child({ role: 'executor' })`).
 */
export function createLogger(options: LogOptions = {}): Logger {
  const level = options.level ?? 'info';
  const min = level === 'silent' ? Infinity : (LEVEL_VALUES[level as keyof typeof LEVEL_VALUES] ?? LEVEL_VALUES.info);
  return make(min, level, members(options.base ?? {}), options.destination ?? stderr);
}

/** A logger that writes nothing, for tests and quiet commands. */
export function silentLogger(): Logger {
  return createLogger({ level: 'silent' });
}
