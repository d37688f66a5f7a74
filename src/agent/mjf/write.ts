/**
 * Writing a Machine/Job Features directory so that a reader never sees
 * anything but key names holding whole values, whatever the umask:
 *
 *   <parent>/.<name>.tmp/KEY.<pid>.<n>   the value is written here (0700 directory, only the agent looks in it)
 *        │ fchmod 0644, close
 *        ▼ rename (atomic: same filesystem, a sibling directory)
 *   <parent>/<name>/KEY                   0644 in a 0755 directory: readable by a payload user under any umask
 *
 * A key is replaced in one rename: a client listing the directory and
 * reading each file finds no temporary names and no file that vanishes
 * between the listing and the read (HSF-TN-2016-02 allows only key names).
 */
import { chmod, lstat, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';

/** Mode of a features directory and of each key file: readable by everyone (the payload user). */
export const FEATURES_DIR_MODE = 0o755;
export const FEATURE_FILE_MODE = 0o644;
/** Mode of the sibling directory holding values being written: the agent's own. */
export const FEATURES_TMP_MODE = 0o700;

/** The hidden sibling directory where the values of `dir` are written before they are renamed into it. */
export function featuresTmpDir(dir: string): string {
  return path.join(path.dirname(dir), `.${path.basename(dir)}.tmp`);
}

let counter = 0;

async function ensureDir(dir: string, mode: number): Promise<void> {
  const made = await mkdir(dir, { recursive: true, mode });
  // mkdir's mode is masked by the umask: set it explicitly (once: a chmod is an event every watcher sees)
  if (made !== undefined || ((await stat(dir)).mode & 0o7777) !== mode) await chmod(dir, mode);
}

async function writeOne(dir: string, tmpDir: string, key: string, value: number | string): Promise<void> {
  const tmp = path.join(tmpDir, `${key}.${process.pid}.${++counter}`);
  const handle = await open(tmp, 'wx', FEATURE_FILE_MODE);
  try {
    await handle.writeFile(`${value}\n`);
    // fchmod is not masked by the umask
    await handle.chmod(FEATURE_FILE_MODE);
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, path.join(dir, key));
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/**
 * Write `values` into `dir`, one file per key, each replaced atomically;
 * `remove` lists keys to delete (a value no longer given). Creates `dir`
 * (0755) and its temporary sibling (0700) when missing.
 */
export async function writeFeatures(dir: string, values: Readonly<Record<string, number | string>>, remove: readonly string[] = []): Promise<void> {
  const tmpDir = featuresTmpDir(dir);
  await ensureDir(dir, FEATURES_DIR_MODE);
  await ensureDir(tmpDir, FEATURES_TMP_MODE);
  await Promise.all(Object.entries(values).map(([key, value]) => writeOne(dir, tmpDir, key, value)));
  await Promise.all(remove.filter((k) => !(k in values)).map((k) => rm(path.join(dir, k), { force: true })));
}

/** The uid the agent runs as, or null where there is none. */
const ownUid = (): number | null => (typeof process.getuid === 'function' ? process.getuid() : null);

/** Why `p` is not a directory of this agent's own (a symlink, another owner), or null when it is one, or 'absent'. */
async function notOurDir(p: string): Promise<string | null | 'absent'> {
  const s = await lstat(p).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? null : Promise.reject(err)));
  if (s === null) return 'absent';
  if (s.isSymbolicLink()) return `${p} is a symbolic link`;
  if (!s.isDirectory()) return `${p} is not a directory`;
  const uid = ownUid();
  if (uid !== null && s.uid !== uid) return `${p} belongs to uid ${s.uid}, not to the agent (uid ${uid})`;
  return null;
}

/** What a rewrite of a running payload's features did. */
export type RewriteOutcome = { kind: 'written' } | { kind: 'absent' } | { kind: 'refused'; reason: string };

/**
 * Update keys of a features directory the agent made earlier and a payload
 * now reads (its `$JOBFEATURES`, in a directory the payload's user owns):
 * only when `dir` and its temporary sibling are still directories of the
 * agent's own, not links a payload put there. 'absent' when `dir` is not
 * there (yet): nothing is created.
 */
export async function rewriteFeatures(dir: string, values: Readonly<Record<string, number | string>>, remove: readonly string[] = []): Promise<RewriteOutcome> {
  const d = await notOurDir(dir);
  if (d === 'absent') return { kind: 'absent' };
  if (d !== null) return { kind: 'refused', reason: d };
  const t = await notOurDir(featuresTmpDir(dir));
  if (t !== null && t !== 'absent') return { kind: 'refused', reason: t };
  await writeFeatures(dir, values, remove);
  return { kind: 'written' };
}
