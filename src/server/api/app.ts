/**
 * The HTTP API of the server, protocol version 1, as a fastify instance.
 * Tests call `app.inject`; `serve` calls `app.listen`. Every body is
 * validated against the protocol's schemas with no coercion, no defaults and
 * no silent removal of fields, so a body that does not fit is refused whole.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { HealthReply } from '../../protocol/index.js';
import { PROTOCOL_VERSION, routes } from '../../protocol/paths.js';
import { VERSION } from '../../protocol/version.js';
import { registerDashboard } from '../dashboard/routes.js';
import { ServerMetrics } from '../metrics/server-metrics.js';
import { pick } from '../queue/pick.js';
import { registerAdminRoutes } from './admin-routes.js';
import { registerAgentRoutes } from '../delivery/agent-routes.js';
import { registerDirectorRoutes } from './director-routes.js';
import { Authenticator } from './auth.js';
import type { ApiContext, AppOptions } from './context.js';
import { clientError, frameworkError, installErrorHandlers } from './errors.js';
import { DEFAULT_LIMITS, type ApiLimits } from './limits.js';
import { LongPolls } from './long-polls.js';
import { registerEtags } from './etag.js';
import { registerEndpointTestRoute } from './endpoint-test-route.js';
import { registerOverviewRoutes } from './overview-routes.js';
import { registerPilotRoutes } from './pilot-routes.js';
import { TokenBuckets } from './rate-limit.js';
import { RefusalLog } from './refusal-log.js';
import { installRelayCheck } from './relay-auth.js';
import { Waiters } from './waiters.js';

export type { ApiContext, AppOptions } from './context.js';

/** Build the API. Closing the app answers waiting matches (no payload) but does not close the store. */
export function buildApp(options: AppOptions): FastifyInstance {
  const limits: ApiLimits = { ...DEFAULT_LIMITS, ...options.limits };
  // slow clients: headers and the whole request (body included) must arrive in time; checked every 2 s
  const timeouts = {
    headersTimeout: Math.min(limits.headersTimeoutSec, limits.requestTimeoutSec) * 1000,
    requestTimeout: limits.requestTimeoutSec * 1000,
    connectionsCheckingInterval: 2000,
  };
  const app = Fastify({
    ...(options.https ? { https: { ...options.https, ...timeouts } } : { http: timeouts }),
    requestTimeout: timeouts.requestTimeout,
    keepAliveTimeout: limits.keepAliveSec * 1000,
    // a socket silent for longer than the longest long poll (plus slack) is gone
    connectionTimeout: (options.matchWaitMaxSec + limits.socketSlackSec) * 1000,
    frameworkErrors: frameworkError,
    clientErrorHandler: clientError,
    loggerInstance: options.log as FastifyBaseLogger,
    // one line per request would drown the log in long polls; routes log what matters
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    // answer waiting long polls, then let keep-alive connections go
    forceCloseConnections: 'idle',
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
  });
  const notifier = options.notifier ?? new Waiters(options.clock);
  const refusals = new RefusalLog(options.log, options.clock);
  const ctx: ApiContext = {
    ...options,
    limits,
    refusals,
    longPolls: new LongPolls(limits.longPollsPerPilot, limits.longPollsTotal),
    registrations: {
      byToken: new TokenBuckets(limits.registerBurstPerToken, limits.registerPerSecPerToken, options.clock),
      byAddress: new TokenBuckets(limits.registerBurstPerAddress, limits.registerPerSecPerAddress, options.clock),
    },
    auth: new Authenticator(options.tokens, options.store, options.clock, refusals),
    notifier,
    metrics: options.metrics ?? new ServerMetrics(),
    picker: options.picker ?? pick,
    isolationPolicy: options.isolationPolicy ?? new Set(),
    usageHalfLifeSec: options.usageHalfLifeSec ?? 3600,
    credentialTtlSec: options.credentialTtlSec ?? 3600,
    waitingCache: null,
    shares: options.shares ?? new Map(),
    defaultShare: options.defaultShare ?? 1,
  };
  installErrorHandlers(app);
  registerEtags(app);
  // the API speaks JSON only: any other body is 415
  app.removeContentTypeParser('text/plain');
  app.addHook('preClose', (done) => {
    notifier.closeAll();
    done();
  });

  // requests by route pattern (not URL: ids would make every pilot a new series) and status
  const started = new WeakMap<object, number>();
  app.addHook('onRequest', async (request) => {
    started.set(request, options.clock.now());
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    ctx.metrics.requests.inc({ route, method: request.method, status: String(reply.statusCode) });
    const t0 = started.get(request);
    if (t0 === undefined) return;
    const sec = (options.clock.now() - t0) / 1000;
    if (route === routes.heartbeat && reply.statusCode < 300) ctx.metrics.heartbeat.observe(sec);
  });

  // relays (docs/hpc.md): an unknown relay token is refused before any route looks at the pilot's own token
  if (options.relays) installRelayCheck(app, options.relays);
  app.get(routes.health, async (): Promise<HealthReply> => ({ ok: true, version: VERSION, protocol: PROTOCOL_VERSION }));
  registerPilotRoutes(app, ctx);
  registerAdminRoutes(app, ctx);
  registerDirectorRoutes(app, ctx); // endpoints, instances, director status (docs/director.md)
  registerOverviewRoutes(app, ctx);
  registerEndpointTestRoute(app, ctx); // POST /v1/endpoints/:name/test (NDJSON, a line per stage)
  registerDashboard(app);
  registerAgentRoutes(app, ctx); // GET /v1/agent/<file>: the agent binary, bundle and manifest (issue 5)
  return app;
}
