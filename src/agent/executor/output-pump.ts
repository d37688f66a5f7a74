/**
 * The output pump: a small process between a payload and its stdout and
 * stderr files, so that a full disk truncates the logs instead of failing
 * the payload's writes, and the output cap holds while the payload writes. The payload writes into pipes; the pump appends what
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
 * The pump's program: POSIX sh, cat, head, tail and stat, about 4 MB of
 * memory a payload (a node process would cost 40 MB, and a single
 * executable cannot run `node -e`). Arguments: the stdout and stderr files
 * and the cap in bytes (0: none); it reads the payload's stdout on fd 0 and
 * its stderr on fd 3.
 *
 * With a cap it copies in chunks of at most half the cap and, before a
 * chunk could take a file past the cap, keeps only the file's newest half
 * under a line saying how much was dropped so far: the file never grows
 * past the cap, however fast the payload writes. The cut is made in place
 * (through FILE.cut, which the agent created), so the file stays the one
 * the agent made.
 *
 * When an append fails it says why (exit status 3 to 6, and one line in the
 * file when that can be written), and drains the rest so that the payload
 * never sees an error or SIGPIPE.
 */
export const PUMP_SCRIPT = String.raw`
status() {
  case $1 in
    *'No space'*) st=3 ;;
    *[Qq]uota*) st=4 ;;
    *'too large'*) st=5 ;;
    *) st=6 ;;
  esac
  case $st in 3) why='no space left on device' ;; 4) why='disk quota exceeded' ;; 5) why='file too large' ;; *) why='write error' ;; esac
}
dropped() {
  n=$(wc -c)
  printf '[vmpilot: %s bytes of output dropped: %s]
' "$n" "$why" >> "$1" 2>/dev/null
  return $st
}
size() { stat -L -c %s -- "$1" 2>/dev/null || echo 0; }
pump() {
  if [ "$2" -eq 0 ]; then
    err=$( { cat >> "$1"; } 2>&1 ) && return 0
    status "$err"; dropped "$1"; return $?
  fi
  keep=$(($2 / 2)); chunk=$(($2 - keep - 128)); total=0
  while :; do
    have=$(size "$1")
    if [ $((have + chunk)) -gt "$2" ]; then
      total=$((total + have - keep))
      if ! { printf '[vmpilot: %s bytes of earlier output dropped]
' "$total"; tail -c "$keep" -- "$1"; } > "$1.cut" 2>/dev/null ||
         ! cat -- "$1.cut" > "$1" 2>/dev/null; then
        : > "$1" 2>/dev/null
      fi
      : > "$1.cut" 2>/dev/null
      have=$(size "$1")
    fi
    err=$( { head -c "$chunk" >> "$1"; } 2>&1 ) || { status "$err"; dropped "$1"; return $?; }
    [ "$(size "$1")" -gt "$have" ] || return 0
  done
}
trap '' PIPE INT HUP TERM
exec 4<&0
pump "$1" "$3" <&4 & a=$!
pump "$2" "$3" <&3 & b=$!
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
  /** The pump keeps the files under the cap itself. */
  capped: boolean;
}

/** Start a pump appending to `stdoutPath` and `stderrPath`, each kept under `maxBytes` (null: no cap); null when it cannot start. */
export async function startOutputPump(
  stdoutPath: string,
  stderrPath: string,
  ids: { uid?: number; gid?: number } = {},
  maxBytes: number | null = null,
): Promise<OutputPump | null> {
  // a cap too small to cut in halves with room for the note is no cap the pump can keep: the sampler keeps it
  const cap = maxBytes !== null && maxBytes >= 4096 ? Math.floor(maxBytes) : 0;
  const child = spawn('/bin/sh', ['-c', PUMP_SCRIPT, 'vmpilot-pump', stdoutPath, stderrPath, String(cap)], {
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
    capped: cap > 0,
  };
}
