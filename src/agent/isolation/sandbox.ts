/**
 * The command lines that start a payload in a user and PID namespace when
 * the agent is not root (a batch job). Pure: the runner puts them between
 * the payload wrapper (which stays outside, so its pid and exit status are
 * the agent's to read) and the payload's own command.
 *
 * Inside, the payload sees the node's file system as it is, except:
 *   - the state directory is an empty read-only tmpfs, with only the
 *     payload's own directory (read-write) and the node's machine features
 *     (read-only) mounted back into it: no state.json, no credential, no
 *     other payload's directory;
 *   - the files the agent writes into the payload's directory (stdout,
 *     stderr, pid, jobfeatures, …) are read-only mount points there, so the
 *     payload cannot swap them for links that would make the agent read or
 *     write a file of its choosing;
 *   - files holding secrets outside it (the token file, the config file) read
 *     as empty;
 *   - /proc is the namespace's own: the agent and every other process of the
 *     node are out of sight and cannot be signalled;
 *   - when the namespace's first process ends, the kernel kills every
 *     process left in it, detached or not.
 *
 * bwrap does all of it itself. With util-linux `unshare` a short script
 * (UNSHARE_SETUP) runs as root of a new user namespace, makes the mounts,
 * then starts the payload in a second, nested user namespace as the agent's
 * own uid: mounts inherited by a less privileged namespace are locked, so
 * the payload cannot unmount the tmpfs to look under it.
 */

/** What one payload's sandbox is made of (absolute paths). */
export interface SandboxSpec {
  stateDir: string;
  payloadDir: string;
  /** Directories under the state dir the payload may read (machine features, bootstrap software); at most 4. */
  sharedDirs: readonly string[];
  /** Names inside the payload dir that the agent writes: read-only, and not replaceable, inside. */
  protect: readonly string[];
  /** Files outside the state dir that hold secrets: read as empty inside. */
  hide: readonly string[];
  /** Directories outside the state dir that hold secrets (a mailbox, docs/hpc.md): empty inside. */
  hideDirs?: readonly string[];
  /** The agent's uid and gid (the payload keeps them inside the unshare sandbox). */
  uid: number;
  gid: number;
  /** `unshare --map-user` exists (util-linux 2.38+); else the payload is root of its own namespace. */
  mapUser: boolean;
}

/** The names the agent writes into a payload's directory (the sandbox and the sticky dir protect them). */
export const AGENT_FILES = ['stdout', 'stderr', 'stdout.cut', 'stderr.cut', 'pid', 'jobfeatures', 'environment'] as const;

/** The file in a sandboxed payload's directory that holds its environment. */
export const ENV_FILE = 'environment';

/**
 * The last step inside the sandbox: read the payload's environment (shell
 * `export` lines the agent wrote) and run the payload. Everything before it
 * — the wrapper, bwrap or unshare, mount — runs outside or with privileges
 * in the sandbox, so none of it may see the payload's environment: a
 * LD_PRELOAD there would run the payload's code where it could read the
 * agent's state.
 */
export const ENV_LOADER = '. "$0" && exec "$@"';

