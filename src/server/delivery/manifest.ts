/**
 * The agent manifest: which agent files the server hands out, with their
 * size, sha256 and version. `npm run build` writes it as
 * dist/agent-manifest.json beside the files (scripts/sea.mjs); the server
 * reads it from the directory of its own bundle.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { VmpilotError } from '../../shared/errors.js';

/** One file the server hands out. */
export interface AgentFile {
  name: string;
  size: number;
  sha256: string;
  /** `bundle` (needs Node.js 20+) or `executable` (a Node single executable). */
  kind: 'bundle' | 'executable';
  platform?: string;
  /** `gzip` when the file is the compressed copy of `unpacked`. */
  encoding?: 'gzip';
  unpacked?: { name: string; size: number; sha256: string };
}

/** dist/agent-manifest.json. */
export interface AgentManifest {
  version: string;
  files: AgentFile[];
}

/** The name of the manifest, in the agent directory and under /v1/agent/. */
export const MANIFEST_NAME = 'agent-manifest.json';

/** Where the built agent files are: the directory of the running server bundle (dist/). */
export function defaultAgentDir(): string {
  return path.dirname(fileURLToPath(import.meta.url));
}

const SHA256 = /^[0-9a-f]{64}$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Check a parsed manifest; throws naming the first thing wrong. */
export function checkManifest(doc: unknown, where: string): AgentManifest {
  const bad = (what: string) => new VmpilotError('VMP_CONFIG', `agent manifest ${where}: ${what}; rebuild with npm run build`);
  if (typeof doc !== 'object' || doc === null) throw bad('not a JSON object');
  const m = doc as Partial<AgentManifest>;
  if (typeof m.version !== 'string' || m.version === '') throw bad('"version" must be a non-empty string');
  if (!Array.isArray(m.files)) throw bad('"files" must be a list');
  m.files.forEach((f: Partial<AgentFile>, i) => {
    if (typeof f.name !== 'string' || !NAME.test(f.name)) throw bad(`files[${i}].name must be a plain file name`);
    if (typeof f.sha256 !== 'string' || !SHA256.test(f.sha256)) throw bad(`files[${i}].sha256 must be 64 hex digits`);
    if (!Number.isInteger(f.size) || (f.size as number) < 0) throw bad(`files[${i}].size must be a whole number of bytes`);
  });
  return { version: m.version, files: m.files as AgentFile[] };
}

/** Read and check the manifest in `dir`; VMP_NOT_FOUND when there is none (agent not built). */
export async function readManifest(dir: string): Promise<AgentManifest> {
  const file = path.join(dir, MANIFEST_NAME);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new VmpilotError('VMP_NOT_FOUND', `no agent manifest at ${file}: build the agent with npm run build`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new VmpilotError('VMP_CONFIG', `agent manifest ${file} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  return checkManifest(doc, file);
}

/** The file to fetch for a platform: the compressed executable, or the bundle for `node`. */
export function pickAgentFile(manifest: AgentManifest, flavour: 'executable' | 'bundle'): AgentFile {
  const file =
    flavour === 'bundle'
      ? manifest.files.find((f) => f.kind === 'bundle')
      : (manifest.files.find((f) => f.kind === 'executable' && f.encoding === 'gzip') ?? manifest.files.find((f) => f.kind === 'executable'));
  if (!file) throw new VmpilotError('VMP_CONFIG', `the agent manifest lists no ${flavour === 'bundle' ? 'bundle' : 'executable'}; rebuild with npm run build`);
  return file;
}
