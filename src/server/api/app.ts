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
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/log.js';
import type { Store } from '../store/store.js';
import { registerAdminRoutes } from './admin-routes.js';
import { Authenticator, type TokenHashes } from './auth.js';
import { installErrorHandlers } from './errors.js';
import { registerPilotRoutes } from './pilot-routes.js';
import { Waiters } from './waiters.js';

/** What the API needs. */
export interface AppOptions {
  store: Store;
  clock: Clock;
  log: Logger;
  /** sha256 hashes of the admin token and the pilot registration token. */
  tokens: TokenHashes;
  heartbeatIntervalSec: number;
  /** The longest a match request is held open. */
  matchWaitMaxSec: number;
  /** Largest request body in bytes (default 1 MiB). */
  bodyLimit?: number;
}

/** What the route modules share. */
export interface ApiContext extends AppOptions {
  auth: Authenticator;
  waiters: Waiters;
}

/** Build the API. Closing the app answers waiting matches (no payload) but does not close the store. */
export function buildApp(options: AppOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: options.log as FastifyBaseLogger,
    // one line per request would drown the log in long polls; routes log what matters
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    // answer waiting long polls, then let keep-alive connections go
    forceCloseConnections: 'idle',
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
  });
  const waiters = new Waiters(options.clock);
  const ctx: ApiContext = { ...options, auth: new Authenticator(options.tokens, options.store), waiters };
  installErrorHandlers(app);
  // the API speaks JSON only: any other body is 415
  app.removeContentTypeParser('text/plain');
  app.addHook('preClose', (done) => {
    waiters.closeAll();
    done();
  });

  app.get(routes.health, async (): Promise<HealthReply> => ({ ok: true, version: VERSION, protocol: PROTOCOL_VERSION }));
  registerPilotRoutes(app, ctx);
  registerAdminRoutes(app, ctx);
  return app;
}
