/**
 * What the fault tests read from an agent's own log (pino JSON lines on
 * stderr): its failed calls, with the agent's own time, and the moment and
 * reason it decided to halt. Waiting on these is waiting on events the
 * agent itself saw, not on the test's sleeps.
 */
import type { Proc } from '../integration/harness.js';

/** One line of an agent's log. */
export interface LogLine {
  time: number;
  msg: string;
  fields: Record<string, unknown>;
}

/** The log lines of `agent` from character `from` of its stderr on. */
export function logLines(agent: Proc, from = 0): LogLine[] {
  const out: LogLine[] = [];
  for (const text of agent.stderr().slice(from).split('\n')) {
    if (!text.startsWith('{')) continue;
    try {
      const fields = JSON.parse(text) as Record<string, unknown>;
      out.push({ time: Date.parse(String(fields.time)), msg: String(fields.msg ?? ''), fields });
    } catch {
      // a line cut in the middle (still being written): read it next time
    }
  }
  return out;
}

/** The messages a call to the server that got no answer leaves. */
const FAILED = new Set(['match failed', 'reports not sent', 'heartbeat failed', 'register failed']);

/** The agent's failed calls (no answer from the server) logged from character `from` of its stderr. */
export function failedCalls(agent: Proc, from = 0): LogLine[] {
  return logLines(agent, from).filter((l) => FAILED.has(l.msg));
}

/** When the agent decided to halt, with which shutdown code and why; null while it has not. */
export function haltDecision(agent: Proc): { time: number; code: number; reason: string } | null {
  const line = logLines(agent).find((l) => l.msg === 'halting');
  return line ? { time: line.time, code: Number(line.fields.code), reason: String(line.fields.reason) } : null;
}
