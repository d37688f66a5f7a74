/**
 * POST /v1/endpoints/:name/test (admin token): `vmpilot-server endpoint test
 * NAME`. Starts one instance of the endpoint end to end
 * (director/endpoint-test.ts) and answers NDJSON as the stages happen: a
 * line per stage `{stage, ok, ms, detail, hints?}`, then `{done: true, ok,
 * totalMs}`. No director: VMP_CONFLICT; no such endpoint: VMP_NOT_FOUND
 * (the usual JSON error, before any line). The test runs to its end (and
 * cleans up) even when the client goes away; the server closing cuts its
 * waits short.
 */
import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { EndpointTestRequest } from '../../protocol/index.js';
import { endpointParamsSchema, endpointTestSchema } from '../../protocol/admin-schemas.js';
import { routes } from '../../protocol/paths.js';
import { VmpilotError, describeError } from '../../shared/errors.js';
import { runEndpointTest } from '../director/endpoint-test.js';
import type { ApiContext } from './context.js';

/** Register POST /v1/endpoints/:name/test on `app`. */
export function registerEndpointTestRoute(app: FastifyInstance, ctx: ApiContext): void {
  const { auth, clock, store, notifier } = ctx;
  const closing = new AbortController();
  app.addHook('preClose', (done) => {
    closing.abort();
    done();
  });
  const adminOnly = async (request: FastifyRequest) => {
    await auth.require(request, 'administration', (c) => c.kind === 'admin');
  };

  app.post<{ Params: { name: string }; Body: EndpointTestRequest }>(
    routes.endpointTest,
    { schema: { params: endpointParamsSchema, body: endpointTestSchema }, onRequest: adminOnly },
    async (request, reply) => {
      const director = ctx.director;
      if (!director) throw new VmpilotError('VMP_CONFLICT', 'no director runs in this server: configure endpoints: in serve --config');
      const { name } = request.params;
      if (!director.endpoints.some((e) => e.name === name)) {
        throw new VmpilotError('VMP_NOT_FOUND', `no endpoint "${name}"; configured: ${director.endpoints.map((e) => e.name).join(', ') || 'none'}`);
      }
      // the stages wait for minutes without a byte: the socket's idle timeout must not cut the answer
      // (an injected request has a socket of its own kind, without timeouts)
      if (typeof request.raw.socket?.setTimeout === 'function') request.raw.socket.setTimeout(0);
      const out = new PassThrough();
      const write = (line: unknown) => {
        if (!out.writableEnded) out.write(`${JSON.stringify(line)}\n`);
      };
      request.log.info({ endpoint: name, shape: request.body.shape ?? null }, 'endpoint test started');
      void runEndpointTest(
        { director, store, clock, signal: closing.signal, notify: { submitted: () => notifier.wakeAll(), instructed: (id) => notifier.wakePilot(id) } },
        { endpoint: name, ...(request.body.shape === undefined ? {} : { shape: request.body.shape }), ...(request.body.timeoutSec === undefined ? {} : { timeoutSec: request.body.timeoutSec }) },
        write,
      )
        .then((done) => request.log.info({ endpoint: name, ok: done.ok, totalMs: done.totalMs, instance: done.instanceId }, 'endpoint test ended'))
        .catch((err: unknown) => {
          request.log.error({ endpoint: name, err: describeError(err) }, 'endpoint test failed');
          write({ done: true, ok: false, totalMs: 0 });
        })
        .finally(() => out.end());
      return reply.type('application/x-ndjson').header('cache-control', 'no-store').send(out);
    },
  );
}
