/** A logger whose lines tests can read. */
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../../src/shared/log.js';

/** A debug-level logger that keeps every line it writes, parsed. */
export function captureLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: createLogger({ level: 'debug', destination }), lines };
}
