/**
 * Error replies of the API. Every error has the body `{ error: { code,
 * message } }` with a stable code — also those fastify and node's HTTP
 * parser answer by themselves (a bad URL, a parameter too long, a request
 * not received in time, headers too large); bad input is a 4xx that names
 * the field, never a 500. Only a bug is a 500, and it is logged. A refused
 * request (401, 403, 429) closes its connection: its body is never read.
 * The status of each code is the catalogue's (src/shared/errors.ts).
 */
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorReply } from '../../protocol/index.js';
import { VmpilotError, codeForStatus, httpStatusOf, type ErrorCode } from '../../shared/errors.js';

/** Statuses that refuse the caller: the connection is closed after the reply, the rest of the body left unread. */
const REFUSED = new Set([401, 403, 429]);

/** The reply body of an error (`appliedSeq` with VMP_REPORT_SEQ). */
export function errorBody(code: string, message: string, appliedSeq?: number): ErrorReply {
  return { error: { code, message, ...(appliedSeq === undefined ? {} : { appliedSeq }) } };
}

/** One Ajv error, as much of it as we read. */
export interface SchemaError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/**
 * A human message for a body that does not fit its schema, naming the field:
 * `body.cores.min must be >= 1`, `body must NOT have additional property "colour"`,
 * `body.memoryMb must be integer or null`.
 */
export function validationMessage(context: string, errors: readonly SchemaError[]): string {
  const first = errors[0];
  if (!first) return `${context} is not valid`;
  const field = (path: string) => context + path.split('/').slice(1).map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`)).join('');
  if (first.keyword === 'additionalProperties') {
    return `${field(first.instancePath)} must NOT have additional property "${String(first.params.additionalProperty)}"`;
  }
  if (first.keyword === 'required') {
    return `${field(first.instancePath)} must have property "${String(first.params.missingProperty)}"`;
  }
  if (first.keyword === 'enum' && Array.isArray(first.params.allowedValues)) {
    return `${field(first.instancePath)} must be one of ${first.params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  // a nullable value: Ajv reports each branch, then anyOf; say it in one line
  const anyOf = errors.find((e) => e.keyword === 'anyOf' && e.instancePath === first.instancePath);
  if (anyOf) {
    const types = errors
      .filter((e) => e.keyword === 'type' && e.instancePath === first.instancePath)
      .map((e) => String(e.params.type));
    const others = errors.filter((e) => e.keyword !== 'type' && e.keyword !== 'anyOf' && e.instancePath === first.instancePath);
    if (others[0]?.message) return `${field(first.instancePath)} ${others[0].message}`;
    if (types.length > 0) return `${field(first.instancePath)} must be ${types.join(' or ')}`;
  }
  return `${field(first.instancePath)} ${first.message ?? 'is not valid'}`;
}

/** Install the not-found and error handlers on `app`. */
export function installErrorHandlers(app: FastifyInstance): void {
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send(errorBody('VMP_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`));
  });

  app.setErrorHandler((err: FastifyError | VmpilotError, request, reply) => {
    if (err instanceof VmpilotError) {
      const status = httpStatusOf(err.code);
      // the database away (PostgreSQL restarting) is one line per request, not a stack trace
      if (err.code === 'VMP_DATABASE_UNAVAILABLE') request.log.warn({ code: err.code, reason: err.details.reason }, 'request failed: database unavailable');
      else if (status >= 500) request.log.error({ err }, 'request failed');
      const retry = err.details.retryAfterSec;
      if (typeof retry === 'number') void reply.header('retry-after', String(retry));
      if (REFUSED.has(status)) void reply.header('connection', 'close');
      const applied = err.details.appliedSeq;
      return reply.code(status).send(errorBody(err.code, err.message, typeof applied === 'number' ? applied : undefined));
    }
    if (err.validation) {
      const message = validationMessage(err.validationContext ?? 'body', err.validation as SchemaError[]);
      return reply.code(400).send(errorBody('VMP_BAD_REQUEST', message));
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      if (REFUSED.has(status)) void reply.header('connection', 'close');
      return reply.code(status).send(errorBody(clientCode(status), clientMessage(err, status)));
    }
    request.log.error({ err }, 'request failed');
    return reply.code(500).send(errorBody('VMP_INTERNAL', 'internal server error; see the server log'));
  });
}

/**
 * fastify's own refusals before a route is found (`frameworkErrors`): a URL
 * that does not decode (400), a path parameter longer than the router takes
 * (414). Answered in the API's error shape.
 */
export function frameworkError(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const status = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 414 : (err.statusCode ?? 400);
  const path = request.url.split('?')[0] ?? '';
  const shown = path.length > 80 ? `${path.slice(0, 80)}…` : path;
  const message =
    status === 414 ? `a path parameter of ${shown} is too long (at most 100 characters)`
    : err.code === 'FST_ERR_BAD_URL' ? `${shown} is not a valid URL: check its %-escapes`
    : err.message;
  void reply.code(status).send(errorBody(status >= 500 ? 'VMP_INTERNAL' : 'VMP_BAD_REQUEST', message));
}

/**
 * Node's HTTP parser refused a request before fastify saw it (`clientError`):
 * not received in time (408), headers too large (431), not HTTP (400).
 * Answered in the API's error shape, then the connection is closed.
 */
export function clientError(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, text, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout', 'the request did not arrive in time: send its headers and body promptly']
    : err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large', 'the request headers are too large']
    : [400, 'Bad Request', 'the request is not valid HTTP'];
  const body = JSON.stringify(errorBody('VMP_BAD_REQUEST', message));
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${text}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy();
}

/** The code of a 4xx fastify answers by itself: the catalogue's for its status, VMP_BAD_REQUEST for the rest (413, 415, ...). */
export function clientCode(status: number): ErrorCode {
  return codeForStatus(status) ?? 'VMP_BAD_REQUEST';
}

function clientMessage(err: FastifyError, status: number): string {
  if (status === 415) return `unsupported content-type: send a JSON body with content-type application/json`;
  if (status === 413) return `request body is too large`;
  if (err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError) return `body is not valid JSON: ${err.message}`;
  return err.message;
}
