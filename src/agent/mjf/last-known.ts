/**
 * The Machine/Job Features values an agent last read well, kept in
 * `<state-dir>/mjf-read.json`: an agent restarted while the site's MJF
 * server is down starts from them (stale) instead of from nothing, and
 * `vmpilot mjf` shows what the running agent goes by. A missing or broken
 * file is no error: there is simply nothing known.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../state/file-store.js';
import type { KnownFeatures } from './reader.js';

/** The file in the state directory. */
export function lastKnownFile(stateDir: string): string {
  return path.join(stateDir, 'mjf-read.json');
}

type Entry = { value: number | string; readAt: number };

function entries(raw: unknown): Record<string, Entry> {
  const out: Record<string, Entry> = {};
  if (typeof raw !== 'object' || raw === null) return out;
  for (const [key, e] of Object.entries(raw as Record<string, unknown>)) {
    const { value, readAt } = (e ?? {}) as { value?: unknown; readAt?: unknown };
    if ((typeof value === 'number' || typeof value === 'string') && typeof readAt === 'number') out[key] = { value, readAt };
  }
  return out;
}

const sourceOf = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** The values in `file`, or null when there is no usable file. */
export async function loadLastKnown(file: string): Promise<KnownFeatures | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return null;
  }
  try {
    const j = JSON.parse(text) as { sources?: { machine?: unknown; job?: unknown }; machine?: unknown; job?: unknown };
    return { sources: { machine: sourceOf(j.sources?.machine), job: sourceOf(j.sources?.job) }, machine: entries(j.machine), job: entries(j.job) };
  } catch {
    return null;
  }
}

/** Replace `file` with `known` (atomically: a crash leaves the old file or the new one). */
export async function saveLastKnown(file: string, known: KnownFeatures): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(known)}\n`);
}
