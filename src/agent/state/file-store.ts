/**
 * The real StateStore: `<stateDir>/state.json`, written atomically (temp
 * file, fsync, rename, fsync of the directory), and `shutdown_message`.
 */
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { VmpilotError } from '../../shared/errors.js';
import type { AgentState, StateStore } from '../ports.js';

/** Write `data` to `file` atomically: readers see the old or the new content, never a mix. */
export async function writeFileAtomic(file: string, data: string): Promise<void> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const handle = await open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, file);
  try {
    const d = await open(dir, 'r');
    await d.sync().finally(() => d.close());
  } catch {
    // some file systems cannot fsync a directory; the rename is still atomic
  }
}

/** StateStore in a directory. */
export class FileStateStore implements StateStore {
  constructor(readonly dir: string) {}

  get file(): string {
    return path.join(this.dir, 'state.json');
  }

  async load(): Promise<AgentState | null> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new VmpilotError('VMP_STATE', `cannot read ${this.file}: ${(err as Error).message}`, { cause: err });
    }
    try {
      return JSON.parse(text) as AgentState;
    } catch (err) {
      throw new VmpilotError('VMP_STATE', `${this.file} is not valid JSON`, { cause: err });
    }
  }

  async save(state: AgentState): Promise<void> {
    try {
      await writeFileAtomic(this.file, `${JSON.stringify(state, null, 1)}\n`);
    } catch (err) {
      throw new VmpilotError('VMP_STATE', `cannot write ${this.file}: ${(err as Error).message}`, { cause: err });
    }
  }

  async writeShutdownMessage(line: string): Promise<void> {
    const file = path.join(this.dir, 'shutdown_message');
    try {
      await writeFileAtomic(file, `${line}\n`);
    } catch (err) {
      throw new VmpilotError('VMP_STATE', `cannot write ${file}: ${(err as Error).message}`, { cause: err });
    }
  }
}
