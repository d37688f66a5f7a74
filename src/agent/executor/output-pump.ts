/**
 * The output pump: a small process between a payload and its stdout and
 * stderr files, so that a full disk truncates the logs instead of failing
 * the payload's writes. The payload writes into pipes; the pump appends what
 * it reads to the files (O_APPEND, so the output cap can cut them), drops
 * what does not fit (ENOSPC, EDQUOT, EFBIG), notes the drop in the file as
 * soon as a write succeeds again, and keeps reading, so the payload never
 * sees an error or SIGPIPE.
 *
 * It is its own process, in its own process group and outside the payload's
 * tree: an agent SIGKILLed and restarted does not take the pipes' reading
 * end with it (its payloads would die of SIGPIPE), and the end-of-payload
 * kill of the tree does not cut the last output. It exits once every writer
 * has closed the pipes (the payload's tree is gone), with a status that says
 * whether output was dropped and why.
 *
 *   payload ──fd1──▶ pipe ──▶ pump (fd 0) ──append──▶ <dir>/stdout
 *           ──fd2──▶ pipe ──▶ pump (fd 3) ──append──▶ <dir>/stderr
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

/** Pump exit statuses: nothing dropped, or output dropped for this reason. */
export const PUMP_STATUS: Readonly<Record<number, string>> = {
  3: 'no space left on device',
  4: 'disk quota exceeded',
  5: 'file too large',
  6: 'write error',
};

/** The text of the report note for pump status `status`, or null when nothing was dropped. */
export function truncationNote(status: number | null): string | null {
  const why = status === null ? null : PUMP_STATUS[status];
  return why ? `output truncated: ${why}` : null;
}

/**
 * The pump's program: POSIX sh and cat, about 4 MB of memory a payload (a
 * node process would cost 40 MB, and a single executable cannot run
 * `node -e`). Arguments: the stdout and stderr files; it reads the payload's
 * stdout on fd 0 and its stderr on fd 3. When an append fails it says why
 * (exit status 3 to 6, and one line in the file when that can be written),
 * and drains the rest so that the payload never sees an error or SIGPIPE.
 */
export const PUMP_SCRIPT = String.raw`
pump() {
  err=$( { cat >> "$1"; } 2>&1 ) && return 0
  case $err in
    *'No space'*) st=3 ;;
    *[Qq]uota*) st=4 ;;
    *'too large'*) st=5 ;;
    *) st=6 ;;
  esac
  case $st in 3) why='no space left on device' ;; 4) why='disk quota exceeded' ;; 5) why='file too large' ;; *) why='write error' ;; esac
  n=$(wc -c)
  printf '[vmpilot: %s bytes of output dropped: %s]
' "$n" "$why" >> "$1" 2>/dev/null
  return $st
}
trap '' PIPE INT HUP TERM
exec 4<&0
pump "$1" <&4 & a=$!
pump "$2" <&3 & b=$!
exec 3<&- 4<&- 0</dev/null
wait $a; s=$?
wait $b; t=$?
[ "$s" -ne 0 ] && exit "$s"
exit "$t"
`;

/** A running pump: its writable ends go to the payload as stdout and stderr. */
export interface OutputPump {
  child: ChildProcess;
  /** Give these to the payload as its fd 1 and fd 2, then call `release()`. */
  stdout: Writable;
  stderr: Writable;
  /** Close the agent's copies of the pipes (the payload holds its own), so the pump sees the end. */
  release(): void;
  /** Settles with the pump's exit status once it has written everything (null: killed). */
  done: Promise<number | null>;
}

/** Start a pump appending to `stdoutPath` and `stderrPath`; null when it cannot start. */
export async function startOutputPump(stdoutPath: string, stderrPath: string, ids: { uid?: number; gid?: number } = {}): Promise<OutputPump | null> {
  const child = spawn('/bin/sh', ['-c', PUMP_SCRIPT, 'vmpilot-pump', stdoutPath, stderrPath], {
    detached: true,
    stdio: ['pipe', 'ignore', 'ignore', 'pipe'],
    env: { PATH: '/usr/bin:/bin' },
    ...(ids.uid === undefined ? {} : { uid: ids.uid }),
    ...(ids.gid === undefined ? {} : { gid: ids.gid }),
  });
  const done = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(null));
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  child.unref();
  const stdout = child.stdin!;
  const stderr = child.stdio[3] as Writable;
  for (const s of [stdout, stderr]) s.on('error', () => undefined);
  return {
    child,
    stdout,
    stderr,
    release: () => {
      for (const s of [stdout, stderr] as (Writable & Partial<Readable>)[]) s.destroy();
    },
    done,
  };
}
