/**
 * The one table of codes and HTTP statuses (src/shared/errors.ts) and the
 * readings of it: the server's replies, the agent's control plane, the admin
 * client and the relay's own errors. A code the server answers with must
 * have its status in the table, and both clients must read the server's
 * reply as the server meant it.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeForReply } from '../../../src/agent/control/http-control-plane.js';
import { httpError } from '../../../src/cli/admin/client.js';
import { relayStatusOf } from '../../../src/relay/forward.js';
import { clientCode, installErrorHandlers } from '../../../src/server/api/errors.js';
import { ERROR_CODES, VmpilotError, codeForStatus, type ErrorCode, type ErrorSpec } from '../../../src/shared/errors.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const codes = Object.keys(ERROR_CODES) as ErrorCode[];

/** The files whose errors end in a server reply: the routes and what they call. */
function replyFiles(): string[] {
  const server = path.join(root, 'src/server');
  return readdirSync(server, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.join(e.parentPath, e.name))
    .filter((f) => /^(api|store|queue)\//.test(path.relative(server, f)) || /-routes\.ts$|\/routes\.ts$/.test(f));
}

describe('codes in server replies', () => {
  it('each code the server answers with has its HTTP status in the table', () => {
    const files = replyFiles();
    expect(files.map((f) => path.relative(root, f))).toEqual(expect.arrayContaining(['src/server/api/pilot-routes.ts', 'src/server/delivery/agent-routes.ts']));
    const missing: string[] = [];
    for (const file of files) {
      for (const m of readFileSync(file, 'utf8').matchAll(/(?:new VmpilotError|errorBody)\(\s*'(VMP_[A-Z_]+)'/g)) {
        const spec: ErrorSpec | undefined = ERROR_CODES[m[1] as ErrorCode];
        if (spec?.status === undefined) missing.push(`${path.relative(root, file)}: ${m[1]}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('a status stands for one code: the first listed with it, VMP_SERVER for any 5xx', () => {
    expect(codeForStatus(400)).toBe('VMP_BAD_REQUEST');
    expect(codeForStatus(409)).toBe('VMP_CONFLICT');
    expect(codeForStatus(429)).toBe('VMP_RATE_LIMITED');
    expect(codeForStatus(502)).toBe('VMP_SERVER');
    expect(codeForStatus(413)).toBeUndefined();
  });
});

describe('the server and its clients read the table alike', () => {
  // a real fastify app with the server's error handlers; each route throws one code
  const app = Fastify();
  beforeAll(async () => {
    installErrorHandlers(app);
    app.get<{ Params: { code: ErrorCode } }>('/throw/:code', async (request) => {
      throw new VmpilotError(request.params.code, `thrown ${request.params.code}`);
    });
    await app.ready();
  });
  afterAll(() => app.close());

  it.each(codes)('a reply with %s: the status the table gives, read back as the same code', async (code) => {
    const res = await app.inject({ method: 'GET', url: `/throw/${code}` });
    expect(res.statusCode).toBe((ERROR_CODES[code] as ErrorSpec).status ?? 500);
    expect(JSON.parse(res.body)).toMatchObject({ error: { code, message: `thrown ${code}` } });
    // the admin client keeps the server's own code (an internal error is the server's failure to it)
    expect(httpError(res.statusCode, res.body, 'GET /').code).toBe(code === 'VMP_INTERNAL' ? 'VMP_SERVER' : code);
    // the agent takes the code a 4xx names; any 5xx is server trouble, to be tried again
    expect(codeForReply(res.statusCode, JSON.parse(res.body).error.code)).toBe(res.statusCode < 500 ? code : 'VMP_SERVER');
  });

  // fastify's own 4xx (no VmpilotError): the server picks the code by status, and so do the clients on a bare reply
  const statuses = [...new Set(Object.values(ERROR_CODES).map((s: ErrorSpec) => s.status).filter((s): s is number => s !== undefined && s < 500))];

  it.each(statuses)('a bare HTTP %i: the clients pick the code the server would', (status) => {
    const server = clientCode(status);
    expect(httpError(status, '<html>proxy</html>', 'GET /').code).toBe(server);
    expect(codeForReply(status)).toBe(server);
  });

  it('a 4xx the table does not name: the admin client says bad request, the agent server trouble (tried again)', () => {
    expect(clientCode(413)).toBe('VMP_BAD_REQUEST');
    expect(httpError(413, '', 'POST /').code).toBe('VMP_BAD_REQUEST');
    expect(codeForReply(413, 'VMP_BAD_REQUEST')).toBe('VMP_SERVER');
    expect(codeForReply(502, 'VMP_UNREACHABLE')).toBe('VMP_SERVER');
  });

  it.each(codes)("the relay's own error %s: a refusal keeps the server's status, a failure is 502, which the agent tries again", (code) => {
    const status = relayStatusOf(code);
    const server = (ERROR_CODES[code] as ErrorSpec).status ?? 500;
    expect(status).toBe(server < 500 ? server : 502);
    expect(codeForReply(status, code)).toBe(status < 500 ? code : 'VMP_SERVER');
  });
});
