/**
 * The agent's log lines are pino's JSON format: what pino-pretty and log
 * collectors read. Levels filter, children add their bindings, errors keep
 * their message.
 */
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/shared/log.js';

function capture(level?: string) {
  const text: string[] = [];
  const log = createLogger({ level, base: { role: 'agent' }, destination: { write: (line: string) => text.push(line) } });
  return { log, lines: () => text.map((l) => JSON.parse(l) as Record<string, unknown>), text };
}

describe('the logger', () => {
  it('writes one pino-style JSON line per event, fields and bindings included', () => {
    const { log, lines, text } = capture();
    log.child({ role: 'executor', pilot: 3 }).info({ payloadId: 7, cores: 2 }, 'payload started');
    log.warn('plain message');
    expect(text.every((l) => l.endsWith('}\n'))).toBe(true);
    const [a, b] = lines();
    expect(a).toMatchObject({ level: 30, role: 'executor', pilot: 3, payloadId: 7, cores: 2, msg: 'payload started' });
    expect(Object.keys(a!).slice(0, 2)).toEqual(['level', 'time']);
    expect(new Date(a!.time as string).toISOString()).toBe(a!.time);
    expect(b).toMatchObject({ level: 40, role: 'agent', msg: 'plain message' });
  });

  it('drops lines below its level; silent writes nothing', () => {
    const warn = capture('warn');
    warn.log.info('no');
    warn.log.debug({ x: 1 }, 'no');
    warn.log.error('yes');
    expect(warn.lines().map((l) => l.msg)).toEqual(['yes']);
    const silent = capture('silent');
    silent.log.fatal('no');
    expect(silent.text).toEqual([]);
  });

  it('an Error keeps its type and message; quotes and newlines stay valid JSON', () => {
    const { log, lines } = capture();
    log.error({ err: new TypeError('bad "thing"\nhere') }, 'failed: "x"');
    const [line] = lines();
    expect(line).toMatchObject({ level: 50, err: { type: 'TypeError', message: 'bad "thing"\nhere' }, msg: 'failed: "x"' });
  });
});