/** `name=value` pairs as sh `export` lines (values single-quoted). Names are checked by the protocol. Pure. */
export function envFileText(env: Readonly<Record<string, string>>): string {
  return Object.entries(env)
    .filter(([k]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k))
    .map(([k, v]) => `export ${k}='${v.replace(/'/g, `'\\''`)}'\n`)
    .join('');
}

/** The PATH of everything that starts a sandbox (and of the probe that tries one): never the payload's. */
export const OUTER_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The environment of the processes outside the sandbox: a fixed PATH and what the wrapper and the watch need. */
export function outerEnv(payloadEnv: Readonly<Record<string, string>>): Record<string, string> {
  const keep = ['VMPILOT_PAYLOAD_ID', 'VMPILOT_PAYLOAD_DIR'];
  const env: Record<string, string> = { PATH: OUTER_PATH };
  for (const k of keep) if (payloadEnv[k] !== undefined) env[k] = payloadEnv[k]!;
  return env;
}

/**
 * A spec that starts its command in its sandbox, from one that asks for it:
 * the sandbox prefix and the environment loader before the command, the
 * outer environment for the processes that start it. Pure; a spec without
 * a sandbox is returned as it is.
 */
export function applySandbox<S extends { command: string[]; env: Record<string, string>; sandbox?: { prefix: string[]; envFile: string; outerEnv: Record<string, string> }; sandboxed?: boolean }>(spec: S): S {
  if (!spec.sandbox) return spec;
  const { prefix, envFile, outerEnv: env } = spec.sandbox;
  const { sandbox: _, ...rest } = spec;
  return { ...rest, command: [...prefix, '/bin/sh', '-c', ENV_LOADER, envFile, ...spec.command], env: { ...env }, sandboxed: true } as S;
}

const under = (dir: string, p: string) => p === dir || p.startsWith(`${dir}/`);

/** The bwrap command that runs `command` in the sandbox. Pure. */
export function bwrapCommand(s: SandboxSpec, command: readonly string[]): string[] {
  const argv = ['bwrap', '--unshare-user', '--unshare-pid', '--die-with-parent', '--dev-bind', '/', '/', '--proc', '/proc', '--tmpfs', s.stateDir];
  argv.push('--bind', s.payloadDir, s.payloadDir);
  for (const dir of s.sharedDirs) argv.push('--ro-bind-try', dir, dir);
  for (const name of s.protect) argv.push('--ro-bind-try', `${s.payloadDir}/${name}`, `${s.payloadDir}/${name}`);
  for (const file of s.hide) if (!under(s.stateDir, file)) argv.push('--ro-bind-try', '/dev/null', file);
  for (const dir of s.hideDirs ?? []) if (!under(s.stateDir, dir)) argv.push('--tmpfs', dir);
  argv.push('--remount-ro', s.stateDir, '--chdir', s.payloadDir, '--', ...command);
  return argv;
}

/**
 * The script that sets up the mounts inside `unshare`, run as root of the
 * first user namespace and first process (pid 1) of the PID namespace.
 * Arguments: STATE PAYLOAD MAPUSER UID GID NSHARED DIRS... NPROTECT NAMES... NHIDE FILES-OR-DIRS... -- COMMAND...
 * It stays the namespace's pid 1 (the payload is its child, so the agent's
 * SIGTERM reaches the payload) and exits with the payload's status (128+N
 * when a signal killed it), which is when the kernel kills what is left.
 * Directories are held open (the payload's on fd 9, shared ones on fd 5 to
 * 8) before the tmpfs covers them, and mounted back from /proc/self/fd
 * without canonicalizing the path. The protected names are AGENT_FILES (no
 * spaces); other paths may have any name.
 */
export const UNSHARE_SETUP = String.raw`set -eu
state=$1 pd=$2 mapuser=$3 uid=$4 gid=$5
shift 5
exec 9<"$pd"
n=$1; shift; fd=5; shared=""
while [ "$n" -gt 0 ]; do
  if [ -d "$1" ] && [ "$fd" -le 8 ]; then eval "exec $fd<\"\$1\""; shared="$shared $fd"; eval "dir_$fd=\$1"; fd=$((fd + 1)); fi
  shift; n=$((n - 1))
done
n=$1; shift; protect=""
while [ "$n" -gt 0 ]; do protect="$protect $1"; shift; n=$((n - 1)); done
n=$1; shift
while [ "$n" -gt 0 ]; do
  if [ -f "$1" ]; then mount --bind /dev/null "$1"; elif [ -d "$1" ]; then mount -t tmpfs -o mode=0700 vmpilot-hidden "$1"; fi
  shift; n=$((n - 1))
done
[ "$1" = -- ] && shift
mount -t tmpfs -o mode=0755 vmpilot-hidden "$state"
mkdir -p "$pd"
mount --no-canonicalize --bind /proc/self/fd/9 "$pd"
for fd in $shared; do
  eval "dir=\$dir_$fd"
  mkdir -p "$dir"
  mount --no-canonicalize --bind "/proc/self/fd/$fd" "$dir"
  mount -o remount,bind,ro "$dir"
  eval "exec $fd<&-"
done
exec 9<&-
for name in $protect; do
  if [ -e "$pd/$name" ]; then mount --bind "$pd/$name" "$pd/$name"; mount -o remount,bind,ro "$pd/$name"; fi
done
mount -o remount,bind,ro "$state"
cd "$pd"
set +e
if [ "$mapuser" = 1 ]; then
  unshare --user --mount --map-user="$uid" --map-group="$gid" -- "$@"
else
  unshare --user --mount --map-root-user -- "$@"
fi
exit $?`;

/** The unshare command that runs `command` in the sandbox. Pure. */
export function unshareCommand(s: SandboxSpec, command: readonly string[]): string[] {
  // the script hides a file as empty and a directory under an empty tmpfs
  const hide = [...s.hide, ...(s.hideDirs ?? [])].filter((f) => !under(s.stateDir, f));
  return [
    'unshare', '--user', '--map-root-user', '--mount', '--pid', '--fork', '--kill-child', '--mount-proc', '--',
    '/bin/sh', '-c', UNSHARE_SETUP, 'vmpilot-sandbox',
    s.stateDir, s.payloadDir, s.mapUser ? '1' : '0', String(s.uid), String(s.gid),
    String(s.sharedDirs.length), ...s.sharedDirs, String(s.protect.length), ...s.protect, String(hide.length), ...hide, '--', ...command,
  ];
}

/** The sandbox command for `tool`. Pure. */
export function sandboxCommand(tool: 'bwrap' | 'unshare', s: SandboxSpec, command: readonly string[]): string[] {
  return tool === 'bwrap' ? bwrapCommand(s, command) : unshareCommand(s, command);
}
