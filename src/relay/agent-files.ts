/**
 * `GET /v1/agent/<file>` at the relay: the agent files a batch script
 * downloads (bootstrap/, `vmpilot-server batch-script --server
 * http://LOGIN:PORT`), served from the relay's cache so that a thousand
 * compute nodes do not each fetch the agent over the wide-area link.
 *
 * Every request is first put to the server as a request for the manifest,
 * with the caller's own token: the server decides who may download (the
 * registration token, as without a relay), and says which files exist with
 * their sha256 and size. The file itself is fetched once per sha256, checked
 * against the manifest (cache.ts), and then served from disk, with Range.
 * A new agent on the server (a new manifest) is fetched again on first ask.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { VmpilotError, describeError, isVmpilotError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { ContentCache } from './cache.js';
import { sendFile } from './send-file.js';
import { relayStatusOf } from './forward.js';
import type { Upstream } from './upstream.js';

/** The manifest's name under /v1/agent/. */
export const MANIFEST = 'agent-manifest.json';

/** A file the manifest lists, as far as the relay reads it. */
interface ListedFile {
  name: string;
  size: number;
  sha256: string;
}

/** The files of a manifest's text, checked; VMP_SERVER naming what is wrong. Pure. */
export function listedFiles(text: string): { version: string; files: ListedFile[] } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new VmpilotError('VMP_SERVER', 'the server sent an agent manifest that is not JSON');
  }
  const m = doc as { version?: unknown; files?: unknown };
  if (typeof m?.version !== 'string' || !Array.isArray(m.files)) throw new VmpilotError('VMP_SERVER', 'the server sent an agent manifest without version and files');
  const files = m.files.filter(
    (f: Partial<ListedFile>): f is ListedFile =>
      typeof f?.name === 'string' && /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(f.name) && Number.isInteger(f.size) && typeof f.sha256 === 'string' && /^[0-9a-f]{64}$/.test(f.sha256),
  );
  return { version: m.version, files };
}

/** Serves agent files through the cache. */
export class AgentFiles {
  constructor(
    private readonly upstream: Upstream,
    private readonly cache: ContentCache,
    private readonly log: Logger,
  ) {}

  /** Answer `GET /v1/agent/<name>`. */
  async serve(req: IncomingMessage, res: ServerResponse, name: string): Promise<void> {
    const authorization = req.headers.authorization;
    const headers: Record<string, string> = authorization ? { authorization } : {};
    try {
      const answer = await this.upstream.call({ method: 'GET', path: `/v1/agent/${MANIFEST}`, headers, lane: 'calls', timeoutMs: 60_000 });
      if (answer.status !== 200) {
        // the server's own refusal (401 for a wrong token): the caller gets it as it is
        res.writeHead(answer.status, { 'content-type': String(answer.headers['content-type'] ?? 'application/json') }).end(answer.body);
        return;
      }
      if (name === MANIFEST) {
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(answer.body);
        return;
      }
      const manifest = listedFiles(answer.body.toString('utf8'));
      const checksum = name.endsWith('.sha256');
      const file = manifest.files.find((f) => f.name === (checksum ? name.slice(0, -'.sha256'.length) : name));
      if (!file) throw new VmpilotError('VMP_NOT_FOUND', `no agent file "${name}"; the server has ${[MANIFEST, ...manifest.files.map((f) => f.name)].join(', ')}`);
      if (checksum) {
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(`${file.sha256}  ${file.name}\n`);
        return;
      }
      const cached = await this.cache.get(file.sha256, file.size, async () => {
        const fetched = await this.upstream.open({ method: 'GET', path: `/v1/agent/${file.name}`, headers, lane: 'calls', timeoutMs: 60_000 });
        if (fetched.statusCode !== 200) {
          fetched.resume();
          throw new VmpilotError('VMP_SERVER', `the server answered HTTP ${fetched.statusCode} for ${file.name}, which its manifest lists`);
        }
        // under the server's own path, as the call went (a server behind a proxy at https://host/api)
        return { stream: fetched, from: new URL(`v1/agent/${file.name}`, this.upstream.base).href };
      });
      await sendFile(req, res, cached, { 'x-vmpilot-sha256': file.sha256, 'x-vmpilot-version': manifest.version }, `"${file.sha256}"`);
    } catch (err) {
      const e = isVmpilotError(err) ? err : new VmpilotError('VMP_INTERNAL', describeError(err), { cause: err });
      if (e.code === 'VMP_INTERNAL') this.log.error({ err: describeError(err), file: name }, 'agent file failed');
      if (!res.headersSent) res.writeHead(relayStatusOf(e.code), { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify({ error: { code: e.code, message: `relay: ${e.message}` } }));
      else res.destroy();
    }
  }
}
