/**
 * `GET /v1/agent/agent-manifest.json`, `GET /v1/agent/<file>` and
 * `GET /v1/agent/<file>.sha256`: the server hands out the agent it was built
 * with, so a VM or batch job needs nothing but curl (or Node.js) and the
 * registration token (or its instance's one-time credential, while unspent:
 * the machine downloads the agent before its pilot registers). Only files the
 * manifest lists are served; a `Range: bytes=N-` request resumes a download
 * (206). The registration token, an unspent instance credential or the admin
 * token is required, like every other call.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { VmpilotError } from '../../shared/errors.js';
import type { Authenticator } from '../api/auth.js';
import { MANIFEST_NAME, defaultAgentDir, readManifest } from './manifest.js';

/** The route prefix of agent files. */
export const AGENT_ROUTE = '/v1/agent/:file';

/** A single byte range "bytes=START-[END]" within `size`; null for none, 'bad' when unsatisfiable. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | null | 'bad' {
  if (!header) return null;
  const m = /^bytes=(\d+)-(\d*)$/.exec(header.trim());
  if (!m) return null; // several ranges or suffix ranges: send the whole file (allowed by RFC 9110)
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return 'bad';
  return { start, end };
}

/** Register the agent file routes; `dir` holds the files and agent-manifest.json (default: beside the server bundle). */
export function registerAgentRoutes(app: FastifyInstance, ctx: { auth: Authenticator }, dir: string = defaultAgentDir()): void {
  const allowed = async (request: FastifyRequest) => {
    await ctx.auth.require(request, 'the agent files', (c) => c.kind === 'registrar' || c.kind === 'instance' || c.kind === 'admin');
  };

  app.get<{ Params: { file: string } }>(AGENT_ROUTE, { onRequest: allowed }, async (request, reply) => {
    const name = request.params.file;
    const manifest = await readManifest(dir);
    if (name === MANIFEST_NAME) return manifest;
    const checksum = name.endsWith('.sha256');
    const file = manifest.files.find((f) => f.name === (checksum ? name.slice(0, -'.sha256'.length) : name));
    if (!file) {
      throw new VmpilotError('VMP_NOT_FOUND', `no agent file "${name}"; the server has ${[MANIFEST_NAME, ...manifest.files.map((f) => f.name)].join(', ')}`);
    }
    if (checksum) {
      // the format of sha256sum, so that `sha256sum -c` checks a download
      return reply.type('text/plain; charset=utf-8').send(`${file.sha256}  ${file.name}\n`);
    }
    const full = path.join(dir, file.name);
    const st = await stat(full).catch((err: unknown) => {
      throw new VmpilotError('VMP_NOT_FOUND', `agent file ${file.name} is listed but missing: rebuild with npm run build`, { cause: err });
    });
    if (st.size !== file.size) throw new VmpilotError('VMP_CONFIG', `agent file ${file.name} is ${st.size} bytes, the manifest says ${file.size}: rebuild with npm run build`);
    const etag = `"${file.sha256}"`;
    void reply
      .header('etag', etag)
      .header('accept-ranges', 'bytes')
      .header('x-vmpilot-sha256', file.sha256)
      .header('x-vmpilot-version', manifest.version)
      .type('application/octet-stream');
    const range = request.headers['if-range'] === undefined || request.headers['if-range'] === etag ? parseRange(request.headers.range, st.size) : null;
    if (range === 'bad') return reply.code(416).header('content-range', `bytes */${st.size}`).send();
    if (range) {
      return reply
        .code(206)
        .header('content-range', `bytes ${range.start}-${range.end}/${st.size}`)
        .header('content-length', range.end - range.start + 1)
        .send(createReadStream(full, { start: range.start, end: range.end }));
    }
    return reply.header('content-length', st.size).send(createReadStream(full));
  });
}
