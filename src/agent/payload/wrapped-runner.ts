/**
 * Payloads outlive the agent: when the agent is killed and restarted (as
 * systemd does), it must find them again and learn how they ended. So every
 * payload is started through a tiny `sh` wrapper, the leader of its process
 * group, that
 *   - is named `vmpilot-payload-<id>` ($0, visible in /proc/<pid>/cmdline:
 *     a reused pid never looks like it),
 *   - writes its pid to `<payload dir>/pid` before it starts the payload,
 *   - writes the payload's exit status to `<payload dir>/exit_status` (through
 *     a temp name it removes first: when it writes, nothing of the payload
 *     runs that could have put a link there since),
 *   - survives SIGTERM so the payload gets its grace period, and re-raises a
 *     payload's deadly signal so the agent sees "killed by SIGTERM" as before;
 *   - does not start the payload at all when the signal came before it got
 *     there (a stop right after the start: the group's signal reached only
 *     the wrapper, and the payload, forked later, would never get it), and
 *     ends by that signal instead.
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { VmpilotError } from '../../shared/errors.js';
import { applySandbox } from '../isolation/sandbox.js';
import type { PayloadProcess, ProcessRunner, ProcessSpec } from '../ports.js';

/** The wrapper script (run with `sh -c SCRIPT vmpilot-payload-<id> COMMAND...`). */
export const WRAPPER_SCRIPT = `trap 'stopped=143' TERM
trap 'stopped=130' INT
trap 'stopped=129' HUP
d="\${VMPILOT_PAYLOAD_DIR:-.}"
echo $$ > "$d/pid.tmp" && mv -f "$d/pid.tmp" "$d/pid"
if [ -z "$stopped" ]; then "$@"; s=$?; else s=$stopped; fi
rm -rf "$d/exit_status.tmp"
printf '%s\\n' "$s" > "$d/exit_status.tmp" && mv -f "$d/exit_status.tmp" "$d/exit_status"
trap - TERM INT HUP
if [ "$s" -gt 128 ] && [ "$s" -le 192 ]; then kill -s "$(kill -l "$s")" $$; fi
exit "$s"`;

/** The $0 of payload `id`'s wrapper. */
export function wrapperName(id: string): string {
  return `vmpilot-payload-${id}`;
}

/** The command that runs `command` through the wrapper. Pure. */
export function wrapCommand(command: readonly string[], payloadId: string): string[] {
  return ['sh', '-c', WRAPPER_SCRIPT, wrapperName(payloadId), ...command];
}

/** Throw VMP_SPAWN when `file` cannot be run with this PATH (the wrapper itself always starts). */
export function checkRunnable(file: string | undefined, cwd: string, pathVar: string | undefined): void {
  if (!file) throw new VmpilotError('VMP_SPAWN', 'cannot start: empty command');
  const candidates = file.includes('/') ? [path.resolve(cwd, file)] : (pathVar ?? '').split(':').filter(Boolean).map((d) => path.join(d, file));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return;
    } catch {
      // try the next one
    }
  }
  throw new VmpilotError('VMP_SPAWN', `cannot start: spawn ${file} ENOENT`, { details: { command: file } });
}

/**
 * A ProcessRunner that starts every payload through the wrapper. A
 * sandboxed payload's sandbox goes inside the wrapper (whose pid and exit
 * status the agent reads, so it stays outside, as the agent's user).
 */
export function wrappedRunner(inner: ProcessRunner): ProcessRunner {
  return {
    async start(spec: ProcessSpec): Promise<PayloadProcess> {
      checkRunnable(spec.command[0], spec.cwd, spec.env.PATH);
      const id = spec.env.VMPILOT_PAYLOAD_ID ?? path.basename(spec.cwd);
      const started = applySandbox(spec);
      return inner.start({ ...started, command: wrapCommand(started.command, id) });
    },
  };
}
